//! The board's side of record, replay and a live pair
//! (docs/record-replay.md, docs/pair.md): the replica
//! [`engine`](super::engine) over the link, with epochs on the board's
//! epoch counter, and the output rule ([`output`](super::output)) on the
//! guest's console. What the engine decides, this module says on the
//! console; when it cannot go on, the [`Stop`] is returned for the trap
//! path to act on (`TrapOutcome::Replica`), and a refused pairing the
//! exit status for the board to stop with: nothing here stops the board.
//!
//! Generic over what it needs of the board ([`ReplicaHw`]: the clock, a
//! pause, the console, the epoch counter and the link's transport), so
//! that it is host-tested over fakes (`session/tests.rs`); the board's
//! implementation is `arch/aarch64/hw.rs`.

pub(crate) mod link_port;
mod log;
#[cfg(test)]
mod tests;

pub use link_port::LinkPort;
pub use log::BoardLog;

use crate::exit::ExitStatus;
use crate::hw::{EpochCounter, ReplicaHw};
use crate::options::{AckPolicy, Deadlines, Mode, PairTiming};
use crate::replica::digest::PairingConfig;
use crate::replica::engine::{Engine, Lines, LiveReason, LogPort, PeerGone, Role, Stop};
use crate::replica::epoch_time::{Pace, Rate};
use crate::replica::output::{BackupOutput, HoldStats, OutputHold};
use crate::replica::pair_lines::{self, BackupLost, Status, Summary, Takeover};
use crate::vm_core::clock;
use replication_link::handshake::Refusal;
use replication_link::link::Event;
use replication_link::message::{InputKind, Message};

/// Guest output a primary holds for the output rule; the guest waits
/// only when this is full.
const HOLD_BYTES: usize = 4096;
/// Runs of output between two log messages, held at once.
const HOLD_SEGMENTS: usize = 256;
/// Guest output a backup keeps for a takeover: past the primary's
/// released mark it holds at most the primary's hold plus what its guest
/// produces between two marks (`replica::output`), so four holds' worth.
const KEPT_BYTES: usize = 4 * HOLD_BYTES;

/// How often (board µs) a primary whose output is held looks for the
/// acknowledgements that release it, besides at every boundary: a guest
/// that writes, or idles, between two boundaries need not wait for the
/// next one (an epoch can be tens of milliseconds of board time).
const ACK_CHECK_US: u64 = 500;

/// How long a refused board goes on answering its peer's Hellos, so that
/// both consoles name the refusal (µs of the board's clock).
const REFUSED_LINGER_US: u64 = 500_000;

/// Where the guest's console output goes.
#[allow(
    clippy::large_enum_variant,
    reason = "one per board, inside the VM's static; no heap to box into"
)]
enum Output {
    /// Straight out: no pair, or a board that runs alone now.
    Direct,
    /// A primary's: held until the backup holds what precedes it.
    Held(OutputHold<HOLD_BYTES, HOLD_SEGMENTS>),
    /// A backup's: kept, for a takeover, past what the primary released.
    Kept(BackupOutput<KEPT_BYTES>),
}

/// Epochs and the log on this board.
pub struct Epochs<B: ReplicaHw> {
    pub mode: Mode,
    pub counter: B::Counter,
    pub engine: Engine<BoardLog<B>>,
    output: Output,
    timing: PairTiming,
    /// Guest time (µs) of the last status line.
    last_status_us: u64,
    /// When (board µs) a primary with held output last looked for its
    /// acknowledgements outside a boundary.
    last_ack_check_us: u64,
    /// The output hold's figures once it is gone (backup lost).
    lost_hold: Option<HoldStats>,
    /// Test hooks only: the epoch whose fingerprint this board changes.
    diverge_at: Option<u64>,
    /// How a timer deadline inside an epoch is met.
    pub deadlines: Deadlines,
    /// When a primary waits for its backup.
    pub ack: AckPolicy,
}

/// Why a boundary happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundaryReason {
    /// The epoch counter overflowed: `length` instructions ran.
    Overflow,
    /// The guest executed WFI.
    Wfi,
}

