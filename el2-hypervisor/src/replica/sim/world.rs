//! One simulated run: the plan a seed gives, the loop that drives the two
//! boards tick by tick, and the tally of many runs.

use super::board::{Board, Emitted};
use super::check::{Deaths, check};
use super::guest::Program;
use super::rng::Rng;
use super::wire::{Faults, Medium};
use crate::replica::engine::Role;
use core::fmt;
use replication_link::{Config, Timeouts};
use std::format;
use std::string::String;
use std::vec::Vec;

/// Link timing in the simulation (microseconds of simulated time).
pub const CONFIG: Config = Config {
    heartbeat_interval_us: 1_000,
    retransmit_after_us: 3_000,
    hello_interval_us: 1_000,
    timeouts: Timeouts {
        suspect_after_us: 8_000,
        fail_after_us: 20_000,
    },
    batch_limit: 16,
    ack_delay_us: 0,
    // Unbounded: the world lets a primary step only while the window has
    // room for a step's messages, counted in messages.
    window_bytes: usize::MAX,
};
/// One step of the world.
pub const TICK_US: u64 = 50;
/// A run that has not ended after this many ticks is stuck.
const MAX_TICKS: u64 = 400_000;
/// The backup's clock runs this far behind or ahead of the primary's (by
/// seed): a takeover without the engine's time offset would stall guest
/// time (behind) or make it leap (ahead: a waiting backup's clock under
/// QEMU).
const BACKUP_CLOCK_SKEW_US: i64 = 30_000;

/// What happens to the pair in a run, besides the faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incident {
    None,
    /// The primary dies after this many of its steps.
    KillPrimary(u64),
    /// The backup dies after this many of its steps.
    KillBackup(u64),
    /// The link loses everything from this time on (split brain: both
    /// boards go on alone; the docs say so).
    CutLink(u64),
    /// The backup's guest state is changed in this epoch.
    Diverge(u64),
}

/// What a seed decides.
pub struct Plan {
    pub program: Program,
    pub epoch_len: u64,
    pub faults: Faults,
    pub incident: Incident,
}

impl Plan {
    pub fn from_seed(rng: &mut Rng) -> Self {
        let len = rng.range(100, 500);
        let program = Program::generate(rng, len);
        let epoch_len = rng.range(200, 3_000);
        let faults = Faults {
            drop: rng.range(0, 150),
            corrupt: rng.range(0, 60),
            duplicate: rng.range(0, 60),
            max_delay_us: rng.range(0, 3_000),
            reorder: rng.chance(500),
        };
        let incident = match rng.range(0, 10) {
            0..=3 => Incident::KillPrimary(rng.range(0, len + 20)),
            4 | 5 => Incident::KillBackup(rng.range(0, len + 20)),
            6 => Incident::CutLink(rng.range(0, 40_000)),
            7 => Incident::Diverge(rng.range(0, 6)),
            _ => Incident::None,
        };
        Self {
            program,
            epoch_len,
            faults,
            incident,
        }
    }
}

/// What one run did, for the tally.
#[derive(Debug, Default)]
pub struct Summary {
    pub epochs_checked: u64,
    pub takeover: bool,
    pub backup_killed: bool,
    pub divergence_caught: bool,
    pub detection_us: Option<u64>,
    /// Outputs that found the primary's hold full (the guest waited).
    pub full_waits: u64,
    /// The most bytes the backup kept, and the bound it must stay within.
    pub max_kept: usize,
    pub kept_bound: usize,
    /// The longest an output waited in the primary's hold.
    pub max_hold_us: u64,
}

/// Totals over many seeds.
#[derive(Debug, Default)]
pub struct Tally {
    pub runs: u64,
    pub epochs_checked: u64,
    pub takeovers: u64,
    pub backup_kills: u64,
    pub divergences_caught: u64,
    pub worst_detection_us: u64,
    pub full_waits: u64,
    pub runs_with_full_waits: u64,
    pub max_kept: usize,
    pub max_kept_bound: usize,
    pub worst_hold_us: u64,
}

impl Tally {
    pub fn add(&mut self, s: &Summary) {
        self.runs += 1;
        self.epochs_checked += s.epochs_checked;
        self.takeovers += u64::from(s.takeover);
        self.backup_kills += u64::from(s.backup_killed);
        self.divergences_caught += u64::from(s.divergence_caught);
        self.worst_detection_us = self.worst_detection_us.max(s.detection_us.unwrap_or(0));
        self.full_waits += s.full_waits;
        self.runs_with_full_waits += u64::from(s.full_waits > 0);
        self.max_kept = self.max_kept.max(s.max_kept);
        self.max_kept_bound = self.max_kept_bound.max(s.kept_bound);
        self.worst_hold_us = self.worst_hold_us.max(s.max_hold_us);
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} runs, {} epochs checked against the log, {} takeovers, {} backup deaths, {} injected divergences caught, slowest detection of a dead primary {} us; \
             output: {} waits on a full hold ({} runs), longest hold {} us, the backup kept at most {} bytes (largest bound {}, buffer {})",
            self.runs,
            self.epochs_checked,
            self.takeovers,
            self.backup_kills,
            self.divergences_caught,
            self.worst_detection_us,
            self.full_waits,
            self.runs_with_full_waits,
            self.worst_hold_us,
            self.max_kept,
            self.max_kept_bound,
            super::board::BACKUP_BYTES,
        )
    }
}

