//! The replica engine: what a board does with each environment input and
//! at each epoch boundary, by role. Pure logic over a [`LogPort`], so that
//! it builds and is tested on the host; the board gives it the link (or
//! nothing), the instruction count and the state fingerprint.
//!
//! | role | an input | a boundary |
//! | --- | --- | --- |
//! | [`Role::Solo`] | the board's own value | nothing to log |
//! | [`Role::Primary`] | the board's own value, logged (`LogEntry`) | `EpochEnd` logged |
//! | [`Role::Backup`] | the logged value, after checking the access is the logged one | checked against the logged `EpochEnd`, whose interrupt lines are raised |
//!
//! A backup whose log ends (the source sent `Takeover`, or, with failover,
//! the primary is gone and all it sent is replayed) goes live at that
//! point: from then on it behaves as a solo board, except that guest time
//! goes on from where the log left it: its own clock may be behind the
//! primary's (guest time would go backwards) or ahead (it would leap: under
//! QEMU a waiting backup's clock runs ahead by seconds), so time inputs
//! (counter reads, timer registers) are shifted by
//! [`Engine::time_offset`], fixed at the first one after the log ended so
//! that it reads the last logged time.
//! Record is a primary whose log goes to a file through the host, replay a
//! backup whose log comes from one (`docs/record-replay.md`).
//!
//! A primary reports how much guest output it released with
//! [`Engine::released`] (a `Released` message, the output rule of
//! [`output`](super::output)); a replaying backup takes those marks out of
//! the log as it goes ([`Engine::peer_released`]): they are not log
//! entries.
//!
//! Every failure is an outcome ([`Stop`]), never a panic: a divergence
//! names where and what; a peer that went away is [`Stop::PeerGone`], which
//! is not a divergence.
//!
//! What a gone peer means depends on what the peer is:
//!
//! | peer | a primary's send fails | a replaying backup's log fails |
//! | --- | --- | --- |
//! | a host program (record, replay: the default) | [`Stop::PeerGone`] | [`Stop::PeerGone`] |
//! | another board ([`Engine::with_failover`]) | it continues alone ([`Engine::take_backup_lost`]) | it goes live there ([`LiveReason::PeerGone`]) |

use super::fingerprint::Fingerprint;
use super::replay::{self, At, Divergence, Expect};
use heapless::Vec;
use replication_link::message::{EpochEnd, InputKind, LogEntry, MAX_INTERRUPTS, Message, Released};

/// What the board is in a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// No log: epochs only.
    Solo,
    /// Sends its log to a sink.
    Primary,
    /// Consumes a log from a source.
    Backup,
}

/// The peer (or the host program standing in for it) is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerGone;

/// Where a primary's log goes and a backup's comes from.
pub trait LogPort {
    /// Sends the next message of the log, in order. May wait for room.
    fn send(&mut self, msg: Message) -> Result<(), PeerGone>;
    /// The next logged message, waiting for it if need be.
    ///
    /// Every message the port already holds (delivered by the link) is
    /// returned before it reports the peer gone: a backup that takes over
    /// must first replay all of the log it received, or it would go live
    /// at a point the primary had passed (and whose output it may have
    /// released).
    fn next(&mut self) -> Result<Message, PeerGone>;
}

/// A port for a solo board: nothing to send, no log to read.
pub struct NoLog;

impl LogPort for NoLog {
    fn send(&mut self, _: Message) -> Result<(), PeerGone> {
        Ok(())
    }
    fn next(&mut self) -> Result<Message, PeerGone> {
        Err(PeerGone)
    }
}

/// Why the engine cannot go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The backup's guest did not do what the log says.
    Diverged(Divergence),
    /// The link's peer went away (and the engine has no failover).
    PeerGone,
}

impl From<PeerGone> for Stop {
    fn from(_: PeerGone) -> Self {
        Stop::PeerGone
    }
}

/// Why a backup's log ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveReason {
    /// The log says so: a `Takeover` (the end of a recorded log), or
    /// another message that is not part of a log.
    EndOfLog,
    /// The primary is gone (with failover): everything it got through was
    /// replayed.
    PeerGone,
}

/// Where a backup went live, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WentLive {
    pub at: At,
    pub why: LiveReason,
}

/// The interrupt lines an epoch boundary raises.
pub type Lines = Vec<u32, MAX_INTERRUPTS>;

/// The engine of one board.
pub struct Engine<P> {
    role: Role,
    port: P,
    epoch: u64,
    /// A backup whose log ended: it runs on alone.
    live: bool,
    /// Where and why the log ended, until the board has said so.
    went_live: Option<WentLive>,
    /// The peer is another board: a gone peer is a failover, not a stop.
    failover: bool,
    /// A primary whose backup went away: the epoch, until the board has
    /// said so.
    backup_lost: Option<u64>,
    /// The primary's released output, by the largest `Released` consumed
    /// (backup).
    peer_released: u64,
    /// The total the last `Released` sent carried (primary).
    released_sent: u64,
    /// Log entries sent or consumed.
    entries: u64,
    /// The latest guest time the guest has seen (time inputs only).
    last_time: u64,
    /// Added to this board's clock once live; `None` until fixed.
    time_offset: Option<i64>,
    /// Hash of every input the guest observed in this epoch (kind, width,
    /// source, count, value): part of the boundary fingerprint, so that a
    /// log whose values were changed fails at the boundary of the epoch
    /// that holds the change, even when the guest's state absorbs it.
    inputs: Fingerprint,
}

