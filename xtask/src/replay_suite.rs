//! The record/replay scenarios of `cargo xtask test` (issue 5): the
//! Debian guest recorded on one QEMU board and replayed on another, for
//! several epoch lengths; a log with one changed counter value, which the
//! replay must refuse at the right epoch; the bare-metal test guest under
//! record and replay (it checks from the inside that the PMU, the
//! hypervisor's epoch counter, is hidden).

use crate::image::Image;
use crate::linkhost::{self, BoardOptions};
use crate::recording;
use crate::{guest, paths};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Epoch lengths CI records and replays the Linux guest with.
pub const EPOCHS: [u64; 2] = [1_000_000, 10_000_000];
/// Shorter epochs, run with `cargo xtask test --long`: a Linux boot is
/// about 2.1e9 guest instructions, so 10,000-instruction epochs mean
/// 210,000 boundaries, and the replaying board reads its ~15 MB log through
/// QEMU's PL011 one byte per main-loop turn (about 15 minutes).
pub const LONG_EPOCHS: [u64; 2] = [10_000, 100_000];

fn options<'a>(image: &'a Image, bundle: &'a Path, epoch: u64) -> BoardOptions<'a> {
    BoardOptions {
        image,
        bundle,
        epoch,
        memory: "1G".into(),
        cpu: "max".into(),
        seed: crate::qemu::DEFAULT_SEED,
        timeout: Duration::from_secs(if epoch < 1_000_000 { 2400 } else { 600 }),
        echo: false,
    }
}

fn dir() -> PathBuf {
    paths::out_dir().join("replay")
}

fn console(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Records `bundle` at `epoch` into `log` and checks the recording run.
fn record_ok(image: &Image, bundle: &Path, epoch: u64, log: &Path, expect: &str) -> Result<String> {
    let r = linkhost::record(log, &options(image, bundle, epoch))?;
    let text = console(&linkhost::beside(log, ".console.txt"))?;
    if r.outcome.exit_code != Some(0) {
        bail!(
            "recording ended with {:?}; console {}",
            r.outcome.exit_code,
            linkhost::beside(log, ".console.txt").display()
        );
    }
    if !text.contains(expect) {
        bail!("the recorded guest did not print `{expect}`");
    }
    Ok(text)
}

/// Replays `log` and checks it finished with every epoch matched and the
/// same guest console as `recorded`.
fn replay_ok(image: &Image, bundle: &Path, epoch: u64, log: &Path, recorded: &str) -> Result<()> {
    let r = linkhost::replay(log, &options(image, bundle, epoch))?;
    let path = linkhost::beside(log, ".replay.console.txt");
    let text = console(&path)?;
    if r.outcome.exit_code != Some(0) {
        bail!(
            "replay ended with {:?}; console {}",
            r.outcome.exit_code,
            path.display()
        );
    }
    if !text.contains("replay: complete: every epoch matched the log") {
        bail!(
            "the replaying board did not report a complete replay; console {}",
            path.display()
        );
    }
    recording::compare_consoles(recorded, &text)
        .map_err(|e| anyhow::anyhow!("{e}; console {}", path.display()))
}

/// Runs the suite; prints one line per scenario; returns (passed, failed).
pub fn run(
    image: &Image,
    bundle: &Path,
    test_guest_bundle: &Path,
    filter: Option<&str>,
    long: bool,
) -> Result<(usize, usize)> {
    std::fs::create_dir_all(dir())?;
    let result_line = format!(
        "tandem-guest: workload result {}",
        guest::expected_workload_result()
    );
    let (mut passed, mut failed) = (0, 0);
    let mut report = |name: &str, started: Instant, r: Result<()>| match r {
        Ok(()) => {
            passed += 1;
            println!(
                "smoke {name} ... ok ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            failed += 1;
            println!("smoke {name} ... FAILED\n  {e:#}");
        }
    };
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));

    let epochs: Vec<u64> = if long {
        LONG_EPOCHS.iter().chain(EPOCHS.iter()).copied().collect()
    } else {
        EPOCHS.to_vec()
    };
    for epoch in epochs {
        let name = format!("record-replay-linux-epoch-{epoch}");
        if !wanted(&name) {
            continue;
        }
        let t = Instant::now();
        let log = dir().join(format!("linux-{epoch}.log"));
        let r = record_ok(image, bundle, epoch, &log, &result_line)
            .and_then(|rec| replay_ok(image, bundle, epoch, &log, &rec));
        report(&name, t, r);
    }

    let name = "replay-refuses-a-changed-counter-value";
    if wanted(name) {
        let t = Instant::now();
        let r = (|| {
            let epoch = 1_000_000;
            let log = dir().join(format!("linux-{epoch}.log"));
            if !log.exists() {
                record_ok(image, bundle, epoch, &log, &result_line)?;
            }
            let bad = dir().join("linux-corrupt.log");
            let (at_epoch, at_count) = recording::corrupt_first_counter_read(&log, &bad, 100)?;
            let r = linkhost::replay(&bad, &options(image, bundle, epoch))?;
            let path = linkhost::beside(&bad, ".replay.console.txt");
            let text = console(&path)?;
            if r.outcome.exit_code != Some(6) {
                bail!(
                    "replay of a changed log ended with {:?}, not 6 (divergence); console {}",
                    r.outcome.exit_code,
                    path.display()
                );
            }
            let want = format!("replay: divergence at epoch {at_epoch} ");
            if !text.contains(&want) {
                bail!(
                    "no `{want}...` report (the value changed at epoch {at_epoch} count {at_count}); console {}",
                    path.display()
                );
            }
            Ok(())
        })();
        report(name, t, r);
    }

    let name = "record-replay-test-guest-pmu-hidden";
    if wanted(name) {
        let t = Instant::now();
        let r = (|| {
            let log = dir().join("test-guest.log");
            let rec = record_ok(
                image,
                test_guest_bundle,
                10_000,
                &log,
                "test-guest: 7 passed, 0 failed",
            )?;
            if !rec.contains("test-guest: rndr-hidden ... PASS") {
                bail!("the test guest did not confirm the PMU and RNG hidden while recording");
            }
            replay_ok(image, test_guest_bundle, 10_000, &log, &rec)
        })();
        report(name, t, r);
    }
    Ok((passed, failed))
}
