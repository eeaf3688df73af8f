//! The link endpoint: handshake, reliable in-order delivery, heartbeats and
//! failure detection over any [`PacketTransport`], driven by the caller's
//! clock.
//!
//! Nothing here blocks or allocates. The caller queues messages with
//! [`Link::send`] and calls [`Link::poll`] often (on the board: at every
//! trap to EL2 that has time for it, and from the timer interrupt), until
//! it returns `Ok(None)`; `poll` receives, delivers, acknowledges,
//! retransmits and sends heartbeats.
//!
//! Handshake: each side sends its [`Hello`] every `hello_interval_us` until
//! it has the peer's; it answers a Hello whose `seen_peer` is clear with its
//! own (flag set). The first peer Hello decides: [`Event::Established`] or
//! [`Event::Refused`]. Sequenced messages are sent and accepted only once
//! established; those queued earlier wait in the window.

use crate::codec::Reader;
use crate::error::{SendError, TransportError};
use crate::failure_detector::{FailureDetector, Liveness, Timeouts};
use crate::handshake::Refusal;
use crate::message::{Ack, Heartbeat, Hello, MAX_MESSAGE, Message};
use crate::packet::{MAX_PACKET, PACKET_HEADER, PACKET_OVERHEAD, Packet, PacketWriter};
use crate::reliable::{Accept, Receiver, SendWindow, Seq};
use crate::transport::{PacketTransport, Received};

/// Default send window, in messages.
pub const DEFAULT_WINDOW: usize = 64;
/// Default send window, in bytes ([`Config::window_bytes`]): a dozen full
/// Ethernet frames, which a fast link resends in well under a millisecond.
pub const DEFAULT_WINDOW_BYTES: usize = 16 * 1024;
/// Most packets [`Link::poll`] receives in one call.
const RX_PACKETS_PER_POLL: usize = 16;
/// Most packets [`Link::poll`] sends in one call.
const TX_PACKETS_PER_POLL: usize = 16;

// A Hello, an Ack and the largest message always fit one packet together.
const _: () =
    assert!(PACKET_OVERHEAD + Hello::WIRE_SIZE + Ack::WIRE_SIZE + MAX_MESSAGE <= MAX_PACKET);

/// Timing and batching, all times in microseconds of the caller's clock.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Send a heartbeat after this long without sending anything.
    pub heartbeat_interval_us: u64,
    /// Resend unacknowledged messages after this long (go-back-N).
    pub retransmit_after_us: u64,
    /// Resend our Hello this often while waiting for the peer's.
    pub hello_interval_us: u64,
    /// When to suspect and when to declare the peer failed.
    pub timeouts: Timeouts,
    /// Stop adding messages to a packet past this many bytes (a packet
    /// always takes at least one). [`MAX_PACKET`] fills an Ethernet frame;
    /// a slow UART may prefer a few hundred bytes.
    pub batch_limit: usize,
    /// A receiver that has nothing of its own to send waits this long
    /// between acknowledgements (0: ack at once). Acks ride on data and
    /// heartbeats whenever those go. On a byte stream whose two ends can
    /// block each other (QEMU's PL011 writes each byte under its global
    /// lock, blocking, into a socket that holds only a few hundred such
    /// writes) fewer, later acks keep the receiver from filling its side
    /// while the sender is itself blocked on the other.
    pub ack_delay_us: u64,
    /// The most encoded bytes of sequenced messages queued or in flight
    /// (besides the window's `W` messages): what a go-back-N
    /// retransmission resends at most, sized to the link's speed.
    pub window_bytes: usize,
}

impl Config {
    /// Defaults for a fast link (virtio-net, Ethernet, a host socket):
    /// heartbeat 10 ms, retransmit 20 ms, hello 100 ms, suspect 50 ms,
    /// fail 200 ms, full packets. A 115200-baud UART needs about ten times
    /// longer timeouts (a full packet takes 130 ms to cross it).
    pub const DEFAULT: Self = Self {
        heartbeat_interval_us: 10_000,
        retransmit_after_us: 20_000,
        hello_interval_us: 100_000,
        timeouts: Timeouts {
            suspect_after_us: 50_000,
            fail_after_us: 200_000,
        },
        batch_limit: MAX_PACKET,
        ack_delay_us: 0,
        window_bytes: DEFAULT_WINDOW_BYTES,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where the link is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting for the peer's Hello.
    Handshaking,
    /// Paired: messages flow.
    Established,
    /// The peer's Hello did not match ours (final; we keep answering its
    /// Hellos so that it can print the reason too).
    Refused(Refusal),
    /// The peer fell silent (final).
    PeerFailed,
    /// The peer sent a Hello from a new session: it rebooted (final; the
    /// caller builds a new `Link` and, for a backup, transfers state).
    PeerRestarted,
}

/// What [`Link::poll`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "no heap: an event is a fixed-size value, like the message it carries"
)]
pub enum Event {
    /// The handshake succeeded; this is the peer's Hello.
    Established(Hello),
    /// The handshake failed, for this reason.
    Refused(Refusal),
    /// The next sequenced message from the peer, in order, exactly once.
    Delivered(Message),
    /// The peer is declared failed.
    PeerFailed,
    /// The peer restarted; this is its new Hello.
    PeerRestarted(Hello),
}

