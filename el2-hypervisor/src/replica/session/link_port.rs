//! The replication link on a board: a `replication_link::Link` over the
//! board's transport (the second PL011 for record, replay and a serial
//! pair; a virtio-net NIC for an Ethernet pair: `arch/aarch64/link.rs`),
//! with the board's clock as its time, counting the sequenced messages
//! sent and acknowledged (what the output rule counts in).

use crate::hw::{Console, Hw};
use crate::replica::engine::PeerGone;
use crate::vm_core::clock;
use replication_link::link::{Config, Event, Link};
use replication_link::message::{Hello, Message};
use replication_link::transport::PacketTransport;
use replication_link::{DEFAULT_WINDOW, SendError};

/// How long a full send window is polled without pausing: acks that are
/// on their way arrive within it, so a window that merely fills up does
/// not cost a pause.
pub(crate) const FULL_WINDOW_SPIN_US: u64 = 10_000;

/// The link endpoint and its transport.
pub struct LinkPort<T> {
    pub link: Link,
    transport: T,
    /// Sequenced messages queued so far (the output rule counts in these).
    sent: u64,
    /// Sends that found the send window full, and the board's time they
    /// waited for room in all (µs): how often the primary waited for its
    /// peer, the pair's cost that the other board sets.
    pub window_waits: u64,
    pub window_wait_us: u64,
}

impl<T: PacketTransport> LinkPort<T> {
    /// A link that introduces itself with `hello`, over `transport`.
    pub fn new(transport: T, hello: Hello, config: Config) -> Self {
        Self {
            link: Link::new(hello, config),
            transport,
            sent: 0,
            window_waits: 0,
            window_wait_us: 0,
        }
    }

    /// Runs the link once at `now_us` (the board's clock); returns the
    /// next event, if any.
    pub fn poll(&mut self, now_us: u64) -> Option<Event> {
        // A transport error is not an error here: the UART never fails
        // (Infallible), a NIC transfer that fails loses a packet, which
        // the link retransmits, and a malformed packet is the link's
        // business.
        self.link.poll(now_us, &mut self.transport).ok().flatten()
    }

    /// Sequenced messages queued since the start.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sequenced messages the peer has acknowledged (every one before the
    /// first still in the send window).
    pub fn acked(&self) -> u64 {
        let in_flight = DEFAULT_WINDOW.saturating_sub(self.link.window_free()) as u64;
        self.sent.saturating_sub(in_flight)
    }

    /// Queues a sequenced message, polling (and handing each event, with
    /// the time it came, to `on_event`) while the send window is full;
    /// `PeerGone` once the link is closed, or when `on_event` says so.
    /// A window still full after [`FULL_WINDOW_SPIN_US`] is waited on in
    /// pauses of the board's clock (`clock::pause`) between polls: a peer
    /// that has stopped acknowledging is then declared dead after the
    /// failure timeout of the board's clock, not of instructions spun
    /// (which, with QEMU's `-icount ...,sleep=off` of a recording board,
    /// took minutes of host time), and a pair's host core is left to the
    /// other board.
    pub fn send<B: Hw + Console>(
        &mut self,
        board: &mut B,
        msg: Message,
        mut on_event: impl FnMut(Event, u64) -> Result<(), PeerGone>,
    ) -> Result<(), PeerGone> {
        let since = clock::now_us(board);
        let mut said = 0;
        let mut waited = false;
        loop {
            match self.link.send(msg.clone()) {
                Ok(_) => {
                    self.sent += 1;
                    if waited {
                        self.window_waits += 1;
                        self.window_wait_us += clock::now_us(board).saturating_sub(since);
                    }
                    return Ok(());
                }
                Err(SendError::Closed) => return Err(PeerGone),
                Err(_) => {
                    waited = true;
                    let now = clock::now_us(board);
                    if let Some(e) = self.poll(now) {
                        on_event(e, now)?;
                    } else if now.saturating_sub(since) > FULL_WINDOW_SPIN_US {
                        clock::pause(board);
                    }
                    // A window full for seconds while the peer lives
                    // (its heartbeats arrive) is a link that does not
                    // carry: say so, with what the link counted.
                    let waited = clock::now_us(board).saturating_sub(since) / 1_000_000;
                    if waited > said {
                        said = waited;
                        let s = self.link.stats();
                        board.line(format_args!(
                            "hypervisor: link: send window full for {waited} s (sent {}, acked {}; packets sent {}, received {}, rejected {}, retransmissions {}, duplicates {}, gaps {})",
                            self.sent,
                            self.acked(),
                            s.packets_sent,
                            s.packets_received,
                            s.rejected,
                            s.retransmissions,
                            s.duplicates,
                            s.gaps
                        ));
                    }
                }
            }
        }
    }
}
