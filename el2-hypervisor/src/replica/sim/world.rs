//! One simulated run: the plan a seed gives, the two boards, the loop that
//! drives them tick by tick, and the checks at the end.

use super::guest::{Guest, Op, Program};
use super::rng::Rng;
use super::wire::{End, Faults, Medium};
use crate::replica::engine::{Engine, LogPort, PeerGone, Role, Stop};
use crate::replica::replay::Divergence;
use core::cell::RefCell;
use core::fmt;
use replication_link::message::{Hello, InputKind, Message, Role as LinkRole, Takeover};
use replication_link::{Config, Event, Link, Seq, Timeouts};
use std::boxed::Box;
use std::collections::VecDeque;
use std::format;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

/// Link timing in the simulation (microseconds of simulated time).
const CONFIG: Config = Config {
    heartbeat_interval_us: 1_000,
    retransmit_after_us: 3_000,
    hello_interval_us: 1_000,
    timeouts: Timeouts {
        suspect_after_us: 8_000,
        fail_after_us: 20_000,
    },
    batch_limit: 16,
};
/// One step of the world.
const TICK_US: u64 = 50;
/// A run that has not ended after this many ticks is stuck.
const MAX_TICKS: u64 = 400_000;
/// The backup's clock runs this far behind the primary's: a takeover
/// without the engine's time offset would make guest time go backwards.
const BACKUP_CLOCK_BEHIND_US: u64 = 30_000;

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

/// A board's log port: its link over the medium, and what was delivered.
struct SimPort {
    link: Box<Link>,
    end: End,
    delivered: VecDeque<Message>,
    peer_failed_at: Option<u64>,
    /// The sequence number of the last message sent (the output rule).
    last_sent: Option<Seq>,
}

impl SimPort {
    fn poll(&mut self, now: u64) {
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

    fn peer_failed(&self) -> bool {
        self.peer_failed_at.is_some()
    }
}

impl LogPort for SimPort {
    fn send(&mut self, msg: Message) -> Result<(), PeerGone> {
        // The world steps a primary only while its window has room.
        match self.link.send(msg) {
            Ok(seq) => {
                self.last_sent = Some(seq);
                Ok(())
            }
            // Closed: the peer failed. (A full window or a control message
            // would be the world's mistake; it is reported the same way and
            // fails the run.)
            Err(_) => Err(PeerGone),
        }
    }

    fn next(&mut self) -> Result<Message, PeerGone> {
        match self.delivered.pop_front() {
            Some(m) => Ok(m),
            // The primary is gone and everything it got through is
            // consumed: the log ends here, the backup goes live.
            None if self.peer_failed() => Ok(Message::Takeover(Takeover { epoch: 0, count: 0 })),
            // The world steps a backup only when a message is there.
            None => Err(PeerGone),
        }
    }
}

/// One board: its engine, its guest, and what it did.
struct Board {
    engine: Engine<SimPort>,
    guest: Guest,
    env: Rng,
    clock_behind_us: u64,
    pc: usize,
    count: u64,
    wfi: bool,
    done: bool,
    alive: bool,
    steps: u64,
    /// The values its guest observed, in order, and how many came from
    /// the log.
    observed: Vec<u64>,
    replayed_inputs: usize,
    /// (epoch, guest hash, whether the epoch was checked against the log)
    boundaries: Vec<(u64, u64, bool)>,
    /// Outputs held until acknowledged (primary): (op index, byte, the last
    /// log message before it).
    held: VecDeque<(usize, u8, Option<Seq>)>,
    stopped: Option<Stop>,
    diverge_in: Option<u64>,
}

impl Board {
    fn new(role: Role, medium: &Rc<RefCell<Medium>>, env: Rng, clock_behind_us: u64) -> Self {
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
            last_sent: None,
        };
        Self {
            engine: Engine::new(role, port),
            guest: Guest::default(),
            env,
            clock_behind_us,
            pc: 0,
            count: 0,
            wfi: false,
            done: false,
            alive: true,
            steps: 0,
            observed: Vec::new(),
            replayed_inputs: 0,
            boundaries: Vec::new(),
            held: VecDeque::new(),
            stopped: None,
            diverge_in: None,
        }
    }

    fn port(&mut self) -> &mut SimPort {
        self.engine.port()
    }

    fn boundary_due(&self, plan: &Plan) -> bool {
        self.wfi || self.count >= plan.epoch_len || self.pc == plan.program.ops.len()
    }

    /// Whether the next step consumes a log message.
    fn needs_message(&self, plan: &Plan) -> bool {
        self.engine.replaying()
            && (self.boundary_due(plan) || matches!(plan.program.ops[self.pc].0, Op::Input(..)))
    }

