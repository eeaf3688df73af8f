//! The checks at the end of a run: each names what went wrong, the first
//! that fails ends the run with it.

use super::board::{Board, HOLD_BYTES};
use super::guest::{Guest, Op};
use super::world::{CONFIG, Incident, Plan, Summary, TICK_US};
use crate::replica::engine::{LiveReason, Stop};
use crate::replica::replay::Divergence;
use std::format;
use std::string::String;
use std::vec::Vec;

/// When the boards died (simulated µs).
pub struct Deaths {
    pub primary: Option<u64>,
    pub backup: Option<u64>,
}

/// Every check; the summary of a run that passed them.
pub fn check(
    plan: &Plan,
    p: &Board,
    b: &Board,
    out: &[(u64, u8)],
    died: &Deaths,
    verbose: bool,
) -> Result<Summary, String> {
    let mut s = Summary::default();
    let injected = divergence(plan, p, b, died, &mut s)?;
    states(p, b, injected, &mut s)?;
    time(p, b)?;
    survivor(plan, p, b, died, &mut s)?;
    failover(plan, p, b, died)?;
    output_bounds(p, b, &mut s)?;
    output(plan, b, out, died)?;
    detection(plan, b, died, &mut s)?;
    s.backup_killed = died.backup.is_some();
    if verbose {
        std::println!(
            "primary: {} ops, {} epochs, hold {:?}, backup lost {:?}; backup: {} ops, {} epochs, replayed {} inputs, went live {:?}, kept at most {} (bound {}); {} outputs left",
            p.pc,
            p.boundaries.len(),
            p.hold.stats(),
            p.backup_lost,
            b.pc,
            b.boundaries.len(),
            b.replayed_inputs,
            b.went_live,
            s.max_kept,
            s.kept_bound,
            out.len()
        );
    }
    Ok(s)
}

fn cut(plan: &Plan) -> bool {
    matches!(plan.incident, Incident::CutLink(_))
}

/// A divergence is caught exactly where it was injected, never otherwise;
/// returns the epoch injected (if the primary got there).
fn divergence(
    plan: &Plan,
    p: &Board,
    b: &Board,
    died: &Deaths,
    s: &mut Summary,
) -> Result<Option<u64>, String> {
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
        // The backup died or went live before epoch `e` was checked.
        (None, Some(_)) if died.backup.is_some() || b.engine.live() => {}
        (other, e) => {
            return Err(format!(
                "the backup stopped with {other:?}; divergence injected at epoch {e:?}"
            ));
        }
    }
    Ok(injected)
}

/// Every epoch the backup checked against the log has the primary's guest
/// state, and the values it replayed are the primary's.
fn states(p: &Board, b: &Board, injected: Option<u64>, s: &mut Summary) -> Result<(), String> {
    for &(epoch, hash, checked, _) in &b.boundaries {
        if !checked || injected == Some(epoch) {
            continue;
        }
        s.epochs_checked += 1;
        match p.boundaries.get(epoch as usize) {
            Some(&(_, h, _, _)) if h == hash => {}
            other => {
                return Err(format!(
                    "epoch {epoch}: the backup's guest state {hash:#x}, the primary's {other:?}"
                ));
            }
        }
    }
    let k = b.replayed_inputs;
    if b.observed[..k.min(b.observed.len())] != p.observed[..k.min(p.observed.len())] {
        return Err(format!(
            "the backup's first {k} observed values are not the primary's"
        ));
    }
    Ok(())
}

/// Guest time never goes backwards, on either board, and after a
/// takeover it follows the survivor's clock (no stall, no leap).
fn time(p: &Board, b: &Board) -> Result<(), String> {
    for (name, board) in [("primary", p), ("backup", b)] {
        if let Some((before, after)) = board.guest.time_went_back {
            return Err(format!(
                "the {name}'s guest time went backwards: {before} then {after}"
            ));
        }
    }
    match &b.time_fault {
        Some(f) => Err(format!("the backup's guest time: {f}")),
        None => Ok(()),
    }
}

/// Whoever survives finishes the program, having observed every input
/// once: a fresh guest fed the same values ends in the same state.
fn survivor(
    plan: &Plan,
    p: &Board,
    b: &Board,
    died: &Deaths,
    s: &mut Summary,
) -> Result<(), String> {
    let survivor = if died.primary.is_some() { b } else { p };
    if died.primary.is_some() && died.backup.is_none() && b.stopped.is_none() {
        s.takeover = b.engine.live();
        if !b.done {
            return Err(format!(
                "the backup did not finish the program after the primary died (op {} of {})",
                b.pc,
                plan.program.ops.len()
            ));
        }
    }
    if b.stopped.is_some() || (died.primary.is_some() && died.backup.is_some()) {
        return Ok(());
    }
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
    Ok(())
}

