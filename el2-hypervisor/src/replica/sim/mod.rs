//! A deterministic simulation of a primary and a backup, on the host: the
//! replica [`engine`](super::engine) of each, a model guest, and the
//! `replication-link` protocol over a faulty in-memory medium, all driven
//! by one seeded PRNG, so that one seed reproduces one whole run (the way
//! FoundationDB's simulator and TigerBeetle's VOPR work).
//!
//! Per seed ([`world::Plan`]): the guest's program and epoch length, the
//! medium's faults (loss, corruption, duplication, reordering, delay), and
//! at most one event: the primary killed at some step, the backup killed,
//! the link cut, or a divergence injected into the backup's guest.
//!
//! Checked on every run ([`world::run`]):
//! - the backup's guest state equals the primary's at every epoch it
//!   completed from the log (the engine's fingerprint check, and the model
//!   guest's own hash compared here);
//! - after a primary kill the backup goes live and its guest runs the
//!   program to its end; the values it observed are the primary's, then its
//!   own, with none skipped or repeated (a fresh guest fed the same values
//!   ends in the same state);
//! - output, with the library's output rule ([`output`](super::output)):
//!   the primary holds its guest's output in an `OutputHold` until the
//!   backup has acknowledged every log message before it, and tells the
//!   backup how far it released (`Released`, at every boundary and before
//!   it powers off); the backup keeps its own guest's output past that
//!   mark in a `BackupOutput` and emits it when it takes over. Nothing is
//!   lost (every output of the program appears), an output seen twice is
//!   the same byte both times and only across a takeover, the hold is
//!   small enough that the guest sometimes waits for it, and the backup's
//!   buffer stays within the documented bound (the hold plus two epochs'
//!   output), so it never overflows;
//! - neither board fails over while its peer lives (both engines run
//!   `with_failover`: a backup goes live where the log it received ends, a
//!   primary goes on alone);
//! - guest time (counter reads) never goes backwards, across a takeover too;
//! - a dead primary is detected within the link's timeout;
//! - a divergence injected at epoch `e` is reported at epoch `e`.
//!
//! `cargo test -p el2-hypervisor replica::sim` runs 2,000 seeds;
//! `TANDEM_SIM_SEEDS=N` runs N (from `TANDEM_SIM_FIRST_SEED`, default 0),
//! and a failing seed is printed with the command that replays it alone.

mod board;
mod check;
mod guest;
mod rng;
mod wire;
mod world;

use std::string::String;

/// Seeds run by default (CI).
const DEFAULT_SEEDS: u64 = 2_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The command that replays one seed, verbosely.
fn replay_command(seed: u64) -> String {
    std::format!(
        "TANDEM_SIM_SEED={seed} cargo test -p el2-hypervisor replica::sim::one_seed -- --nocapture"
    )
}

#[test]
fn seeds() {
    let first = env_u64("TANDEM_SIM_FIRST_SEED").unwrap_or(0);
    let n = env_u64("TANDEM_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let mut tally = world::Tally::default();
    for seed in first..first + n {
        match world::run(seed, false) {
            Ok(summary) => tally.add(&summary),
            Err(e) => panic!(
                "simulation seed {seed} failed: {e}\n  replay it: {}",
                replay_command(seed)
            ),
        }
    }
    std::println!("simulated {n} seeds from {first}: {tally}");
    // The seeds must exercise what they claim to.
    assert!(tally.takeovers > 0 && tally.backup_kills > 0 && tally.divergences_caught > 0);
    assert!(
        tally.runs_with_full_waits > 0,
        "no guest waited for a full hold"
    );
    assert!(tally.epochs_checked > 1000);
}

#[test]
fn one_seed() {
    if let Some(seed) = env_u64("TANDEM_SIM_SEED") {
        match world::run(seed, true) {
            Ok(s) => std::println!("seed {seed}: ok: {s:?}"),
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
}