    /// Runs one step of the guest: an op, or the epoch's boundary.
    fn step(&mut self, plan: &Plan, now: u64) -> Result<(), Stop> {
        self.steps += 1;
        if self.boundary_due(plan) {
            let checked = self.engine.replaying();
            if self.diverge_in == Some(self.engine.epoch()) {
                self.guest.hash ^= 1;
            }
            let epoch = self.engine.epoch();
            let fp = self.guest.hash ^ self.engine.inputs_digest();
            self.engine.boundary(self.count, self.pc as u64, fp, &[])?;
            // Checked only if the log had this boundary (it may have ended
            // right here).
            let checked = checked && self.engine.replaying();
            self.boundaries.push((epoch, self.guest.hash, checked));
            self.count = 0;
            self.wfi = false;
            self.done = self.pc == plan.program.ops.len();
            return Ok(());
        }
        let (op, cost) = plan.program.ops[self.pc];
        self.count += cost;
        match op {
            Op::Input(kind, source) => {
                let computed = match kind {
                    InputKind::CounterRead => (now - self.clock_behind_us.min(now)) * 1_000,
                    _ => self.env.next_u64() & 0xffff_ffff,
                };
                let replaying = self.engine.replaying();
                let v = self.engine.input(self.count, kind, 0, source, computed)?;
                if replaying && self.engine.replaying() {
                    self.replayed_inputs += 1;
                }
                self.guest.observe(kind, v);
                self.observed.push(v);
            }
            Op::Output => {
                let last = self.port().last_sent;
                self.held.push_back((self.pc, self.guest.output(), last));
            }
            Op::Wfi => self.wfi = true,
        }
        self.pc += 1;
        Ok(())
    }