/// Counters, for consoles and post-mortems. They wrap.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to the transport.
    pub packets_sent: u32,
    /// Packets received with a good CRC and valid messages.
    pub packets_received: u32,
    /// Frames or packets dropped as malformed (framing, CRC, decoding).
    pub rejected: u32,
    /// Retransmission timeouts (each resends the whole window).
    pub retransmissions: u32,
    /// Sequenced messages received again after delivery.
    pub duplicates: u32,
    /// Sequenced messages received after a gap (dropped, resent later).
    pub gaps: u32,
}

/// Where we are in the packet being delivered.
#[derive(Copy, Clone, Debug, Default)]
struct RxCursor {
    pos: usize,
    end: usize,
    left: u8,
    seq: Seq,
}

/// One end of the link, with a send window of `W` messages.
///
/// Memory is fixed: see the table in the crate documentation.
pub struct Link<const W: usize = DEFAULT_WINDOW> {
    config: Config,
    ours: Hello,
    state: LinkState,
    peer_session: u64,
    tx: SendWindow<W>,
    rx: Receiver,
    detector: FailureDetector,
    ack_pending: bool,
    /// When we last sent an acknowledgement.
    last_ack: u64,
    hello_reply: bool,
    last_hello: Option<u64>,
    last_tx: u64,
    epoch: u64,
    stats: Stats,
    cursor: RxCursor,
    rx_buf: [u8; MAX_PACKET],
    tx_buf: [u8; MAX_PACKET],
}

impl<const W: usize> Link<W> {
    /// A link that will introduce itself with `ours` (its `seen_peer` is
    /// managed by the link).
    pub const fn new(ours: Hello, config: Config) -> Self {
        Self {
            config,
            ours,
            state: LinkState::Handshaking,
            peer_session: 0,
            tx: SendWindow::new(Seq(0)),
            rx: Receiver::new(Seq(0)),
            detector: FailureDetector::new(config.timeouts, 0),
            ack_pending: false,
            last_ack: 0,
            hello_reply: false,
            last_hello: None,
            last_tx: 0,
            epoch: 0,
            stats: Stats {
                packets_sent: 0,
                packets_received: 0,
                rejected: 0,
                retransmissions: 0,
                duplicates: 0,
                gaps: 0,
            },
            cursor: RxCursor {
                pos: 0,
                end: 0,
                left: 0,
                seq: Seq(0),
            },
            rx_buf: [0; MAX_PACKET],
            tx_buf: [0; MAX_PACKET],
        }
    }

    /// Queues a sequenced message (`LogEntry`, `EpochEnd`, `Takeover`,
    /// `StateChunk`, `Released`); returns its sequence number. It goes out at the next
    /// [`poll`](Self::poll) once the link is established.
    ///
    /// # Errors
    ///
    /// [`SendError::WindowFull`] (poll, then retry),
    /// [`SendError::ControlMessage`] for `Hello`/`Ack`/`Heartbeat`,
    /// [`SendError::Closed`] once the link has failed, been refused or
    /// seen the peer restart.
    pub fn send(&mut self, msg: Message) -> Result<Seq, SendError> {
        if !msg.is_sequenced() {
            return Err(SendError::ControlMessage);
        }
        if !matches!(self.state, LinkState::Handshaking | LinkState::Established) {
            return Err(SendError::Closed);
        }
        let epoch = match &msg {
            Message::EpochEnd(e) => Some(e.epoch.wrapping_add(1)),
            _ => None,
        };
        let seq = self
            .tx
            .push(msg, self.config.window_bytes)
            .map_err(|_| SendError::WindowFull)?;
        if let Some(e) = epoch {
            self.epoch = e;
        }
        Ok(seq)
    }

