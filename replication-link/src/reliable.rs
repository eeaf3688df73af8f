//! Sequence numbers, the bounded send window (go-back-N with cumulative
//! acknowledgements and a retransmission timer) and the in-order receiver.
//!
//! Go-back-N keeps the receiver stateless beyond one number: it accepts only
//! the next message in order, drops everything else (duplicates, and the
//! messages after a gap), and acknowledges what it has. The sender resends
//! from the oldest unacknowledged message when the timer expires. Loss,
//! duplication and reordering therefore cost retransmissions, never order.

use heapless::Deque;

use crate::message::Message;

/// A sequence number. Numbers wrap at 2³²; comparisons use serial-number
/// arithmetic (RFC 1982), valid while the numbers compared are less than
/// 2³¹ apart, which a window of at most a few thousand guarantees.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Seq(pub u32);

impl Seq {
    /// The number `n` after this one.
    #[must_use]
    pub const fn add(self, n: u32) -> Self {
        Self(self.0.wrapping_add(n))
    }

    /// How far `self` is past `earlier` (wrapping).
    pub const fn since(self, earlier: Self) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Whether `self` comes strictly before `other`.
    pub const fn is_before(self, other: Self) -> bool {
        (other.0.wrapping_sub(self.0) as i32) > 0
    }
}

/// Sender side: up to `W` messages that are queued or sent but not yet
/// acknowledged, and at most a byte budget of them (see
/// [`push`](Self::push)). `queue[i]` has sequence number `base + i`; the
/// first `sent` of them have been transmitted since the last timeout.
pub struct SendWindow<const W: usize> {
    queue: Deque<Message, W>,
    /// The encoded size of what `queue` holds.
    bytes: usize,
    base: Seq,
    /// Index of the next message to (re)transmit.
    sent: usize,
    /// How many messages from `base` have been transmitted at least once:
    /// an ack can cover no more than these.
    ever_sent: usize,
    /// When the oldest transmitted, unacknowledged message was last sent
    /// (or when the ack last advanced): the retransmission timer.
    timer: Option<u64>,
}

impl<const W: usize> SendWindow<W> {
    /// An empty window whose first message will be numbered `first`.
    pub const fn new(first: Seq) -> Self {
        Self {
            queue: Deque::new(),
            bytes: 0,
            base: first,
            sent: 0,
            ever_sent: 0,
            timer: None,
        }
    }

    /// Queues `msg` if the window holds fewer than `W` messages and, with
    /// it, no more than `byte_limit` encoded bytes (an empty window takes
    /// any one message, so that nothing waits for ever); returns its
    /// sequence number. Bounding the bytes in flight bounds what a
    /// go-back-N retransmission resends: on a slow serial link a window of
    /// large messages would take longer to resend than the peer waits.
    ///
    /// # Errors
    ///
    /// Gives the message back when the window is full.
    #[allow(
        clippy::result_large_err,
        reason = "the caller gets its message back, without a heap"
    )]
    pub fn push(&mut self, msg: Message, byte_limit: usize) -> Result<Seq, Message> {
        let size = msg.wire_size();
        if !self.queue.is_empty() && self.bytes.saturating_add(size) > byte_limit {
            return Err(msg);
        }
        let len = u32::try_from(self.queue.len()).unwrap_or(u32::MAX);
        let seq = self.base.add(len);
        self.queue.push_back(msg)?;
        self.bytes += size;
        Ok(seq)
    }

    /// The encoded bytes queued or in flight.
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sequence number of the oldest unacknowledged message: every message
    /// before it has been acknowledged.
    pub const fn acked(&self) -> Seq {
        self.base
    }

    /// Messages queued or in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing awaits transmission or acknowledgement.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Free slots.
    pub fn free(&self) -> usize {
        W - self.queue.len()
    }

    /// Applies a cumulative acknowledgement: everything before `up_to` has
    /// arrived. Acks for nothing new, or for messages never sent (a stale or
    /// bogus ack), are ignored. Returns how many messages were released.
    pub fn ack(&mut self, up_to: Seq, now: u64) -> usize {
        let n = up_to.since(self.base) as usize;
        if !self.base.is_before(up_to) || n > self.ever_sent {
            return 0;
        }
        for _ in 0..n {
            if let Some(m) = self.queue.pop_front() {
                self.bytes -= m.wire_size();
            }
        }
        self.base = up_to;
        self.sent = self.sent.saturating_sub(n);
        self.ever_sent -= n;
        self.timer = if self.ever_sent > 0 { Some(now) } else { None };
        n
    }

    /// The messages not yet (re)transmitted, with their numbers.
    pub fn unsent(&self) -> impl Iterator<Item = (Seq, &Message)> {
        let base = self.base;
        self.queue
            .iter()
            .enumerate()
            .skip(self.sent)
            .map(move |(i, m)| (base.add(u32::try_from(i).unwrap_or(u32::MAX)), m))
    }

    /// Records that the next `n` unsent messages went out at `now`.
    pub fn mark_sent(&mut self, n: usize, now: u64) {
        self.sent = self.sent.saturating_add(n).min(self.queue.len());
        self.ever_sent = self.ever_sent.max(self.sent);
        if self.sent > 0 && self.timer.is_none() {
            self.timer = Some(now);
        }
    }

    /// Go-back-N: when the oldest message in flight has waited `rto` or
    /// more, mark everything in flight for retransmission. Returns whether
    /// it did.
    pub fn check_timeout(&mut self, now: u64, rto: u64) -> bool {
        match self.timer {
            Some(t) if self.ever_sent > 0 && now.saturating_sub(t) >= rto => {
                self.sent = 0;
                self.timer = None;
                true
            }
            _ => false,
        }
    }
}

