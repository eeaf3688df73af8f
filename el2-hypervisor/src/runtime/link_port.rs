//! The replication link on the board: a `replication_link::Link` over the
//! second PL011 (polled; record, replay, a serial pair) or a virtio-net NIC
//! (an Ethernet pair), with the physical counter as its clock.

use crate::arch::console::println;
use crate::arch::timer;
use crate::arch::virtio_net::VirtioNet;
use board_support::pl011::Pl011;
use core::convert::Infallible;
use el2_hypervisor::replica::engine::PeerGone;
use replication_link::framing::ethernet::BROADCAST;
use replication_link::link::{Config, Event, Link};
use replication_link::message::{Hello, Message};
use replication_link::transport::{EthernetTransport, StreamTransport};
use replication_link::{DEFAULT_WINDOW, EthernetFraming, SendError};

/// The link UART as an `embedded-io` byte stream.
pub struct UartIo(Pl011);

impl embedded_io::ErrorType for UartIo {
    type Error = Infallible;
}

impl embedded_io::Read for UartIo {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        while n == 0 {
            while let Some(slot) = buf.get_mut(n) {
                match self.0.read_byte() {
                    Some(b) => {
                        *slot = b;
                        n += 1;
                    }
                    None => break,
                }
            }
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for UartIo {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.rx_ready())
    }
}

impl embedded_io::Write for UartIo {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.write_raw(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// What carries the link's packets.
#[allow(
    clippy::large_enum_variant,
    reason = "one per board, in a static: no heap, and the variants are within 25% of each other"
)]
enum Medium {
    Serial(StreamTransport<UartIo>),
    Ethernet(EthernetTransport<VirtioNet>),
}

/// The link endpoint and its transport.
pub struct LinkPort {
    pub link: Link,
    medium: Medium,
    /// Sequenced messages queued so far (the output rule counts in these).
    sent: u64,
}

/// Microseconds on the physical counter.
pub fn now_us() -> u64 {
    let f = timer::frequency().max(1);
    ((timer::counter() as u128 * 1_000_000) / f as u128) as u64
}

impl LinkPort {
    /// The link over a PL011.
    ///
    /// # Safety
    /// `base` is the link PL011, used by nothing else.
    pub unsafe fn serial(base: u64, hello: Hello, config: Config) -> Self {
        // SAFETY: forwarded from the caller.
        let uart = unsafe { Pl011::new(base as usize) };
        // Before our first Hello, so before the peer can have sent
        // anything that a FIFO reset would drop.
        uart.enable();
        Self {
            link: Link::new(hello, config),
            medium: Medium::Serial(StreamTransport::new(UartIo(uart))),
            sent: 0,
        }
    }

    /// The link over a NIC: our frames go to the broadcast address (the
    /// two boards are alone on their wire), and we take frames sent to
    /// our MAC or broadcast.
    pub fn ethernet(nic: VirtioNet, hello: Hello, config: Config) -> Self {
        let framing = EthernetFraming {
            local: nic.mac(),
            peer: BROADCAST,
        };
        Self {
            link: Link::new(hello, config),
            medium: Medium::Ethernet(EthernetTransport::new(nic, framing)),
            sent: 0,
        }
    }

    /// Runs the link once; returns the next event, if any.
    pub fn poll(&mut self) -> Option<Event> {
        // The UART never fails (Infallible), and a NIC transfer that fails
        // loses a packet, which the link retransmits; a malformed packet is
        // the link's business. None of them is an error here.
        let now = now_us();
        match &mut self.medium {
            Medium::Serial(t) => self.link.poll(now, t).ok().flatten(),
            Medium::Ethernet(t) => self.link.poll(now, t).ok().flatten(),
        }
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

    /// Queues a sequenced message, polling (and handing each event to
    /// `on_event`) while the send window is full; `PeerGone` once the link
    /// is closed, or when `on_event` says so.
    pub fn send(
        &mut self,
        msg: Message,
        mut on_event: impl FnMut(Event) -> Result<(), PeerGone>,
    ) -> Result<(), PeerGone> {
        let since = now_us();
        let mut said = 0;
        loop {
            match self.link.send(msg.clone()) {
                Ok(_) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err(SendError::Closed) => return Err(PeerGone),
                Err(_) => {
                    if let Some(e) = self.poll() {
                        on_event(e)?;
                    }
                    // A window full for seconds while the peer lives
                    // (its heartbeats arrive) is a link that does not
                    // carry: say so, with what the link counted.
                    let waited = now_us().saturating_sub(since) / 1_000_000;
                    if waited > said {
                        said = waited;
                        let s = self.link.stats();
                        println!(
                            "hypervisor: link: send window full for {waited} s (sent {}, acked {}; packets sent {}, received {}, rejected {}, retransmissions {}, duplicates {}, gaps {})",
                            self.sent,
                            self.acked(),
                            s.packets_sent,
                            s.packets_received,
                            s.rejected,
                            s.retransmissions,
                            s.duplicates,
                            s.gaps
                        );
                    }
                }
            }
        }
    }
}