impl<P: LogPort> Engine<P> {
    pub fn new(role: Role, port: P) -> Self {
        Self {
            role,
            port,
            epoch: 0,
            live: false,
            went_live: None,
            failover: false,
            backup_lost: None,
            peer_released: 0,
            released_sent: 0,
            entries: 0,
            last_time: 0,
            time_offset: None,
            inputs: Fingerprint::new(),
        }
    }

    /// The peer is another board of a live pair, not a host program: a
    /// primary whose backup is gone continues alone, and a backup whose
    /// primary is gone goes live where the log it received ends.
    pub fn with_failover(mut self) -> Self {
        self.failover = true;
        self
    }

    pub fn role(&self) -> Role {
        self.role
    }
    /// The epoch in progress (0 first).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Log entries sent (primary) or consumed (backup).
    pub fn entries(&self) -> u64 {
        self.entries
    }
    /// A backup that is still consuming its log.
    pub fn replaying(&self) -> bool {
        self.role == Role::Backup && !self.live
    }
    /// A backup whose log ended.
    pub fn live(&self) -> bool {
        self.live
    }
    /// Where and why the log ended, once, after the call that found it.
    pub fn take_went_live(&mut self) -> Option<WentLive> {
        self.went_live.take()
    }
    /// The epoch in which a primary (with failover) found its backup gone
    /// and went on alone, once, after the call that found it.
    pub fn take_backup_lost(&mut self) -> Option<u64> {
        self.backup_lost.take()
    }
    /// How much output the primary has released, by the largest
    /// `Released` this backup consumed from its log (0 before any).
    pub fn peer_released(&self) -> u64 {
        self.peer_released
    }
    /// What is added to this board's clock to make guest time (0 but on a
    /// backup that went live; negative when its clock was ahead).
    pub fn time_offset(&self) -> i64 {
        self.time_offset.unwrap_or(0)
    }
    pub fn port(&mut self) -> &mut P {
        &mut self.port
    }
    pub fn port_ref(&self) -> &P {
        &self.port
    }

    /// A primary whose backup is gone runs on unprotected: nothing more
    /// is logged.
    pub fn continue_alone(&mut self) {
        if self.role == Role::Primary {
            self.role = Role::Solo;
        }
    }

    /// A primary has released `total` bytes of guest output since the
    /// start: tells the backup (a `Released`) when that is more than it
    /// last told it. Nothing on other roles. The board calls it at epoch
    /// boundaries, so that the backup's buffer stays bounded.
    pub fn released(&mut self, total: u64) -> Result<(), Stop> {
        if self.role != Role::Primary || total <= self.released_sent {
            return Ok(());
        }
        self.log(Message::Released(Released { output: total }))?;
        self.released_sent = total;
        Ok(())
    }

    /// The inputs observed in the current epoch, hashed.
    pub fn inputs_digest(&self) -> u64 {
        self.inputs.finish()
    }

    /// An environment input the guest observes at instruction `count` of
    /// the epoch: `computed` is what this board would give it. Returns the
    /// value the guest gets.
    pub fn input(
        &mut self,
        count: u64,
        kind: InputKind,
        detail: u8,
        source: u64,
        computed: u64,
    ) -> Result<u64, Stop> {
        let value = if is_time(kind) {
            let v = self.time_value(count, kind, detail, source, computed)?;
            self.last_time = self.last_time.max(v);
            v
        } else {
            self.input_value(count, kind, detail, source, computed)?
        };
        self.inputs
            .words(&[kind as u64 | (u64::from(detail) << 8), source, count, value]);
        Ok(value)
    }

    /// A time input: as any input, but once live, on this board's clock
    /// shifted so that guest time does not go backwards.
    fn time_value(
        &mut self,
        count: u64,
        kind: InputKind,
        detail: u8,
        source: u64,
        computed: u64,
    ) -> Result<u64, Stop> {
        // A live board's input is its own value (the log may end at this
        // very input); `live` is only ever set on a backup.
        let v = self.input_value(count, kind, detail, source, computed)?;
        if !self.live {
            return Ok(v);
        }
        // Fixed at the first time input after the log ended, so that guest
        // time goes on from the last logged time, whether this board's
        // clock is behind the primary's (a shift forward) or ahead (back):
        // the guest sees neither a step back nor a leap.
        let offset = *self
            .time_offset
            .get_or_insert(clock_shift(self.last_time, computed));
        Ok(computed.saturating_add_signed(offset))
    }