/// What the receiver does with a sequenced message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Accept {
    /// The next in order: deliver it.
    Deliver,
    /// Already delivered: drop it.
    Duplicate,
    /// Some earlier message is missing: drop it, the sender will resend.
    Gap,
}

/// Receiver side: the next sequence number expected.
#[derive(Copy, Clone, Debug, Default)]
pub struct Receiver {
    next: Seq,
}

impl Receiver {
    /// A receiver expecting `first` first.
    pub const fn new(first: Seq) -> Self {
        Self { next: first }
    }

    /// The next number expected; everything before it has been delivered.
    pub const fn next(&self) -> Seq {
        self.next
    }

    /// Classifies the message numbered `seq`, advancing on delivery.
    pub fn accept(&mut self, seq: Seq) -> Accept {
        if seq == self.next {
            self.next = self.next.add(1);
            Accept::Deliver
        } else if seq.is_before(self.next) {
            Accept::Duplicate
        } else {
            Accept::Gap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Ack, Takeover};

    fn msg(i: u64) -> Message {
        Message::Takeover(Takeover { epoch: i, count: 0 })
    }

    #[test]
    fn seq_order_wraps() {
        assert!(Seq(u32::MAX).is_before(Seq(0)));
        assert!(!Seq(0).is_before(Seq(u32::MAX)));
        assert!(!Seq(5).is_before(Seq(5)));
        assert_eq!(Seq(2).since(Seq(u32::MAX)), 3);
    }

    #[test]
    fn window_fills_acks_and_retransmits_across_wrap() {
        let mut w: SendWindow<4> = SendWindow::new(Seq(u32::MAX - 1));
        for i in 0..4 {
            assert_eq!(
                w.push(msg(i), usize::MAX).unwrap(),
                Seq(u32::MAX - 1).add(i as u32)
            );
        }
        assert_eq!(w.push(msg(9), usize::MAX), Err(msg(9)));
        let seqs: std::vec::Vec<_> = w.unsent().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, [u32::MAX - 1, u32::MAX, 0, 1]);
        w.mark_sent(3, 100);
        // An ack beyond what was sent is ignored.
        assert_eq!(w.ack(Seq(2), 110), 0);
        assert_eq!(w.ack(Seq(0), 110), 2);
        assert_eq!(w.acked(), Seq(0));
        assert_eq!(w.free(), 2);
        // A stale ack is ignored.
        assert_eq!(w.ack(Seq(u32::MAX), 111), 0);
        assert!(!w.check_timeout(119, 10));
        assert!(w.check_timeout(120, 10));
        let seqs: std::vec::Vec<_> = w.unsent().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, [0, 1]);
        // A late ack for a message sent before the timeout still counts.
        assert_eq!(w.ack(Seq(1), 125), 1);
        let seqs: std::vec::Vec<_> = w.unsent().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, [1]);
        w.mark_sent(1, 130);
        assert_eq!(w.ack(Seq(2), 131), 1);
        assert!(w.is_empty());
        assert!(!w.check_timeout(1000, 10));
    }

    #[test]
    fn the_window_holds_at_most_its_bytes_but_always_one_message() {
        let size = msg(0).wire_size();
        let mut w: SendWindow<8> = SendWindow::new(Seq(0));
        // Room for two messages' bytes: the third waits.
        for i in 0..2 {
            w.push(msg(i), 2 * size).unwrap();
        }
        assert_eq!(w.push(msg(2), 2 * size), Err(msg(2)));
        assert_eq!(w.bytes(), 2 * size);
        w.mark_sent(2, 0);
        assert_eq!(w.ack(Seq(1), 1), 1);
        assert_eq!(w.bytes(), size);
        w.push(msg(2), 2 * size).unwrap();
        // An empty window takes a message larger than the budget.
        let mut w: SendWindow<8> = SendWindow::new(Seq(0));
        w.push(msg(0), 1).unwrap();
        assert_eq!(w.push(msg(1), 1), Err(msg(1)));
        w.mark_sent(1, 0);
        w.ack(Seq(1), 1);
        assert_eq!((w.bytes(), w.is_empty()), (0, true));
    }

    #[test]
    fn receiver_classifies() {
        let mut r = Receiver::new(Seq(u32::MAX));
        assert_eq!(r.accept(Seq(0)), Accept::Gap);
        assert_eq!(r.accept(Seq(u32::MAX)), Accept::Deliver);
        assert_eq!(r.accept(Seq(u32::MAX)), Accept::Duplicate);
        assert_eq!(r.accept(Seq(0)), Accept::Deliver);
        assert_eq!(r.next(), Seq(1));
        let _ = Message::Ack(Ack { up_to: r.next().0 });
    }
}