    /// Outputs that may leave the board now: a primary's once every log
    /// message before them is acknowledged, anyone else's at once. A
    /// replaying backup keeps its own (it emits nothing while the primary
    /// lives) and releases them all when it goes live, since it cannot
    /// tell which the primary got out before it died: an output may then
    /// appear twice, never not at all. (A real board must bound that
    /// buffer: the primary would have to tell the backup how far it has
    /// released; the protocol does not carry that yet.)
    fn release(&mut self, out: &mut Vec<(usize, u8)>) {
        if self.engine.replaying() {
            return;
        }
        let protected = self.engine.role() == Role::Primary;
        while let Some(&(pc, byte, seq)) = self.held.front() {
            let link = &self.engine.port_ref().link;
            let acked = !protected || seq.is_none_or(|s| link.is_acked(s));
            if !acked {
                break;
            }
            out.push((pc, byte));
            self.held.pop_front();
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
}

impl Tally {
    pub fn add(&mut self, s: &Summary) {
        self.runs += 1;
        self.epochs_checked += s.epochs_checked;
        self.takeovers += u64::from(s.takeover);
        self.backup_kills += u64::from(s.backup_killed);
        self.divergences_caught += u64::from(s.divergence_caught);
        self.worst_detection_us = self.worst_detection_us.max(s.detection_us.unwrap_or(0));
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} runs, {} epochs checked against the log, {} takeovers, {} backup deaths, {} injected divergences caught, slowest detection of a dead primary {} us",
            self.runs,
            self.epochs_checked,
            self.takeovers,
            self.backup_kills,
            self.divergences_caught,
            self.worst_detection_us
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
    let mut b = Board::new(Role::Backup, &medium, rng.fork(), BACKUP_CLOCK_BEHIND_US);
    if let Incident::Diverge(e) = plan.incident {
        b.diverge_in = Some(e);
    }
    if let Incident::CutLink(t) = plan.incident {
        medium.borrow_mut().cut_at_us = Some(t);
    }
    let mut out: Vec<(usize, u8)> = Vec::new();
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
            if p.port().peer_failed() {
                p.engine.continue_alone();
            }
            let room = p.port().link.window_free() > 0 || p.engine.role() != Role::Primary;
            if !p.done && room && (established || p.engine.role() != Role::Primary) {
                p.step(&plan, now)
                    .map_err(|s| format!("the primary stopped: {s:?}"))?;
            }
            p.release(&mut out);
            // Power-off waits for every log message to be acknowledged.
            if p.done && p.held.is_empty() && (p.port().link.all_acked() || p.port().peer_failed())
            {
                p.alive = false;
            }
        }
        if b.alive && b.stopped.is_none() {
            b.port().poll(now);
            let ready =
                !b.needs_message(&plan) || !b.port().delivered.is_empty() || b.port().peer_failed();
            if !b.done
                && ready
                && established
                && let Err(s) = b.step(&plan, now)
            {
                b.stopped = Some(s);
            }
            b.release(&mut out);
            if b.done {
                b.alive = false;
            }
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
    check(
        &plan,
        &p,
        &b,
        &out,
        primary_killed_at,
        backup_killed_at,
        verbose,
    )
}

/// The checks at the end of a run.
fn check(
    plan: &Plan,
    p: &Board,
    b: &Board,
    out: &[(usize, u8)],
    primary_killed_at: Option<u64>,
    backup_killed_at: Option<u64>,
    verbose: bool,
) -> Result<Summary, String> {
    let mut s = Summary::default();
    let cut = matches!(plan.incident, Incident::CutLink(_));
    // Divergence: caught exactly where it was injected, never otherwise.
    let injected = match plan.incident {
        Incident::Diverge(e) if (e as usize) < p.boundaries.len() => Some(e),
        _ => None,
    };
    match (&b.stopped, injected) {
        (None, None) => {}
        (Some(Stop::Diverged(Divergence::Boundary { at, field, .. })), Some(e))
            if at.epoch == e && *field == "state fingerprint" =>
        {
            s.divergence_caught = true;
        }
        (None, Some(e)) if backup_killed_at.is_some() || b.engine.live() => {
            // The backup died or went live before epoch `e` was checked.
            let _ = e;
        }
        (other, e) => {
            return Err(format!(
                "the backup stopped with {other:?}; divergence injected at epoch {e:?}"
            ));
        }
    }
    // Every epoch the backup checked against the log has the primary's
    // guest state.
    for &(epoch, hash, checked) in &b.boundaries {
        if !checked || injected == Some(epoch) {
            continue;
        }
        s.epochs_checked += 1;
        match p.boundaries.get(epoch as usize) {
            Some(&(_, h, _)) if h == hash => {}
            other => {
                return Err(format!(
                    "epoch {epoch}: the backup's guest state {hash:#x}, the primary's {other:?}"
                ));
            }
        }
    }
    // The values the backup replayed are the primary's.
    let k = b.replayed_inputs;
    if b.observed[..k.min(b.observed.len())] != p.observed[..k.min(p.observed.len())] {
        return Err(format!(
            "the backup's first {k} observed values are not the primary's"
        ));
    }
    // Guest time never goes backwards, on either board.
    for (name, board) in [("primary", p), ("backup", b)] {
        if let Some((before, after)) = board.guest.time_went_back {
            return Err(format!(
                "the {name}'s guest time went backwards: {before} then {after}"
            ));
        }
    }
    // Whoever survives finishes the program, having observed every input
    // once: a fresh guest fed the same values ends in the same state.
    let survivor = if primary_killed_at.is_some() { b } else { p };
    if primary_killed_at.is_some() && backup_killed_at.is_none() && b.stopped.is_none() {
        s.takeover = b.engine.live();
        if !b.done {
            return Err(format!(
                "the backup did not finish the program after the primary died (op {} of {})",
                b.pc,
                plan.program.ops.len()
            ));
        }
    }
    if b.stopped.is_none() && (primary_killed_at.is_none() || backup_killed_at.is_none()) {
        if survivor.observed.len() != plan.program.inputs() {
            return Err(format!(
                "the surviving guest observed {} inputs, the program has {}",
                survivor.observed.len(),
                plan.program.inputs()
            ));
        }
        let mut fresh = Guest::default();
        let kinds = plan.program.ops.iter().filter_map(|(op, _)| match op {
            Op::Input(kind, _) => Some(*kind),
            _ => None,
        });
        for (kind, &v) in kinds.zip(&survivor.observed) {
            fresh.observe(kind, v);
        }
        if fresh.hash != survivor.guest.hash {
            return Err("the surviving guest's state is not what its inputs give".into());
        }
    }
    // Output: none lost; one seen twice is the same byte (not across a
    // split brain, where both boards go on alone and may well differ).
    if b.stopped.is_none() && !cut && (primary_killed_at.is_none() || backup_killed_at.is_none()) {
        let outputs: Vec<usize> = plan
            .program
            .ops
            .iter()
            .enumerate()
            .filter(|(_, (op, _))| matches!(op, Op::Output))
            .map(|(i, _)| i)
            .collect();
        for pc in outputs {
            let seen: Vec<u8> = out
                .iter()
                .filter(|(at, _)| *at == pc)
                .map(|(_, b)| *b)
                .collect();
            if seen.is_empty() {
                return Err(format!("the output of op {pc} never left either board"));
            }
            if seen.iter().any(|&x| x != seen[0]) {
                return Err(format!(
                    "the output of op {pc} left twice with different bytes {seen:?}: released before the backup had its inputs"
                ));
            }
        }
    }
    // A dead primary is noticed within the link's timeout.
    if let (Some(killed), Some(noticed)) = (primary_killed_at, b.engine.port_ref().peer_failed_at) {
        let took = noticed.saturating_sub(killed);
        let bound = CONFIG.timeouts.fail_after_us
            + CONFIG.heartbeat_interval_us
            + plan.faults.max_delay_us
            + 4 * TICK_US;
        if took > bound {
            return Err(format!(
                "the dead primary was noticed after {took} us, the bound is {bound} us"
            ));
        }
        s.detection_us = Some(took);
    }
    s.backup_killed = backup_killed_at.is_some();
    if verbose {
        std::println!(
            "primary: {} ops, {} epochs; backup: {} ops, {} epochs, replayed {} inputs, live {}; {} outputs left",
            p.pc,
            p.boundaries.len(),
            b.pc,
            b.boundaries.len(),
            b.replayed_inputs,
            b.engine.live(),
            out.len()
        );
    }
    Ok(s)
}
