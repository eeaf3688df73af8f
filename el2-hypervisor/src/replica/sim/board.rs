//! One simulated board: its engine over a link port, its model guest, and
//! its half of the output rule (the primary's hold, the backup's buffer).

use super::guest::{Guest, Op};
use super::rng::Rng;
use super::wire::{End, Medium};
use super::world::{CONFIG, Plan};
use crate::replica::engine::{Engine, LogPort, PeerGone, Role, Stop, WentLive};
use crate::replica::epoch_time::Pace;
use crate::replica::output::{BackupOutput, OutputHold};
use core::cell::RefCell;
use replication_link::message::{Hello, InputKind, Message, Role as LinkRole};
use replication_link::{DEFAULT_WINDOW, Event, Link};
use std::boxed::Box;
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

/// The primary's hold: small, so that the guest sometimes waits for it.
pub const HOLD_BYTES: usize = 48;
/// Runs of output that wait for different acknowledgements.
pub const HOLD_SEGMENTS: usize = 20;
/// The backup's buffer: the hold plus the output of two epochs, with room
/// to spare (the bound is in `replica::output`; the run checks it).
pub const BACKUP_BYTES: usize = 128;

/// Guest output that left a board: (position in the guest's output, byte).
pub type Emitted = Vec<(u64, u8)>;

/// A board's log port: its link over the medium, and what was delivered.
pub struct SimPort {
    pub link: Box<Link>,
    end: End,
    pub delivered: VecDeque<Message>,
    pub peer_failed_at: Option<u64>,
    /// Sequenced messages sent (the output rule's `sent`).
    pub sent: u64,
}