impl<B: ReplicaHw> Epochs<B> {
    /// The board's session in `mode`, counting epochs with `counter`, over
    /// `link` (none in free mode).
    pub fn new(
        mode: Mode,
        counter: B::Counter,
        board: B,
        link: Option<LinkPort<B::Transport>>,
        timing: PairTiming,
    ) -> Self {
        let role = match mode {
            Mode::Free => Role::Solo,
            Mode::Record | Mode::Primary => Role::Primary,
            Mode::Replay | Mode::Backup => Role::Backup,
        };
        let log = BoardLog::new(board, link);
        // Guest time runs at the guest counter's frequency (CNTFRQ_EL0,
        // which the guest reads as the board's).
        let rate = Rate::new(log.board.frequency());
        let mut engine = Engine::new(role, log).with_rate(rate);
        if mode.is_pair() {
            // The peer is a board: its death is a takeover or a board
            // running on alone, not the end.
            engine = engine.with_failover();
        }
        Self {
            mode,
            counter,
            engine,
            output: match mode {
                Mode::Primary => Output::Held(OutputHold::new()),
                Mode::Backup => Output::Kept(BackupOutput::new()),
                _ => Output::Direct,
            },
            timing,
            last_status_us: 0,
            last_ack_check_us: 0,
            lost_hold: None,
            diverge_at: None,
            deadlines: Deadlines::default(),
            ack: AckPolicy::default(),
        }
    }

    /// `tandem.selftest=diverge:N` (test-hooks builds): from epoch N's
    /// boundary on, this board's guest is not the other's.
    pub fn diverge_at(&mut self, epoch: Option<u64>) {
        self.diverge_at = epoch;
    }

    /// A backup still consuming its log.
    pub fn replaying(&self) -> bool {
        self.engine.replaying()
    }

    /// Waits until the link is paired; a refused pairing (said on the
    /// console) is the status to stop the board with, once the peer has
    /// had time to hear the refusal too.
    pub fn establish(&mut self) -> Result<(), ExitStatus> {
        let log = self.engine.port();
        if log.link.is_none() {
            return Ok(());
        }
        log.board
            .line(format_args!("hypervisor: link: waiting for the peer"));
        loop {
            let log = self.engine.port();
            match log.poll() {
                Some(Event::Established(peer)) => {
                    log.board.line(format_args!(
                        "hypervisor: link: paired with a {:?} (session {:#x})",
                        peer.role, peer.session
                    ));
                    return Ok(());
                }
                Some(Event::Refused(Refusal::Configuration { ours, theirs })) => {
                    let (ours, theirs) = (
                        PairingConfig::from_digest(&ours),
                        PairingConfig::from_digest(&theirs),
                    );
                    log.board.line(format_args!(
                        "hypervisor: link: pairing refused: {}",
                        ours.differences(&theirs)
                    ));
                    return Err(self.refused());
                }
                Some(Event::Refused(r)) => {
                    log.board
                        .line(format_args!("hypervisor: link: pairing refused: {r}"));
                    return Err(self.refused());
                }
                Some(Event::Delivered(m)) => {
                    let _ = log.queue.push_back(m);
                }
                _ => {}
            }
        }
    }

    /// A refused board: lets its peer hear the refusal (the link keeps
    /// answering Hellos) so that both consoles name it; returns the status
    /// it stops with.
    fn refused(&mut self) -> ExitStatus {
        let log = self.engine.port();
        let until = log.now_us() + REFUSED_LINGER_US;
        while log.now_us() < until {
            let _ = log.poll();
        }
        ExitStatus::BadConfiguration
    }

    /// Lets acknowledgements and heartbeats flow, lets out the output they
    /// allow, and notices a peer gone (in record and replay, a stop).
    pub fn service_link(&mut self) -> Result<(), Stop> {
        let gone = self.engine.port().service().is_err();
        if gone && !self.mode.is_pair() {
            // Record and replay: the host program is the peer.
            return Err(Stop::PeerGone);
        }
        if gone && self.engine.role() == Role::Primary {
            // The engine would find out at its next send; say it now.
            self.engine.continue_alone();
            let epoch = self.engine.epoch();
            self.backup_lost(epoch);
        }
        self.after_engine();
        Ok(())
    }