    /// Does the link's work at time `now` (microseconds, monotonic):
    /// receives and checks packets, returns the next [`Event`] if there is
    /// one, otherwise checks the peer's liveness and transmits what is due
    /// (Hello, acks, new and timed-out messages, heartbeat) and returns
    /// `Ok(None)`. Call it until it returns `Ok(None)`, and again soon.
    ///
    /// # Errors
    ///
    /// Only the transport's own errors; malformed input is counted in
    /// [`Stats::rejected`] and dropped.
    pub fn poll<T: PacketTransport>(
        &mut self,
        now: u64,
        transport: &mut T,
    ) -> Result<Option<Event>, TransportError<T::Error>> {
        if matches!(self.state, LinkState::PeerFailed | LinkState::PeerRestarted) {
            return Ok(None);
        }
        let mut received = 0;
        loop {
            if let Some(event) = self.drain(now) {
                return Ok(Some(event));
            }
            if received == RX_PACKETS_PER_POLL {
                break;
            }
            match transport.recv_packet(&mut self.rx_buf)? {
                Received::Nothing => break,
                Received::Rejected(_) => self.stats.rejected = self.stats.rejected.wrapping_add(1),
                Received::Packet(n) => self.load(n, now),
            }
            received += 1;
        }
        if self.state == LinkState::Established && self.detector.check(now) == Liveness::Failed {
            self.state = LinkState::PeerFailed;
            return Ok(Some(Event::PeerFailed));
        }
        self.transmit(now, transport)?;
        Ok(None)
    }

    /// The link's state.
    pub const fn state(&self) -> LinkState {
        self.state
    }

    /// Whether the handshake succeeded and the peer is not known dead.
    pub fn is_established(&self) -> bool {
        self.state == LinkState::Established
    }

    /// Every message numbered before this has been acknowledged by the
    /// peer. The output rule: an output may leave once
    /// [`is_acked`](Self::is_acked) holds for the last log entry before it.
    pub const fn acked(&self) -> Seq {
        self.tx.acked()
    }

    /// Whether the peer has acknowledged message `seq`.
    pub const fn is_acked(&self, seq: Seq) -> bool {
        seq.is_before(self.tx.acked())
    }

    /// Whether every message sent has been acknowledged.
    pub fn all_acked(&self) -> bool {
        self.tx.is_empty()
    }

    /// Free slots in the send window.
    pub fn window_free(&self) -> usize {
        self.tx.free()
    }

    /// Encoded bytes of sequenced messages queued or in flight (at most
    /// [`Config::window_bytes`], or one message).
    pub fn window_bytes(&self) -> usize {
        self.tx.bytes()
    }

    /// The sequence number of the next message received in order.
    pub const fn next_expected(&self) -> Seq {
        self.rx.next()
    }

    /// What the failure detector thinks at `now` (`Alive` before the
    /// handshake).
    pub const fn liveness(&self, now: u64) -> Liveness {
        match self.state {
            LinkState::Established => self.detector.liveness(now),
            LinkState::PeerFailed => Liveness::Failed,
            _ => Liveness::Alive,
        }
    }

    /// The counters.
    pub const fn stats(&self) -> Stats {
        self.stats
    }

    /// Our Hello.
    pub const fn hello(&self) -> &Hello {
        &self.ours
    }

    /// Checks a received packet and points the cursor at its messages.
    fn load(&mut self, len: usize, now: u64) {
        let parsed = Packet::parse(self.rx_buf.get(..len).unwrap_or(&[]));
        let Ok(packet) = parsed else {
            self.stats.rejected = self.stats.rejected.wrapping_add(1);
            return;
        };
        self.stats.packets_received = self.stats.packets_received.wrapping_add(1);
        self.detector.heard(now);
        self.cursor = RxCursor {
            pos: PACKET_HEADER,
            end: len.saturating_sub(4),
            left: packet.count(),
            seq: Seq(packet.seq()),
        };
    }

    /// The next message of the current packet and its sequence number.
    fn next_message(&mut self) -> Option<(Message, Option<Seq>)> {
        if self.cursor.left == 0 {
            return None;
        }
        let body = self.rx_buf.get(self.cursor.pos..self.cursor.end)?;
        let mut r = Reader::new(body);
        let Ok(msg) = Message::decode_from(&mut r) else {
            self.cursor.left = 0;
            return None;
        };
        self.cursor.pos = self.cursor.pos.saturating_add(r.offset());
        self.cursor.left -= 1;
        let seq = msg.is_sequenced().then(|| {
            let s = self.cursor.seq;
            self.cursor.seq = s.add(1);
            s
        });
        Some((msg, seq))
    }

    /// Handles the rest of the current packet until a message makes an event.
    fn drain(&mut self, now: u64) -> Option<Event> {
        while let Some((msg, seq)) = self.next_message() {
            if let Some(event) = self.handle(msg, seq, now) {
                if !self.is_established() {
                    self.cursor.left = 0;
                }
                return Some(event);
            }
        }
        None
    }

