//! The board's side of record, replay and a live pair
//! (docs/record-replay.md, docs/pair.md): the library's replica engine
//! (`el2_hypervisor::replica::engine`) over the link, with epochs on the
//! PMU, and the output rule (`el2_hypervisor::replica::output`) on the
//! guest's console. What the engine decides, this module says on the
//! console; when it cannot go on, the [`Stop`] is returned for the trap
//! path to act on (`TrapOutcome::Replica`).

use super::link_port::{LinkPort, now_us};
use crate::arch::console::{self, println};
use crate::arch::hw::Core;
use crate::arch::pmu::EpochCounter;
use crate::arch::{power, timer};
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::hw::Hw;
use el2_hypervisor::options::{AckPolicy, Deadlines, Mode, PairTiming};
use el2_hypervisor::replica::digest::PairingConfig;
use el2_hypervisor::replica::engine::{Engine, Lines, LiveReason, LogPort, PeerGone, Role, Stop};
use el2_hypervisor::replica::epoch_time::{Pace, Rate};
use el2_hypervisor::replica::output::{BackupOutput, HoldStats, OutputHold};
use el2_hypervisor::replica::pair_lines::{self, BackupLost, Status, Summary, Takeover};
use el2_hypervisor::vm_core::clock;
use replication_link::handshake::Refusal;
use replication_link::link::Event;
use replication_link::message::{InputKind, Message, Takeover as TakeoverMessage};

/// Guest output a primary holds for the output rule; the guest waits
/// only when this is full.
const HOLD_BYTES: usize = 4096;
/// Runs of output between two log messages, held at once.
const HOLD_SEGMENTS: usize = 256;
/// Guest output a backup keeps for a takeover: past the primary's
/// released mark it holds at most the primary's hold plus what its guest
/// produces between two marks (`replica::output`), so four holds' worth.
const KEPT_BYTES: usize = 4 * HOLD_BYTES;

/// The log port of the board: the link (none in free mode), the messages
/// delivered but not yet consumed, and whether the peer is gone.
pub struct BoardLog {
    link: Option<LinkPort>,
    queue: heapless::Deque<Message, 32>,
    /// The peer failed or restarted. What it delivered before stays in
    /// `queue` and is consumed first (the engine's `LogPort` contract).
    gone: bool,
    /// Sequenced messages consumed (a backup), and their encoded bytes;
    /// a primary's are the link port's.
    consumed: u64,
    log_bytes: u64,
    /// When the peer was last heard from (a delivered message), µs of
    /// the board's clock: how long detection took, at a takeover.
    last_heard_us: u64,
}