    /// When the link next needs servicing while the guest idles: the
    /// physical counter value at which to wake (a heartbeat is due), or
    /// `None` with no live link.
    pub fn idle_wake(&self) -> Option<u64> {
        let log = self.engine.port_ref();
        if log.link.is_none() || log.gone || self.engine.role() == Role::Solo {
            return None;
        }
        // Held output waits for an acknowledgement: look for it soon.
        let ms = match &self.output {
            Output::Held(h) if h.held() > 0 => ACK_CHECK_US.div_ceil(1_000),
            _ => self.timing.heartbeat_ms,
        };
        Some(clock::heartbeat_wake(&log.board, ms))
    }

    /// The guest's console output: out, held or kept by the output rule.
    pub fn guest_output(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        loop {
            let log = self.engine.port();
            let (sent, now) = (log.sent(), log.now_us());
            match &mut self.output {
                Output::Direct => {
                    log.board.write_guest(bytes);
                    return Ok(());
                }
                Output::Kept(k) => {
                    k.push(bytes);
                    return Ok(());
                }
                Output::Held(h) => {
                    if h.push(bytes, sent, now).is_ok() {
                        // The acknowledgements it waits for arrive between
                        // boundaries too: look for them now and then
                        // (servicing the link releases what they allow).
                        if h.held() > 0 && now >= self.last_ack_check_us + ACK_CHECK_US {
                            self.last_ack_check_us = now;
                            self.service_link()?;
                        } else {
                            self.release_held();
                        }
                        return Ok(());
                    }
                }
            }
            // The hold is full: the guest waits here for acknowledgements
            // (or for the backup to be declared gone).
            self.service_link()?;
        }
    }

    /// Lets out the held output whose log messages are all acknowledged.
    fn release_held(&mut self) {
        let log = self.engine.port();
        let (acked, now) = (log.acked(), log.now_us());
        if let Output::Held(h) = &mut self.output {
            h.release(acked, now, |b| log.board.write_guest(b));
        }
    }

    /// What follows any engine call: a backup gone, a takeover, output.
    fn after_engine(&mut self) {
        if let Some(epoch) = self.engine.take_backup_lost() {
            self.backup_lost(epoch);
        }
        if let Some(live) = self.engine.take_went_live() {
            self.went_live(live.at.epoch, live.at.count, live.why);
        }
        if let Output::Kept(k) = &mut self.output {
            k.mark(self.engine.peer_released());
        }
        self.release_held();
    }

    fn backup_lost(&mut self, epoch: u64) {
        let log = self.engine.port();
        log.board.line(format_args!("{}", BackupLost { epoch }));
        log.board.line(format_args!(
            "hypervisor: pair: the backup is gone (epoch {epoch}); continuing unprotected"
        ));
        if let Output::Held(h) = &mut self.output {
            let now = log.now_us();
            h.release_all(now, |b| log.board.write_guest(b));
            self.lost_hold = Some(h.stats());
        }
        self.output = Output::Direct;
    }

    fn went_live(&mut self, epoch: u64, count: u64, why: LiveReason) {
        if !self.mode.is_pair() {
            self.engine.port().board.line(format_args!(
                "replay: end of log at epoch {epoch} count {count}; going live"
            ));
            return;
        }
        let mut released = 0;
        if let Output::Kept(k) = &mut self.output {
            k.mark(self.engine.peer_released());
            released = k.kept() as u64;
        }
        // Guest time where the log ended: the guest's clock goes on from
        // here, whatever the detection took on the board's clock.
        let guest_us =
            self.engine.guest_time(count) / clock::ticks_per_us(&self.engine.port_ref().board);
        // Measured: from the last message heard to now, on this board's
        // clock (the failure detector's timeout plus what the takeover's
        // replay of the held log took).
        let log = self.engine.port();
        let silent_ms = match why {
            LiveReason::PeerGone => log.now_us().saturating_sub(log.last_heard_us) / 1_000,
            LiveReason::EndOfLog => 0,
        };
        // The line first: the host marks the takeover before the output
        // that follows it.
        log.board.line(format_args!(
            "{}",
            Takeover {
                epoch,
                count,
                guest_us,
                silent_ms,
                released,
            }
        ));
        log.board.line(format_args!(
            "hypervisor: pair: the primary is gone (nothing heard for {silent_ms} ms); took over at epoch {epoch} count {count}, running on unprotected"
        ));
        if let Output::Kept(k) = &mut self.output {
            if k.lost() > 0 {
                log.board.line(format_args!(
                    "hypervisor: pair: FAULT: {} bytes of output were lost from the takeover buffer",
                    k.lost()
                ));
            }
            k.take_unreleased(|b| log.board.write_guest(b));
        }
        self.output = Output::Direct;
    }

