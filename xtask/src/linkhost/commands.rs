//! The record and replay runs (a board plus the recorder or the feeder)
//! and the `cargo xtask record` / `replay` commands that print them; the
//! files they write sit beside the log ([`beside`]).

use super::board::with_board;
use super::feeder::{Fed, Vanish, replay_over};
use super::recorder::{Recorded, record_over};
use super::report::{board_report, describe_outcome, describe_refusal, describe_stats, finished};
use crate::board_options::BoardOptions;
use crate::recording::{Log, Summary, guest_lines};
use crate::runner::Outcome;
use anyhow::{Context, Result, anyhow, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `path` with `suffix` appended to its file name (`a.log` → `a.log.console.txt`).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A finished recording.
#[derive(Debug)]
pub struct RecordReport {
    pub outcome: Outcome,
    pub recorded: Recorded,
    /// What the log holds (read back from the file).
    pub summary: Summary,
    /// The console transcript (`FILE.console.txt`).
    pub console: PathBuf,
    /// Lines the guest printed.
    pub guest_lines: usize,
}

/// `cargo xtask record`: runs a recording board and stores its log in `log`
/// and its console in `log` + `.console.txt`.
///
/// # Errors
/// QEMU cannot start or fails, the board never pairs or stops with a
/// non-zero status, or the log cannot be written; the message says which,
/// with the board's own lines about it.
pub fn record(log: &Path, o: &BoardOptions<'_>) -> Result<RecordReport> {
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Fail before QEMU starts if the log cannot be written.
    std::fs::File::create(log).with_context(|| format!("creating the log {}", log.display()))?;
    let console = beside(log, ".console.txt");
    let (outcome, host) = with_board("record", o, console.clone(), |stream, done| {
        record_over(stream, log, None, done)
    })?;
    let context = || {
        let mut s = format!(
            "{}; console kept in {}",
            describe_outcome(&outcome),
            console.display()
        );
        for l in board_report(&outcome.console) {
            s.push_str("\n  board: ");
            s.push_str(l);
        }
        s
    };
    let recorded = host.with_context(context)?;
    if let Some(p) = recorded.end.problem() {
        bail!("{p}; {}", context());
    }
    if !finished(&outcome) {
        bail!("the recording failed: {}", context());
    }
    let summary = Log::read(log)?.summary();
    let guest_lines = guest_lines(&outcome.console).len();
    Ok(RecordReport {
        outcome,
        recorded,
        summary,
        console,
        guest_lines,
    })
}

/// A recording whose recorder vanishes (stores `after` messages, then
/// drops the connection, as a killed host program's socket closes): the
/// board's outcome, for a scenario to judge (it must say its peer is gone).
///
/// # Errors
/// QEMU cannot start, or the recorder fails before it vanishes.
pub fn record_vanishing(log: &Path, o: &BoardOptions<'_>, after: u64) -> Result<Outcome> {
    let console = beside(log, ".console.txt");
    let (outcome, host) = with_board("record", o, console, |stream, done| {
        record_over(stream, log, Some(after), done)
    })?;
    host?;
    Ok(outcome)
}

/// A finished replay (whatever the board's verdict).
#[derive(Debug)]
pub struct ReplayReport {
    pub outcome: Outcome,
    pub fed: Fed,
    /// Messages in the log.
    pub messages: usize,
    /// The console transcript (`FILE.replay.console.txt`).
    pub console: PathBuf,
}

impl ReplayReport {
    /// QEMU's exit status (`None` if killed).
    pub fn status(&self) -> Option<i32> {
        self.outcome.exit_code()
    }
}

/// `cargo xtask replay`: reads the log at `log`, runs a replaying board and
/// feeds it the log; the console goes to `log` + `.replay.console.txt`.
/// The board's verdict is in [`ReplayReport::status`]: 0 replay finished,
/// 6 divergence, 4 refused pairing, 7 the peer gone ([`replay_verdict`]).
///
/// # Errors
/// The log does not parse, QEMU cannot start or times out, or the socket
/// fails.
pub fn replay(log_path: &Path, o: &BoardOptions<'_>) -> Result<ReplayReport> {
    replay_with(log_path, o, Vanish::Never)
}

/// [`replay`] with a feeder that may vanish part way (`Vanish`): the
/// board must then report its peer gone (status 7), not a divergence.
///
/// # Errors
/// As [`replay`].
pub fn replay_with(log_path: &Path, o: &BoardOptions<'_>, vanish: Vanish) -> Result<ReplayReport> {
    let log = Log::read(log_path)?;
    let console = beside(log_path, ".replay.console.txt");
    let (outcome, fed) = with_board("replay", o, console.clone(), |stream, done| {
        replay_over(stream, &log, vanish, done)
    })?;
    let fed = fed.with_context(|| {
        format!(
            "{}; console kept in {}",
            describe_outcome(&outcome),
            console.display()
        )
    })?;
    if outcome.timed_out {
        bail!(
            "the replay timed out after {:.0} s (fed {} of {} messages, {} acknowledged); console kept in {}",
            outcome.wall.as_secs_f64(),
            fed.sent,
            log.messages.len(),
            fed.acked,
            console.display()
        );
    }
    Ok(ReplayReport {
        outcome,
        fed,
        messages: log.messages.len(),
        console,
    })
}

/// `cargo xtask record --log FILE`: records, then prints the summary.
///
/// # Errors
/// As [`record`].
pub fn record_command(log: &Path, o: &BoardOptions<'_>) -> Result<()> {
    crate::util::step(&format!(
        "recording: epochs of {} guest instructions; log {}, console {}",
        o.epoch,
        log.display(),
        beside(log, ".console.txt").display()
    ));
    let r = record(log, o)?;
    println!(
        "record: {} ({:.1} s)",
        log.display(),
        r.outcome.wall.as_secs_f64()
    );
    println!("{}", r.summary);
    println!(
        "guest console: {} lines, kept in {}",
        r.guest_lines,
        r.console.display()
    );
    println!("link: {}", describe_stats(&r.recorded.stats));
    Ok(())
}

/// `cargo xtask replay --log FILE`: replays, prints the board's verdict,
/// and compares the guest's console with the recorded one when
/// `FILE.console.txt` exists.
///
/// # Errors
/// As [`replay`]; also a divergence (status 6), a refused pairing
/// (status 4), the peer gone (7), any other failure, or guest consoles
/// that differ.
pub fn replay_command(log: &Path, o: &BoardOptions<'_>) -> Result<()> {
    crate::util::step(&format!(
        "replaying {}: epochs of {} guest instructions; console {}",
        log.display(),
        o.epoch,
        beside(log, ".replay.console.txt").display()
    ));
    let r = replay(log, o)?;
    println!(
        "replay: fed {} of {} messages{} ({} acknowledged) in {:.1} s; {}",
        r.fed.sent,
        r.messages,
        if r.fed.takeover_sent {
            " and the Takeover"
        } else {
            ""
        },
        r.fed.acked,
        r.outcome.wall.as_secs_f64(),
        describe_outcome(&r.outcome)
    );
    println!("link: {}", describe_stats(&r.fed.stats));
    for l in board_report(&r.outcome.console) {
        println!("  board: {l}");
    }
    replay_verdict(&r)?;
    let recorded = beside(log, ".console.txt");
    match std::fs::read_to_string(&recorded) {
        Ok(text) => {
            crate::recording::compare_consoles(&text, &r.outcome.console).map_err(|d| {
                anyhow!(
                    "the replayed guest console differs from {}: {d}",
                    recorded.display()
                )
            })?;
            println!(
                "guest console identical to the recording ({} lines)",
                guest_lines(&text).len()
            );
        }
        Err(_) => println!(
            "no {} to compare the guest console with",
            recorded.display()
        ),
    }
    Ok(())
}

/// What a replay's board status means: `Ok` for a finished replay, else
/// the error `cargo xtask replay` fails with: a divergence (status 6), a
/// refused pairing (4), the peer gone (7: the feeder, or the link to it,
/// failed; never a divergence), or another failure.
///
/// # Errors
/// The replay did not finish.
pub fn replay_verdict(r: &ReplayReport) -> Result<()> {
    match r.status() {
        Some(0) => Ok(()),
        Some(6) => bail!(
            "the replay diverged from the recording (board status 6); console kept in {}",
            r.console.display()
        ),
        Some(4) => bail!(
            "the replaying board refused the log{} (board status 4): replay with the recording's --epoch, --epoch-counter, --memory, --cpu, --seed and guest options and the same hypervisor build; console kept in {}",
            r.fed
                .end
                .refused
                .map(|x| format!(": {}", describe_refusal(&x)))
                .unwrap_or_default(),
            r.console.display()
        ),
        Some(7) => bail!(
            "peer gone: the replaying board lost its feeder after {} of {} messages (board status 7); the log was checked as far as it came; console kept in {}",
            r.fed.acked,
            r.messages,
            r.console.display()
        ),
        _ => bail!(
            "the replay failed: {}; console kept in {}",
            describe_outcome(&r.outcome),
            r.console.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::socket::socket_path;
    use super::*;

    #[test]
    fn paths_beside_the_log() {
        assert_eq!(
            beside(Path::new("/tmp/a.log"), ".console.txt"),
            Path::new("/tmp/a.log.console.txt")
        );
        let p = socket_path();
        assert!(p.as_os_str().len() < 108);
    }
}