impl BoardLog {
    /// Keeps a delivered message; a peer that failed or restarted (a
    /// restarted peer lost what it had: it is not ours) is gone.
    fn on_event(
        queue: &mut heapless::Deque<Message, 32>,
        gone: &mut bool,
        last_heard_us: &mut u64,
        e: Event,
    ) -> Result<(), PeerGone> {
        match e {
            Event::Delivered(m) => {
                *last_heard_us = now_us();
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

    /// Lets acknowledgements and heartbeats flow; `PeerGone` once the
    /// peer is gone.
    fn service(&mut self) -> Result<(), PeerGone> {
        if let Some(port) = self.link.as_mut() {
            // One event per poll: stop while the queue is full, so that no
            // delivered (and so acknowledged) message is ever dropped.
            while !self.gone
                && !self.queue.is_full()
                && let Some(e) = port.poll()
            {
                Self::on_event(&mut self.queue, &mut self.gone, &mut self.last_heard_us, e)?;
            }
        }
        if self.gone { Err(PeerGone) } else { Ok(()) }
    }

    /// Messages the peer acknowledged, of those sent.
    fn acked(&self) -> u64 {
        self.link.as_ref().map_or(0, LinkPort::acked)
    }
    fn sent(&self) -> u64 {
        self.link.as_ref().map_or(0, LinkPort::sent)
    }
}

impl LogPort for BoardLog {
    fn send(&mut self, msg: Message) -> Result<(), PeerGone> {
        if self.gone {
            return Err(PeerGone);
        }
        match self.link.as_mut() {
            Some(port) => {
                self.log_bytes += msg.wire_size() as u64;
                let (queue, gone, heard) =
                    (&mut self.queue, &mut self.gone, &mut self.last_heard_us);
                port.send(msg, |e| Self::on_event(queue, gone, heard, e))
            }
            None => Ok(()),
        }
    }

    fn next(&mut self) -> Result<Message, PeerGone> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                self.consumed += 1;
                self.log_bytes += m.wire_size() as u64;
                return Ok(m);
            }
            if self.gone {
                return Err(PeerGone);
            }
            let Some(port) = self.link.as_mut() else {
                // No link: the log ended before it began.
                return Ok(Message::Takeover(TakeoverMessage { epoch: 0, count: 0 }));
            };
            match port.poll() {
                // A gone peer is noted; the loop then drains the queue.
                Some(e) => {
                    let _ =
                        Self::on_event(&mut self.queue, &mut self.gone, &mut self.last_heard_us, e);
                }
                // Caught up with the primary: wait a little rather than
                // spin, so that the board's clock (the link's) follows
                // host time while it waits, as the failure detector's
                // timeout assumes, and the host core is free for the
                // primary (the link device raises no interrupt).
                None => pause(),
            }
        }
    }
}

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
pub struct Epochs {
    pub mode: Mode,
    pub counter: EpochCounter,
    pub engine: Engine<BoardLog>,
    output: Output,
    timing: PairTiming,
    /// Guest time (µs) of the last status line.
    last_status_us: u64,
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

impl Epochs {
    pub fn new(mode: Mode, length: u64, link: Option<LinkPort>, timing: PairTiming) -> Self {
        let role = match mode {
            Mode::Free => Role::Solo,
            Mode::Record | Mode::Primary => Role::Primary,
            Mode::Replay | Mode::Backup => Role::Backup,
        };
        let log = BoardLog {
            link,
            queue: heapless::Deque::new(),
            gone: false,
            consumed: 0,
            log_bytes: 0,
            last_heard_us: 0,
        };
        // Guest time runs at the guest counter's frequency (CNTFRQ_EL0,
        // which the guest reads as the board's).
        let mut engine = Engine::new(role, log).with_rate(Rate::new(timer::frequency()));
        if mode.is_pair() {
            // The peer is a board: its death is a takeover or a board
            // running on alone, not the end.
            engine = engine.with_failover();
        }
        Self {
            mode,
            counter: EpochCounter::new(length),
            engine,
            output: match mode {
                Mode::Primary => Output::Held(OutputHold::new()),
                Mode::Backup => Output::Kept(BackupOutput::new()),
                _ => Output::Direct,
            },
            timing,
            last_status_us: 0,
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

    /// Waits until the link is paired (or refused: then the board stops).
    pub fn establish(&mut self) {
        let log = self.engine.port();
        let Some(port) = log.link.as_mut() else {
            return;
        };
        println!("hypervisor: link: waiting for the peer");
        loop {
            match port.poll() {
                Some(Event::Established(peer)) => {
                    println!(
                        "hypervisor: link: paired with a {:?} (session {:#x})",
                        peer.role, peer.session
                    );
                    return;
                }
                Some(Event::Refused(Refusal::Configuration { ours, theirs })) => {
                    let (ours, theirs) = (
                        PairingConfig::from_digest(&ours),
                        PairingConfig::from_digest(&theirs),
                    );
                    println!(
                        "hypervisor: link: pairing refused: {}",
                        ours.differences(&theirs)
                    );
                    self.refused();
                }
                Some(Event::Refused(r)) => {
                    println!("hypervisor: link: pairing refused: {r}");
                    self.refused();
                }
                Some(Event::Delivered(m)) => {
                    let _ = log.queue.push_back(m);
                }
                _ => {}
            }
        }
    }

    /// Stops a refused board, after letting its peer hear the refusal (the
    /// link keeps answering Hellos) so that both consoles name it.
    fn refused(&mut self) -> ! {
        let until = now_us() + 500_000;
        if let Some(port) = self.engine.port().link.as_mut() {
            while now_us() < until {
                let _ = port.poll();
            }
        }
        power::stop(ExitStatus::BadConfiguration)
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
        Some(clock::heartbeat_wake(&Core, self.timing.heartbeat_ms))
    }

    /// The guest's console output: out, held or kept by the output rule.
    pub fn guest_output(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        loop {
            let sent = self.engine.port_ref().sent();
            match &mut self.output {
                Output::Direct => {
                    console::write_guest(bytes);
                    return Ok(());
                }
                Output::Kept(k) => {
                    k.push(bytes);
                    return Ok(());
                }
                Output::Held(h) => {
                    if h.push(bytes, sent, now_us()).is_ok() {
                        self.release_held();
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
        let acked = self.engine.port_ref().acked();
        if let Output::Held(h) = &mut self.output {
            h.release(acked, now_us(), console::write_guest);
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
        println!("{}", BackupLost { epoch });
        println!("hypervisor: pair: the backup is gone (epoch {epoch}); continuing unprotected");
        if let Output::Held(h) = &mut self.output {
            h.release_all(now_us(), console::write_guest);
            self.lost_hold = Some(h.stats());
        }
        self.output = Output::Direct;
    }

    fn went_live(&mut self, epoch: u64, count: u64, why: LiveReason) {
        if !self.mode.is_pair() {
            println!("replay: end of log at epoch {epoch} count {count}; going live");
            return;
        }
        let mut released = 0;
        if let Output::Kept(k) = &mut self.output {
            k.mark(self.engine.peer_released());
            released = k.kept() as u64;
        }
        // Measured: from the last message heard to now, on this board's
        // clock (the failure detector's timeout plus what the takeover's
        // replay of the held log took).
        let silent_ms = match why {
            LiveReason::PeerGone => {
                now_us().saturating_sub(self.engine.port_ref().last_heard_us) / 1_000
            }
            LiveReason::EndOfLog => 0,
        };
        // The line first: the host marks the takeover before the output
        // that follows it.
        println!(
            "{}",
            Takeover {
                epoch,
                count,
                silent_ms,
                released,
            }
        );
        println!(
            "hypervisor: pair: the primary is gone (nothing heard for {silent_ms} ms); took over at epoch {epoch} count {count}, running on unprotected"
        );
        if let Output::Kept(k) = &mut self.output {
            if k.lost() > 0 {
                println!(
                    "hypervisor: pair: FAULT: {} bytes of output were lost from the takeover buffer",
                    k.lost()
                );
            }
            k.take_unreleased(console::write_guest);
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
            let until = now_us() + 4 * 1_000 * self.timing.heartbeat_ms;
            while now_us() < until && !self.engine.port_ref().gone {
                let _ = self.engine.port().service();
            }
        }
        self.release_held();
        Ok(())
    }

    fn wait_all_acked(&mut self) -> Result<(), Stop> {
        while self.engine.role() == Role::Primary
            && self
                .engine
                .port_ref()
                .link
                .as_ref()
                .is_some_and(|p| !p.link.all_acked())
        {
            self.service_link()?;
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
        self.engine.next_time(count, Core.counter(), pace, deadline)
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
        let now = now_us();
        if now < self.last_status_us + pair_lines::STATUS_EVERY_US {
            return;
        }
        self.last_status_us = now;
        println!("{}", self.status());
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
            guest_us: now_us().saturating_add_signed(self.engine.time_offset() / ticks_per_us()),
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

/// Sleeps for about a millisecond of the board's clock.
fn pause() {
    clock::sleep(&mut Core, Some(clock::heartbeat_wake(&Core, 1)));
    // Disarmed, the timer's line drops and nothing is left pending for
    // the guest's next run.
    Core.arm_timer(None);
}

fn ticks_per_us() -> i64 {
    (timer::frequency() / 1_000_000).max(1) as i64
}