    /// Before the guest's output leaves the board for good (power-off).
    /// A primary: every log message acknowledged, its held output out,
    /// and a last `Released` saying so, acknowledged too. A pair's backup
    /// whose guest stopped where the primary's did: it waits for that last
    /// mark, since the primary may die before letting its last output
    /// out; if the primary is gone first, the backup emits that output.
    pub fn flush(&mut self) -> Result<(), Stop> {
        if self.engine.role() == Role::Primary {
            self.wait_all_acked()?;
            self.release_held();
            if let Output::Held(h) = &self.output {
                let total = h.released_total();
                self.engine.released(total)?;
                self.after_engine();
                self.wait_all_acked()?;
            }
        }
        if self.engine.replaying() && self.mode.is_pair() {
            self.await_last_mark();
            // Let the acknowledgement of the last message out, or the
            // primary would wait for it and find its backup gone.
            let log = self.engine.port();
            let until = log.now_us() + 4 * 1_000 * self.timing.heartbeat_ms;
            while log.now_us() < until && !log.gone {
                let _ = log.service();
            }
        }
        self.release_held();
        Ok(())
    }

    /// Services the link until the peer has acknowledged everything (or is
    /// gone), pausing between polls once the wait has lasted
    /// [`link_port::FULL_WINDOW_SPIN_US`], as a full send window does.
    fn wait_all_acked(&mut self) -> Result<(), Stop> {
        let since = clock::now_us(&self.engine.port_ref().board);
        while self.engine.role() == Role::Primary
            && self
                .engine
                .port_ref()
                .link
                .as_ref()
                .is_some_and(|p| !p.link.all_acked())
        {
            self.service_link()?;
            let board = &mut self.engine.port().board;
            if clock::now_us(board).saturating_sub(since) > link_port::FULL_WINDOW_SPIN_US {
                clock::pause(board);
            }
        }
        Ok(())
    }

    /// A backup at its guest's power-off: reads the log until the primary
    /// says it released everything, or is gone (then the backup emits
    /// what it kept, as at a takeover).
    fn await_last_mark(&mut self) {
        loop {
            let Output::Kept(k) = &mut self.output else {
                return;
            };
            k.mark(self.engine.peer_released());
            if k.released_mark() >= k.position() {
                return;
            }
            match self.engine.port().next() {
                Ok(Message::Released(r)) => k.mark(r.output),
                // Nothing else follows a power-off in a log.
                Ok(_) => {}
                Err(PeerGone) => {
                    let (epoch, count) = (self.engine.epoch(), self.counter.elapsed());
                    return self.went_live(epoch, count, LiveReason::PeerGone);
                }
            }
        }
    }

    /// An environment input the guest observes: `computed` is what this
    /// board would give it; returns what the guest gets (`Engine::input`),
    /// or why the engine cannot go on.
    pub fn input(
        &mut self,
        kind: InputKind,
        detail: u8,
        source: u64,
        computed: u64,
    ) -> Result<u64, Stop> {
        let count = self.counter.elapsed();
        let v = self.engine.input(count, kind, detail, source, computed)?;
        self.after_engine();
        Ok(v)
    }

    /// A time input (a counter read, a timer register access): guest time
    /// at this instruction (`Engine::time`), not logged.
    pub fn time(&mut self, kind: InputKind, source: u64) -> u64 {
        let count = self.counter.elapsed();
        self.engine.time(count, kind, source)
    }

    /// Guest time now (at the instruction the guest stopped at).
    pub fn guest_now(&self) -> u64 {
        self.engine.guest_time(self.counter.elapsed())
    }

    /// The base this board would give the next epoch if the boundary were
    /// now (`Engine::next_time`, over the physical counter), the guest's
    /// next timer deadline `deadline`.
    pub fn next_time(&mut self, pace: Pace, deadline: Option<u64>) -> u64 {
        let count = self.counter.elapsed();
        let clock = self.engine.port_ref().board.counter();
        self.engine.next_time(count, clock, pace, deadline)
    }