    fn input_value(
        &mut self,
        count: u64,
        kind: InputKind,
        detail: u8,
        source: u64,
        computed: u64,
    ) -> Result<u64, Stop> {
        match self.role {
            Role::Primary => {
                self.log(Message::LogEntry(LogEntry {
                    epoch: self.epoch,
                    count,
                    kind,
                    detail,
                    source,
                    value: computed,
                }))?;
                Ok(computed)
            }
            Role::Backup if !self.live => {
                let got = Expect {
                    epoch: self.epoch,
                    count,
                    kind,
                    detail,
                    source,
                };
                match self.next_logged()? {
                    Ok(Message::LogEntry(e)) => {
                        self.entries += 1;
                        replay::check_input(&e, got).map_err(Stop::Diverged)
                    }
                    Ok(Message::EpochEnd(end)) => {
                        Err(Stop::Diverged(Divergence::InputInsteadOfBoundary {
                            at: self.at(count),
                            got,
                            logged_end: At {
                                epoch: end.epoch,
                                count: end.count,
                            },
                        }))
                    }
                    Ok(_) => {
                        self.go_live(count, LiveReason::EndOfLog);
                        Ok(computed)
                    }
                    Err(why) => {
                        self.go_live(count, why);
                        Ok(computed)
                    }
                }
            }
            _ => Ok(computed),
        }
    }

    /// An epoch boundary at instruction `count`, PC `pc`, with the state
    /// `fingerprint` (which must include [`Engine::inputs_digest`]).
    /// `levels` are the interrupt lines this board would raise; returns
    /// the lines to raise (a replaying backup: the logged ones). The next
    /// epoch starts.
    pub fn boundary(
        &mut self,
        count: u64,
        pc: u64,
        fingerprint: u64,
        levels: &[u32],
    ) -> Result<Lines, Stop> {
        let mut out: Lines = levels.iter().copied().take(MAX_INTERRUPTS).collect();
        match self.role {
            Role::Primary => self.log(Message::EpochEnd(EpochEnd {
                epoch: self.epoch,
                count,
                pc,
                fingerprint,
                interrupts: out.clone(),
            }))?,
            Role::Backup if !self.live => match self.next_logged()? {
                Ok(Message::EpochEnd(end)) => {
                    replay::check_boundary(&end, self.epoch, count, pc, fingerprint)
                        .map_err(Stop::Diverged)?;
                    out = end.interrupts;
                }
                Ok(Message::LogEntry(e)) => {
                    return Err(Stop::Diverged(Divergence::BoundaryInsteadOfInput {
                        at: self.at(count),
                        expected: Expect::of(&e),
                    }));
                }
                Ok(_) => self.go_live(count, LiveReason::EndOfLog),
                Err(why) => self.go_live(count, why),
            },
            _ => {}
        }
        self.epoch += 1;
        self.inputs = Fingerprint::new();
        Ok(out)
    }

    fn at(&self, count: u64) -> At {
        At {
            epoch: self.epoch,
            count,
        }
    }

    fn go_live(&mut self, count: u64, why: LiveReason) {
        self.live = true;
        self.went_live = Some(WentLive {
            at: self.at(count),
            why,
        });
    }

    /// A primary's log message, sent. With failover a gone backup is not a
    /// stop: the primary goes on alone (nothing more is logged).
    fn log(&mut self, msg: Message) -> Result<(), Stop> {
        let entry = matches!(msg, Message::LogEntry(_));
        match self.port.send(msg) {
            Ok(()) => {
                self.entries += u64::from(entry);
                Ok(())
            }
            Err(PeerGone) if self.failover => {
                self.backup_lost = Some(self.epoch);
                self.continue_alone();
                Ok(())
            }
            Err(PeerGone) => Err(Stop::PeerGone),
        }
    }

    /// A backup's next log message, the primary's `Released` marks taken
    /// out on the way (recorded, not entries). `Ok(Err(LiveReason::PeerGone))`:
    /// with failover, the primary is gone and the log ends here.
    fn next_logged(&mut self) -> Result<Result<Message, LiveReason>, Stop> {
        loop {
            match self.port.next() {
                Ok(Message::Released(r)) => self.peer_released = self.peer_released.max(r.output),
                Ok(m) => return Ok(Ok(m)),
                Err(PeerGone) if self.failover => return Ok(Err(LiveReason::PeerGone)),
                Err(PeerGone) => return Err(Stop::PeerGone),
            }
        }
    }
}

/// What to add to a board clock that reads `now` so that it reads
/// `last` (clamped to what an `i64` holds).
fn clock_shift(last: u64, now: u64) -> i64 {
    let d = i128::from(last) - i128::from(now);
    d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Inputs that carry guest time.
fn is_time(kind: InputKind) -> bool {
    matches!(kind, InputKind::CounterRead | InputKind::TimerRegRead)
}

#[cfg(test)]
mod tests;