    fn handle(&mut self, msg: Message, seq: Option<Seq>, now: u64) -> Option<Event> {
        match msg {
            Message::Hello(h) => self.on_hello(h, now),
            Message::Ack(a) => {
                if self.is_established() {
                    self.tx.ack(Seq(a.up_to), now);
                }
                None
            }
            Message::Heartbeat(_) => None,
            msg => {
                if !self.is_established() {
                    return None;
                }
                self.ack_pending = true;
                match self.rx.accept(seq?) {
                    Accept::Deliver => return Some(Event::Delivered(msg)),
                    Accept::Duplicate => {
                        self.stats.duplicates = self.stats.duplicates.wrapping_add(1)
                    }
                    Accept::Gap => self.stats.gaps = self.stats.gaps.wrapping_add(1),
                }
                None
            }
        }
    }

    fn on_hello(&mut self, peer: Hello, now: u64) -> Option<Event> {
        match self.state {
            LinkState::Handshaking => {
                self.hello_reply |= !peer.seen_peer;
                match self.ours.check_peer(&peer) {
                    Ok(()) => {
                        self.state = LinkState::Established;
                        self.peer_session = peer.session;
                        self.detector = FailureDetector::new(self.config.timeouts, now);
                        self.last_tx = now;
                        Some(Event::Established(peer))
                    }
                    Err(refusal) => {
                        self.state = LinkState::Refused(refusal);
                        self.hello_reply = true;
                        Some(Event::Refused(refusal))
                    }
                }
            }
            LinkState::Established if peer.session != self.peer_session => {
                self.state = LinkState::PeerRestarted;
                Some(Event::PeerRestarted(peer))
            }
            LinkState::Established | LinkState::Refused(_) => {
                self.hello_reply |= !peer.seen_peer;
                None
            }
            LinkState::PeerFailed | LinkState::PeerRestarted => None,
        }
    }

    /// Sends what is due: Hello, ack, new or timed-out messages, heartbeat.
    fn transmit<T: PacketTransport>(
        &mut self,
        now: u64,
        transport: &mut T,
    ) -> Result<(), TransportError<T::Error>> {
        let established = self.is_established();
        let mut hello_due = self.hello_reply
            || (self.state == LinkState::Handshaking
                && self
                    .last_hello
                    .is_none_or(|t| now.saturating_sub(t) >= self.config.hello_interval_us));
        if established && self.tx.check_timeout(now, self.config.retransmit_after_us) {
            self.stats.retransmissions = self.stats.retransmissions.wrapping_add(1);
        }
        let mut heartbeat_due =
            established && now.saturating_sub(self.last_tx) >= self.config.heartbeat_interval_us;
        for _ in 0..TX_PACKETS_PER_POLL {
            let has_data = established && self.tx.unsent().next().is_some();
            let ack_ready = self.ack_pending
                && (has_data || now.saturating_sub(self.last_ack) >= self.config.ack_delay_us);
            let ack_due = established && (ack_ready || heartbeat_due);
            if !(hello_due || has_data || ack_due) {
                break;
            }
            let first = self.tx.unsent().next().map_or(self.tx.acked(), |(s, _)| s);
            let Ok(mut w) = PacketWriter::new(&mut self.tx_buf, first.0) else {
                break;
            };
            // A Hello, an Ack and one message always fit (const assertion
            // above), so these pushes succeed.
            if hello_due {
                let mut hello = self.ours.clone();
                hello.seen_peer = self.state != LinkState::Handshaking;
                let _ = w.push(&Message::Hello(hello));
            }
            if ack_due {
                let _ = w.push(&Message::Ack(Ack {
                    up_to: self.rx.next().0,
                }));
            }
            let mut sent = 0;
            if established {
                for (_, msg) in self.tx.unsent() {
                    let too_big = w.len() + msg.wire_size() > self.config.batch_limit;
                    if (sent > 0 && too_big) || w.push(msg).is_err() {
                        break;
                    }
                    sent += 1;
                }
            }
            if heartbeat_due && sent == 0 {
                let _ = w.push(&Message::Heartbeat(Heartbeat {
                    time_us: now,
                    epoch: self.epoch,
                }));
            }
            let len = w.finish();
            transport.send_packet(self.tx_buf.get(..len).unwrap_or(&[]))?;
            self.stats.packets_sent = self.stats.packets_sent.wrapping_add(1);
            self.tx.mark_sent(sent, now);
            if hello_due {
                self.hello_reply = false;
                self.last_hello = Some(now);
                hello_due = false;
            }
            if ack_due {
                self.ack_pending = false;
                self.last_ack = now;
            }
            heartbeat_due = false;
            self.last_tx = now;
            if sent == 0 {
                break;
            }
        }
        Ok(())
    }
}