    /// Ends the epoch in progress where guest time reaches the guest's
    /// next timer `deadline`, if that comes before the epoch's end: the
    /// timer interrupt is then taken at its exact instruction, on both
    /// boards (`replica::epoch_time`).
    pub fn end_at_deadline(&mut self, deadline: Option<u64>) {
        let Some(deadline) = deadline else { return };
        let at = self.engine.epoch_time().count_at(deadline);
        if at > self.counter.elapsed() && at < self.counter.end() {
            self.counter.end_at(at);
        }
    }

    /// The epoch counter ran out: whether that was a timer deadline to
    /// meet inside the epoch (`Deadlines::Inline`). If so the epoch goes
    /// on to its full length; otherwise it is the epoch's end.
    pub fn deadline_inside(&mut self) -> bool {
        if self.deadlines != Deadlines::Inline || !self.counter.ends_early() {
            return false;
        }
        self.counter.end_at(self.counter.length());
        true
    }

    /// The inputs observed in the current epoch, hashed.
    pub fn inputs_digest(&self) -> u64 {
        self.engine.inputs_digest()
    }

    /// An epoch boundary (`Engine::boundary`; `time` the next epoch's base
    /// from [`Self::next_time`]); the next epoch's counter starts.
    pub fn boundary(
        &mut self,
        count: u64,
        pc: u64,
        fingerprint: u64,
        levels: &[u32],
        time: u64,
    ) -> Result<Lines, Stop> {
        let fingerprint = if self.diverge_at == Some(self.engine.epoch()) {
            fingerprint ^ 1
        } else {
            fingerprint
        };
        let lines = self.engine.boundary(count, pc, fingerprint, levels, time)?;
        if let Output::Held(h) = &self.output {
            // How far the primary released: the backup's buffer is
            // trimmed by it.
            let total = h.released_total();
            self.engine.released(total)?;
        }
        self.after_engine();
        if self.ack == AckPolicy::Epoch && self.mode.is_pair() {
            // The 1995 prototype's rule: the guest waits at every epoch's
            // end until the backup has the whole log.
            self.wait_all_acked()?;
        }
        self.status_if_due();
        self.counter.start();
        Ok(lines)
    }

    fn status_if_due(&mut self) {
        if !self.mode.is_pair() {
            return;
        }
        let now = self.engine.port_ref().now_us();
        if now < self.last_status_us + pair_lines::STATUS_EVERY_US {
            return;
        }
        self.last_status_us = now;
        let status = self.status();
        self.engine.port().board.line(format_args!("{status}"));
    }

    fn status(&self) -> Status {
        let log = self.engine.port_ref();
        let held = match &self.output {
            Output::Held(h) => h.held() as u64,
            Output::Kept(k) => k.kept() as u64,
            Output::Direct => 0,
        };
        let stats = log
            .link
            .as_ref()
            .map(|p| p.link.stats())
            .unwrap_or_default();
        Status {
            retransmits: u64::from(stats.retransmissions),
            rejected: u64::from(stats.rejected),
            epoch: self.engine.epoch(),
            guest_us: self.engine.guest_time(self.counter.elapsed())
                / clock::ticks_per_us(&log.board),
            msgs: log.sent().max(log.consumed),
            log_bytes: log.log_bytes,
            acked: log.acked(),
            held,
        }
    }

    /// What this board did, for the closing report.
    pub fn summary(&self) -> Summary {
        let st = self.status();
        let mut s = Summary {
            epochs: self.engine.epoch() + 1,
            msgs: st.msgs,
            log_bytes: st.log_bytes,
            acked: st.acked,
            ..Summary::default()
        };
        let hold = match &self.output {
            Output::Held(h) => Some(h.stats()),
            _ => self.lost_hold,
        };
        if let Some(p) = self.engine.port_ref().link.as_ref() {
            s.window_waits = p.window_waits;
            s.window_wait_us = p.window_wait_us;
        }
        if let Some(h) = hold {
            s.hold_capacity = h.capacity as u64;
            s.hold_max = h.max_held as u64;
            s.released = h.released;
            s.full_waits = h.full_waits;
            s.hold_p50_us = h.p50_us;
            s.hold_p99_us = h.p99_us;
        }
        s
    }
}