/// Runs the seed's plan; `Err` names the first check that failed.
pub fn run(seed: u64, verbose: bool) -> Result<Summary, String> {
    let mut rng = Rng::new(seed);
    let plan = Plan::from_seed(&mut rng);
    if verbose {
        std::println!(
            "plan: {} ops, epochs of {} instructions, {:?}, {:?}",
            plan.program.ops.len(),
            plan.epoch_len,
            plan.faults,
            plan.incident
        );
    }
    let medium = Medium::new(plan.faults, rng.fork());
    let mut p = Board::new(Role::Primary, &medium, rng.fork(), 0);
    let skew = if rng.chance(500) {
        BACKUP_CLOCK_SKEW_US
    } else {
        -BACKUP_CLOCK_SKEW_US
    };
    let mut b = Board::new(Role::Backup, &medium, rng.fork(), skew);
    if let Incident::Diverge(e) = plan.incident {
        b.diverge_in = Some(e);
    }
    if let Incident::CutLink(t) = plan.incident {
        medium.borrow_mut().cut_at_us = Some(t);
    }
    let mut out: Emitted = Vec::new();
    let (mut primary_killed_at, mut backup_killed_at) = (None, None);
    let mut now = 0;
    let mut tick = 0;
    // The guest starts once the boards have paired (as a board's
    // `establish` waits); from then on a failed link does not undo that.
    let mut paired = false;
    loop {
        tick += 1;
        if tick > MAX_TICKS {
            return Err(format!(
                "stuck: after {MAX_TICKS} ticks the primary is at op {} (done {}, alive {}), the backup at op {} (done {}, needs a message {}, {} delivered, link {:?}, live {})",
                p.pc,
                p.done,
                p.alive,
                b.pc,
                b.done,
                b.needs_message(&plan),
                b.engine.port_ref().delivered.len(),
                b.engine.port_ref().link.state(),
                b.engine.live()
            ));
        }
        now += TICK_US;
        medium.borrow_mut().now_us = now;
        match plan.incident {
            Incident::KillPrimary(k) if p.alive && p.steps >= k => {
                p.alive = false;
                primary_killed_at = Some(now);
            }
            Incident::KillBackup(k) if b.alive && b.steps >= k => {
                b.alive = false;
                backup_killed_at = Some(now);
            }
            _ => {}
        }
        paired |= p.port().link.is_established() && b.port().link.is_established();
        let established = paired;
        if p.alive {
            p.port().poll(now);
            step_primary(&mut p, &plan, now, established, &mut out)?;
        }
        if b.alive && b.stopped.is_none() {
            b.port().poll(now);
            let primary_off = !p.alive && primary_killed_at.is_none();
            step_backup(&mut b, &plan, now, established, primary_off, &mut out);
        }
        // Boards that never paired never start their guests: a backup
        // waits for its primary (as a board's `establish` does) and there
        // is nothing to take over.
        if !paired && now > 4 * CONFIG.timeouts.fail_after_us {
            if p.steps > 0 || b.steps > 0 {
                return Err("a guest ran before the boards paired".into());
            }
            return Ok(Summary::default());
        }
        let p_over = !p.alive;
        let b_over = !b.alive || b.stopped.is_some();
        if p_over && b_over {
            break;
        }
    }
    let died = Deaths {
        primary: primary_killed_at,
        backup: backup_killed_at,
    };
    check(&plan, &p, &b, &out, &died, verbose)
}

/// One tick of the primary: a step of its guest when the link lets it
/// (room in the window for a step's messages: a boundary sends two), the
/// output its backup has acknowledged, and power-off once the program
/// ended: every output out, the backup told so (a last `Released`), every
/// log message acknowledged.
fn step_primary(
    p: &mut Board,
    plan: &Plan,
    now: u64,
    established: bool,
    out: &mut Emitted,
) -> Result<(), String> {
    let stopped = |s| format!("the primary stopped: {s:?}");
    let alone = !p.protected();
    let room = p.port().link.window_free() >= 2 || alone;
    // Only once the pair formed, even if the link failed since (a link
    // cut during the handshake leaves both guests unstarted: the run's
    // end checks that).
    if !p.done && room && established {
        p.step(plan, now, out).map_err(stopped)?;
    }
    p.release(now, out);
    if p.done && p.hold.held() == 0 {
        if room {
            p.tell_released().map_err(stopped)?;
        }
        if p.port().link.all_acked() || p.port().peer_failed() {
            p.alive = false;
        }
    }
    Ok(())
}

/// One tick of the backup: a step of its guest when the log has what the
/// step needs (or its primary is gone). Once its guest finished it stays
/// until the primary powered off (the pair ends together), or takes over
/// if the primary died first: the primary may have held output then.
fn step_backup(
    b: &mut Board,
    plan: &Plan,
    now: u64,
    established: bool,
    primary_off: bool,
    out: &mut Emitted,
) {
    if !b.done {
        let ready = !b.needs_message(plan) || b.port().has_log() || b.port().peer_failed();
        if ready
            && established
            && let Err(s) = b.step(plan, now, out)
        {
            b.stopped = Some(s);
        }
    }
    if b.done {
        if b.engine.live() {
            b.alive = false;
            return;
        }
        b.absorb_marks();
        if b.port().peer_failed() {
            b.take_over(out);
            b.alive = false;
        } else if primary_off {
            b.alive = false;
        }
    }
}
