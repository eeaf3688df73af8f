//! The board's log port ([`LogPort`]): the link to the peer (none on a
//! solo board), the messages it delivered that the engine has not yet
//! consumed, and whether the peer is gone; with the board itself, whose
//! clock the link runs on and whose pause a waiting backup takes.

use super::link_port::LinkPort;
use crate::hw::ReplicaHw;
use crate::replica::engine::{LogPort, PeerGone};
use crate::vm_core::clock;
use replication_link::link::Event;
use replication_link::message::{Message, Takeover as TakeoverMessage};

/// Messages delivered and not yet consumed.
type Queue = heapless::Deque<Message, 32>;

/// The log port of the board: the link (none in free mode), the messages
/// delivered but not yet consumed, and whether the peer is gone.
pub struct BoardLog<B: ReplicaHw> {
    /// The board: clock, pause, console.
    pub(super) board: B,
    pub(super) link: Option<LinkPort<B::Transport>>,
    pub(super) queue: Queue,
    /// The peer failed or restarted. What it delivered before stays in
    /// `queue` and is consumed first (the engine's `LogPort` contract).
    pub(super) gone: bool,
    /// Sequenced messages consumed (a backup), and their encoded bytes;
    /// a primary's are the link port's.
    pub(super) consumed: u64,
    pub(super) log_bytes: u64,
    /// When the peer was last heard from (a delivered message), µs of
    /// the board's clock: how long detection took, at a takeover.
    pub(super) last_heard_us: u64,
}

impl<B: ReplicaHw> BoardLog<B> {
    pub(super) fn new(board: B, link: Option<LinkPort<B::Transport>>) -> Self {
        Self {
            board,
            link,
            queue: heapless::Deque::new(),
            gone: false,
            consumed: 0,
            log_bytes: 0,
            last_heard_us: 0,
        }
    }

    /// The board's clock, µs.
    pub(super) fn now_us(&self) -> u64 {
        clock::now_us(&self.board)
    }

    /// Keeps a delivered message (heard at `now`); a peer that failed or
    /// restarted (a restarted peer lost what it had: it is not ours) is
    /// gone.
    fn on_event(
        queue: &mut Queue,
        gone: &mut bool,
        last_heard_us: &mut u64,
        e: Event,
        now: u64,
    ) -> Result<(), PeerGone> {
        match e {
            Event::Delivered(m) => {
                *last_heard_us = now;
                // Callers poll only while the queue has room (one event
                // per poll), so this push never fails.
                let _ = queue.push_back(m);
                Ok(())
            }
            Event::PeerFailed | Event::PeerRestarted(_) => {
                *gone = true;
                Err(PeerGone)
            }
            _ => Ok(()),
        }
    }

    /// Polls the link once, if there is one.
    pub(super) fn poll(&mut self) -> Option<Event> {
        let now = self.now_us();
        self.link.as_mut()?.poll(now)
    }

    /// Lets acknowledgements and heartbeats flow; `PeerGone` once the
    /// peer is gone.
    pub(super) fn service(&mut self) -> Result<(), PeerGone> {
        // One event per poll: stop while the queue is full, so that no
        // delivered (and so acknowledged) message is ever dropped.
        while !self.gone && !self.queue.is_full() {
            let now = self.now_us();
            let Some(e) = self.link.as_mut().and_then(|port| port.poll(now)) else {
                break;
            };
            Self::on_event(
                &mut self.queue,
                &mut self.gone,
                &mut self.last_heard_us,
                e,
                now,
            )?;
        }
        if self.gone { Err(PeerGone) } else { Ok(()) }
    }

    /// Messages the peer acknowledged, of those sent.
    pub(super) fn acked(&self) -> u64 {
        self.link.as_ref().map_or(0, LinkPort::acked)
    }
    pub(super) fn sent(&self) -> u64 {
        self.link.as_ref().map_or(0, LinkPort::sent)
    }
}

impl<B: ReplicaHw> LogPort for BoardLog<B> {
    fn send(&mut self, msg: Message) -> Result<(), PeerGone> {
        if self.gone {
            return Err(PeerGone);
        }
        match self.link.as_mut() {
            Some(port) => {
                self.log_bytes += msg.wire_size() as u64;
                let (queue, gone, heard) =
                    (&mut self.queue, &mut self.gone, &mut self.last_heard_us);
                port.send(&mut self.board, msg, |e, now| {
                    Self::on_event(queue, gone, heard, e, now)
                })
            }
            None => Ok(()),
        }
    }

    fn next(&mut self) -> Result<Message, PeerGone> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                self.consumed += 1;
                self.log_bytes += m.wire_size() as u64;
                // Its acknowledgement goes now, not at this board's next
                // wait for the log (an epoch later, with the lean log):
                // the primary's held output waits for it. A peer found
                // gone here is noted; what is queued still comes first.
                let _ = self.service();
                return Ok(m);
            }
            if self.gone {
                return Err(PeerGone);
            }
            if self.link.is_none() {
                // No link: the log ended before it began.
                return Ok(Message::Takeover(TakeoverMessage { epoch: 0, count: 0 }));
            }
            let now = self.now_us();
            match self.link.as_mut().and_then(|port| port.poll(now)) {
                // A gone peer is noted; the loop then drains the queue.
                Some(e) => {
                    let _ = Self::on_event(
                        &mut self.queue,
                        &mut self.gone,
                        &mut self.last_heard_us,
                        e,
                        now,
                    );
                }
                // Caught up with the primary: wait a little rather than
                // spin, so that the board's clock (the link's) follows
                // host time while it waits, as the failure detector's
                // timeout assumes, and the host core is free for the
                // primary (the link device raises no interrupt).
                None => clock::pause(&mut self.board),
            }
        }
    }
}