impl SimPort {
    pub fn poll(&mut self, now: u64) {
        loop {
            match self.link.poll(now, &mut self.end) {
                Ok(Some(Event::Delivered(m))) => self.delivered.push_back(m),
                Ok(Some(Event::PeerFailed | Event::PeerRestarted(_))) => {
                    self.peer_failed_at.get_or_insert(now);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    pub fn peer_failed(&self) -> bool {
        self.peer_failed_at.is_some()
    }

    /// Sequenced messages the peer has acknowledged: all sent but those
    /// still in the window.
    pub fn acked(&self) -> u64 {
        let in_flight = DEFAULT_WINDOW - self.link.window_free();
        self.sent - in_flight as u64
    }

    /// Whether a log message (not only `Released` marks) waits: a
    /// replaying backup's next step can then go on without waiting.
    pub fn has_log(&self) -> bool {
        self.delivered
            .iter()
            .any(|m| !matches!(m, Message::Released(_)))
    }
}

impl LogPort for SimPort {
    fn send(&mut self, msg: Message) -> Result<(), PeerGone> {
        // The world steps a primary only while its window has room for a
        // step's messages.
        match self.link.send(msg) {
            Ok(_) => {
                self.sent += 1;
                Ok(())
            }
            // Closed: the peer failed. (A full window or a control message
            // would be the world's mistake; the primary would go on alone,
            // which the run's checks refuse.)
            Err(_) => Err(PeerGone),
        }
    }

    fn next(&mut self) -> Result<Message, PeerGone> {
        // Delivered messages first (the port's contract); then, the world
        // steps a replaying backup only when a log message is there or its
        // primary failed: the primary is gone and the log ends here.
        self.delivered.pop_front().ok_or(PeerGone)
    }
}

/// One board: its engine, its guest, and what it did.
pub struct Board {
    pub engine: Engine<SimPort>,
    pub guest: Guest,
    env: Rng,
    /// How far this board's clock is ahead of simulated time (µs).
    clock_skew_us: i64,
    /// A backup that went live: its clock and guest time there (measured
    /// here, not by the engine), the clock at its first boundary after,
    /// the instructions run since, and the first time its idle guest time
    /// did not follow its clock.
    live_from: Option<(u64, u64)>,
    first_live_boundary: Option<u64>,
    instructions_since_live: u64,
    pub time_fault: Option<String>,
    pub pc: usize,
    count: u64,
    wfi: bool,
    pub done: bool,
    pub alive: bool,
    pub steps: u64,
    /// The values its guest observed, in order, and how many came from
    /// the log.
    pub observed: Vec<u64>,
    pub replayed_inputs: usize,
    /// (epoch, guest hash, whether the epoch was checked against the log,
    /// output bytes produced by the end of the epoch)
    pub boundaries: Vec<(u64, u64, bool, u64)>,
    /// Output bytes its guest produced: the next byte's position.
    pub produced: u64,
    /// A primary's output, until acknowledged.
    pub hold: OutputHold<HOLD_BYTES, HOLD_SEGMENTS>,
    /// A backup's own output, until the primary released it.
    pub kept: BackupOutput<BACKUP_BYTES>,
    /// Where and why a backup went live.
    pub went_live: Option<WentLive>,
    /// A backup emitted what it kept (it took over).
    pub took_over: bool,
    /// The epoch in which a primary found its backup gone.
    pub backup_lost: Option<u64>,
    pub stopped: Option<Stop>,
    pub diverge_in: Option<u64>,
}

impl Board {
    pub fn new(role: Role, medium: &Rc<RefCell<Medium>>, env: Rng, clock_skew_us: i64) -> Self {
        let link_role = if role == Role::Primary {
            LinkRole::Primary
        } else {
            LinkRole::Backup
        };
        let hello = Hello::new(link_role, env.clone().next_u64(), [1; 32], [2; 32], [3; 32]);
        let port = SimPort {
            link: Box::new(Link::new(hello, CONFIG)),
            end: End {
                medium: medium.clone(),
                tx: usize::from(role == Role::Backup),
            },
            delivered: VecDeque::new(),
            peer_failed_at: None,
            sent: 0,
        };
        Self {
            // The peer is another board: a gone peer is a failover.
            engine: Engine::new(role, port).with_failover(),
            guest: Guest::default(),
            env,
            clock_skew_us,
            live_from: None,
            first_live_boundary: None,
            instructions_since_live: 0,
            time_fault: None,
            pc: 0,
            count: 0,
            wfi: false,
            done: false,
            alive: true,
            steps: 0,
            observed: Vec::new(),
            replayed_inputs: 0,
            boundaries: Vec::new(),
            produced: 0,
            hold: OutputHold::new(),
            kept: BackupOutput::new(),
            went_live: None,
            took_over: false,
            backup_lost: None,
            stopped: None,
            diverge_in: None,
        }
    }

    pub fn port(&mut self) -> &mut SimPort {
        self.engine.port()
    }

    fn boundary_due(&self, plan: &Plan) -> bool {
        self.wfi || self.count >= plan.epoch_len || self.pc == plan.program.ops.len()
    }

    /// Whether the next step consumes a log message (guest time is not
    /// logged).
    pub fn needs_message(&self, plan: &Plan) -> bool {
        self.engine.replaying()
            && (self.boundary_due(plan)
                || matches!(plan.program.ops[self.pc].0, Op::Input(k, _) if k != InputKind::CounterRead))
    }

    /// This board's clock, in counter ticks (1 ns): `now` shifted by how
    /// far it runs ahead.
    fn clock(&self, now: u64) -> u64 {
        now.saturating_add_signed(self.clock_skew_us) * 1_000
    }

    /// The primary's board (its engine is a primary, or alone since its
    /// backup went away); a backup's engine stays a backup, live or not.
    fn is_primary_board(&self) -> bool {
        self.engine.role() != Role::Backup
    }

    /// Whether the primary's output still waits for acknowledgements.
    pub fn protected(&self) -> bool {
        self.engine.role() == Role::Primary && !self.engine.port_ref().peer_failed()
    }

    /// Runs one step of the guest: an op, or the epoch's boundary. An
    /// output that finds the hold full waits (the step is taken again).
    pub fn step(&mut self, plan: &Plan, now: u64, out: &mut Emitted) -> Result<(), Stop> {
        self.steps += 1;
        if self.boundary_due(plan) {
            self.boundary(plan, now)?;
            self.after_step(now, out);
            return Ok(());
        }
        let (op, cost) = plan.program.ops[self.pc];
        match op {
            Op::Input(InputKind::CounterRead, source) => {
                self.count += cost;
                let v = self.engine.time(self.count, InputKind::CounterRead, source);
                self.guest.observe(InputKind::CounterRead, v);
                self.observed.push(v);
            }
            Op::Input(kind, source) => {
                self.count += cost;
                let computed = self.env.next_u64() & 0xffff_ffff;
                let replaying = self.engine.replaying();
                let v = self.engine.input(self.count, kind, 0, source, computed)?;
                if replaying && self.engine.replaying() {
                    self.replayed_inputs += 1;
                }
                self.guest.observe(kind, v);
                self.observed.push(v);
            }
            Op::Output => {
                if !self.output(now, out) {
                    return Ok(()); // the hold is full: the guest waits
                }
                self.count += cost;
            }
            Op::Wfi => {
                self.count += cost;
                self.wfi = true;
            }
        }
        self.pc += 1;
        self.after_step(now, out);
        Ok(())
    }

    fn boundary(&mut self, plan: &Plan, now: u64) -> Result<(), Stop> {
        let checked = self.engine.replaying();
        if self.diverge_in == Some(self.engine.epoch()) {
            self.guest.hash ^= 1;
        }
        let epoch = self.engine.epoch();
        let fp = self.guest.hash ^ self.engine.inputs_digest();
        let pace = if self.wfi { Pace::Idle } else { Pace::Running };
        let clock = self.clock(now);
        let time = self.engine.next_time(self.count, clock, pace, None);
        self.engine
            .boundary(self.count, self.pc as u64, fp, &[], time)?;
        if self.live_from.is_some() {
            self.instructions_since_live += self.count;
        }
        self.check_live_time(clock, pace);
        // The backup learns how far the primary released (a primary only).
        self.engine.released(self.hold.released_total())?;
        // Checked only if the log had this boundary (it may have ended
        // right here).
        let checked = checked && self.engine.replaying();
        self.boundaries
            .push((epoch, self.guest.hash, checked, self.produced));
        self.count = 0;
        self.wfi = false;
        self.done = self.pc == plan.program.ops.len();
        Ok(())
    }

    /// The guest writes one byte: held (primary), kept (replaying backup)
    /// or out at once (alone). False when the hold is full.
    fn output(&mut self, now: u64, out: &mut Emitted) -> bool {
        let byte = self.guest.output();
        if self.engine.role() == Role::Primary {
            let sent = self.engine.port_ref().sent;
            if self.hold.push(&[byte], sent, now).is_err() {
                return false;
            }
        } else if self.engine.replaying() {
            self.kept.push(&[byte]);
        } else {
            self.release_hold(u64::MAX, now, out);
            out.push((self.produced, byte));
        }
        self.produced += 1;
        true
    }

    /// What the engine found in a step: the primary's release mark, the
    /// end of the log, a lost backup.
    fn after_step(&mut self, now: u64, out: &mut Emitted) {
        if self.engine.role() == Role::Backup {
            self.kept.mark(self.engine.peer_released());
        }
        if let Some(live) = self.engine.take_went_live() {
            self.went_live = Some(live);
            self.live_from = Some((self.clock(now), self.engine.guest_time(self.count)));
            self.take_over(out);
        }
        if let Some(epoch) = self.engine.take_backup_lost() {
            self.backup_lost.get_or_insert(epoch);
        }
    }

    /// After a takeover, an idle guest's time follows this board's clock
    /// from where guest time was at the takeover: no stall (its clock
    /// behind the primary's), no leap (ahead). The engine fixes its offset
    /// at the first boundary after the takeover, so the bound allows for
    /// the clock's advance until then, and for the instructions run.
    fn check_live_time(&mut self, clock: u64, pace: Pace) {
        let Some((c0, g0)) = self.live_from else {
            return;
        };
        let c1 = *self.first_live_boundary.get_or_insert(clock);
        if pace != Pace::Idle || self.time_fault.is_some() {
            return;
        }
        let base = self.engine.guest_time(0);
        let want = g0 + (clock - c0);
        let slack = (c1 - c0) + self.instructions_since_live;
        if base.abs_diff(want) > slack {
            self.time_fault = Some(format!(
                "after the takeover, idle guest time {base} where the clock says {want} (within {slack})"
            ));
        }
    }

    /// A backup takes over: it emits what the primary may not have.
    pub fn take_over(&mut self, out: &mut Emitted) {
        let mut at = self.produced - self.kept.kept() as u64;
        self.kept.take_unreleased(|bytes| {
            for &b in bytes {
                out.push((at, b));
                at += 1;
            }
        });
        self.took_over = true;
    }

    /// The primary's held output whose log messages are acknowledged
    /// (`acked` of them), out in order.
    fn release_hold(&mut self, acked: u64, now: u64, out: &mut Emitted) {
        let mut at = self.hold.released_total();
        self.hold.release(acked, now, |bytes| {
            for &b in bytes {
                out.push((at, b));
                at += 1;
            }
        });
    }

    /// Output that may leave the primary's board now: once every log
    /// message before it is acknowledged, or at once when the backup is
    /// gone (nothing to wait for).
    pub fn release(&mut self, now: u64, out: &mut Emitted) {
        if !self.is_primary_board() {
            return;
        }
        let acked = if self.protected() {
            self.engine.port_ref().acked()
        } else {
            u64::MAX
        };
        self.release_hold(acked, now, out);
    }

    /// A primary whose guest finished tells its backup how far it
    /// released (the last mark, before it powers off).
    pub fn tell_released(&mut self) -> Result<(), Stop> {
        self.engine.released(self.hold.released_total())?;
        if let Some(epoch) = self.engine.take_backup_lost() {
            self.backup_lost.get_or_insert(epoch);
        }
        Ok(())
    }

    /// A backup whose guest finished: the marks that came after its last
    /// boundary (the primary's final `Released`, sent before it powers
    /// off) are not read by the engine any more.
    pub fn absorb_marks(&mut self) {
        while let Some(m) = self.port().delivered.pop_front() {
            if let Message::Released(r) = m {
                self.kept.mark(r.output);
            }
        }
    }
}