/// Neither board fails over while its peer lives and the link works.
fn failover(plan: &Plan, p: &Board, b: &Board, died: &Deaths) -> Result<(), String> {
    if let Some(live) = b.went_live {
        if died.primary.is_none() && !cut(plan) {
            return Err(format!(
                "the backup went live ({live:?}) while its primary lived"
            ));
        }
        if live.why != LiveReason::PeerGone {
            return Err(format!("the backup went live for another reason: {live:?}"));
        }
    }
    if let Some(epoch) = p.backup_lost
        && died.backup.is_none()
        && b.stopped.is_none()
        && !cut(plan)
    {
        return Err(format!(
            "the primary went on alone from epoch {epoch} while its backup lived"
        ));
    }
    Ok(())
}

/// The output buffers stay within their sizes: the primary's hold by
/// construction, the backup's within the bound `replica::output` gives
/// (the hold plus the output of two consecutive epochs), so none is lost.
fn output_bounds(p: &Board, b: &Board, s: &mut Summary) -> Result<(), String> {
    let hold = p.hold.stats();
    s.full_waits = hold.full_waits;
    s.max_hold_us = hold.max_us;
    if hold.max_held > hold.capacity {
        return Err(format!(
            "the primary held {} output bytes, its hold has {}",
            hold.max_held, hold.capacity
        ));
    }
    let mut per_epoch = Vec::new();
    let mut before = 0;
    for &(_, _, _, produced) in &b.boundaries {
        per_epoch.push(produced - before);
        before = produced;
    }
    per_epoch.push(b.produced - before);
    let two_epochs = per_epoch
        .windows(2)
        .map(|w| w[0] + w[1])
        .chain(per_epoch.first().copied())
        .max()
        .unwrap_or(0);
    s.max_kept = b.kept.max_kept();
    s.kept_bound = HOLD_BYTES + two_epochs as usize;
    if s.max_kept > s.kept_bound {
        return Err(format!(
            "the backup kept {} output bytes, more than the hold ({HOLD_BYTES}) and two epochs' output ({two_epochs})",
            s.max_kept
        ));
    }
    if b.kept.lost() > 0 {
        return Err(format!(
            "the backup's output buffer overflowed: {} bytes lost",
            b.kept.lost()
        ));
    }
    Ok(())
}

/// Output: none lost; one seen twice is the same byte, and only across a
/// takeover (not across a split brain, where both boards go on alone and
/// may well differ). The k-th byte of a guest's output is the output of
/// the program's k-th output op, on either board.
fn output(plan: &Plan, b: &Board, out: &[(u64, u8)], died: &Deaths) -> Result<(), String> {
    if b.stopped.is_some() || cut(plan) || (died.primary.is_some() && died.backup.is_some()) {
        return Ok(());
    }
    let outputs: Vec<usize> = plan
        .program
        .ops
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| matches!(op, Op::Output))
        .map(|(i, _)| i)
        .collect();
    if let Some(&(at, _)) = out.iter().find(|(at, _)| *at >= outputs.len() as u64) {
        return Err(format!(
            "output byte {at} left, the program writes {}",
            outputs.len()
        ));
    }
    let mut seen: Vec<Vec<u8>> = std::vec![Vec::new(); outputs.len()];
    for &(at, byte) in out {
        seen[at as usize].push(byte);
    }
    for (pc, bytes) in outputs.iter().zip(&seen) {
        if bytes.is_empty() {
            return Err(format!("the output of op {pc} never left either board"));
        }
        if bytes.iter().any(|&x| x != bytes[0]) {
            return Err(format!(
                "the output of op {pc} left twice with different bytes {bytes:?}: released before the backup had its inputs"
            ));
        }
        if bytes.len() > 1 && !b.took_over {
            return Err(format!(
                "the output of op {pc} left {} times without a takeover",
                bytes.len()
            ));
        }
    }
    Ok(())
}

/// A dead primary is noticed within the link's timeout.
fn detection(plan: &Plan, b: &Board, died: &Deaths, s: &mut Summary) -> Result<(), String> {
    if let (Some(killed), Some(noticed)) = (died.primary, b.engine.port_ref().peer_failed_at) {
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
    Ok(())
}
