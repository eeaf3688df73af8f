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
//! Guest time is not an input ([`epoch_time`](super::epoch_time)): inside
//! an epoch it is the epoch's base plus a function of the instruction
//! count ([`Engine::time`]), the same on both boards; the primary chooses
//! each next base from its clock at the boundary ([`Engine::next_time`])
//! and logs it in the `EpochEnd`; a backup takes the logged one. What is
//! logged is only what comes from outside the board's deterministic
//! model: firmware results, reads of a device's outside side (console RX),
//! and each epoch's end.
//!
//! A backup whose log ends (the source sent `Takeover`, or, with failover,
//! the primary is gone and all it sent is replayed) goes live at that
//! point: from then on it behaves as a solo board, except that guest time
//! goes on from where the log left it: its own clock may be behind the
//! primary's (guest time would go backwards) or ahead (it would leap: under
//! QEMU a waiting backup's clock runs ahead by seconds), so its clock is
//! shifted by [`Engine::time_offset`], fixed at the first boundary after
//! the log ended so that it reads where guest time got to. A primary's
//! offset is fixed the same way at its first boundary (guest time starts
//! at 0 on every board).
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

use super::epoch_time::{EpochTime, Pace, Rate, next_base};
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
    /// Guest time in the epoch in progress.
    time: EpochTime,
    /// Added to this board's clock to make guest time; `None` until fixed
    /// (at the first boundary this board chooses a base: a primary's
    /// first, a backup's first after its log ended).
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
            time: EpochTime::new(0, Rate::new(super::epoch_time::INSTRUCTIONS_PER_SECOND)),
            time_offset: None,
            inputs: Fingerprint::new(),
        }
    }

    /// Guest time runs at `rate` (the guest counter's frequency); by
    /// default one tick per instruction.
    pub fn with_rate(mut self, rate: Rate) -> Self {
        self.time.rate = rate;
        self
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
    /// What is added to this board's clock to make guest time (0 until
    /// the board first chose a base; negative when its clock was ahead of
    /// guest time, as it is from the start on a primary).
    pub fn time_offset(&self) -> i64 {
        self.time_offset.unwrap_or(0)
    }

    /// Guest time in the epoch in progress.
    pub fn epoch_time(&self) -> EpochTime {
        self.time
    }

    /// Guest time at instruction `count` of the epoch in progress.
    pub fn guest_time(&self, count: u64) -> u64 {
        self.time.at(count)
    }

    /// A time input the guest observes at instruction `count` (a counter
    /// read, a timer register access; `kind` and `source` say which):
    /// guest time there, the same on every board, so it is not logged;
    /// hashed into the epoch's inputs like any input.
    pub fn time(&mut self, count: u64, kind: InputKind, source: u64) -> u64 {
        let value = self.time.at(count);
        self.inputs.words(&[kind as u64, source, count, value]);
        value
    }

    /// The base this board would give the next epoch at a boundary at
    /// `count`, its clock reading `clock` (counter ticks) there and the
    /// guest's next timer `deadline` (the `time` for
    /// [`Engine::boundary`]; `epoch_time::next_base`). A replaying
    /// backup's base comes from the log: this is where its epoch ended.
    pub fn next_time(&mut self, count: u64, clock: u64, pace: Pace, deadline: Option<u64>) -> u64 {
        let end = self.time.at(count);
        if self.replaying() {
            return end;
        }
        let offset = *self.time_offset.get_or_insert(clock_shift(end, clock));
        next_base(
            self.time,
            count,
            clock.saturating_add_signed(offset),
            pace,
            deadline,
        )
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
        let value = self.input_value(count, kind, detail, source, computed)?;
        self.inputs
            .words(&[kind as u64 | (u64::from(detail) << 8), source, count, value]);
        Ok(value)
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
    /// `levels` are the interrupt lines this board would raise at guest
    /// time `time`, the next epoch's base ([`Engine::next_time`]); returns
    /// the lines to raise (a replaying backup: the logged ones, and its
    /// next base is the logged one). The next epoch starts.
    pub fn boundary(
        &mut self,
        count: u64,
        pc: u64,
        fingerprint: u64,
        levels: &[u32],
        time: u64,
    ) -> Result<Lines, Stop> {
        let mut out: Lines = levels.iter().copied().take(MAX_INTERRUPTS).collect();
        // Never before where this epoch got to, whatever the caller says.
        let mut base = time.max(self.time.at(count));
        match self.role {
            Role::Primary => self.log(Message::EpochEnd(EpochEnd {
                epoch: self.epoch,
                count,
                pc,
                fingerprint,
                time: base,
                interrupts: out.clone(),
            }))?,
            Role::Backup if !self.live => match self.next_logged()? {
                Ok(Message::EpochEnd(end)) => {
                    replay::check_boundary(&end, self.epoch, count, pc, fingerprint)
                        .map_err(Stop::Diverged)?;
                    replay::check_time(&end, self.time.at(count)).map_err(Stop::Diverged)?;
                    base = end.time;
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
        self.time.base = base;
        // The base is part of the next epoch's inputs: a log whose time
        // was changed fails at the boundary of the epoch that ran on it.
        self.inputs = Fingerprint::new();
        self.inputs.word(base);
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod time_tests;
