//! The live-pair scenarios of `cargo xtask test` (docs/pair.md): the
//! Debian guest on a primary and a backup joined board to board, run to
//! its end with every epoch matched; the backup killed part way; the
//! primary killed at seeded random epochs (once from outside, through its
//! pid file, as a user would); a pair over serial that survives a primary
//! kill; a backup that diverges (a test-hooks image changes its
//! fingerprint at one epoch), which stops while the primary runs on; and a
//! mismatched pair, refused on both consoles.

use crate::board_options::BoardOptions;
use crate::guest;
use crate::image::Image;
use crate::pair::kill::{self, KillSpec, Trigger, When, Who};
use crate::pair::merge::in_order_at_least_once;
use crate::pair::{self, BackupOverrides, LinkKind, PairOptions, PairOutcome};
use anyhow::{Result, bail};
use el2_hypervisor::replica::pair_lines::Status;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The seeds of the three primary kills (printed with each scenario).
pub const PRIMARY_KILL_SEEDS: [u64; 3] = [11, 12, 13];

fn options<'a>(image: &'a Image, bundle: &'a Path, name: &str) -> PairOptions<'a> {
    PairOptions {
        board: BoardOptions::suite(image, bundle, 1_000_000, Duration::from_secs(600)),
        link: LinkKind::Ethernet,
        kills: vec![],
        heartbeat_ms: None,
        fail_ms: None,
        board_options: String::new(),
        backup: BackupOverrides::default(),
        dir: dir(name),
    }
}

fn dir(name: &str) -> PathBuf {
    crate::paths::out_dir().join("smoke").join(name)
}

/// The guest's own lines (its `/init`'s echoes), in the order it prints them.
fn workload_lines() -> Vec<String> {
    vec![
        "tandem-guest: init started".into(),
        format!(
            "tandem-guest: workload result {}",
            guest::expected_workload_result()
        ),
        "tandem-guest: powering off".into(),
    ]
}

/// Checks every workload line is on the merged console, in order.
fn merged_has_the_workload(o: &PairOutcome) -> Result<()> {
    let got = o.merged.lines_with("tandem-guest: ");
    let want = workload_lines();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    in_order_at_least_once(&got, &want)
        .map_err(|e| anyhow::anyhow!("merged console: {e} (got {got:?})"))?;
    if o.merged.early_backup_bytes > 0 {
        bail!(
            "the backup emitted {} bytes while the primary lived",
            o.merged.early_backup_bytes
        );
    }
    Ok(())
}

fn where_(o: &PairOptions<'_>) -> String {
    format!("consoles in {}", o.dir.display())
}

fn expect_finisher(out: &PairOutcome, who: Who, o: &PairOptions<'_>) -> Result<()> {
    if out.finisher() != Some(who) {
        bail!(
            "the guest did not run to its end on the {who} (primary: {}, backup: {}); {}",
            out.exits[0],
            out.exits[1],
            where_(o)
        );
    }
    Ok(())
}

/// Runs the suite; prints one line per scenario; returns (passed, failed).
pub fn run(
    image: &Image,
    test_hooks: &Image,
    bundle: &Path,
    test_guest_bundle: &Path,
    filter: Option<&str>,
    long: bool,
) -> Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    let mut report = |name: &str, started: Instant, r: Result<String>| match r {
        Ok(note) => {
            passed += 1;
            println!(
                "smoke {name} ... ok ({:.1} s){}",
                started.elapsed().as_secs_f64(),
                if note.is_empty() {
                    String::new()
                } else {
                    format!("\n  {note}")
                }
            );
        }
        Err(e) => {
            failed += 1;
            println!("smoke {name} ... FAILED\n  {e:#}");
        }
    };
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));

    let name = "pair-ethernet-completes-every-epoch-matched";
    if wanted(name) {
        let t = Instant::now();
        let o = options(image, bundle, name);
        let r = pair::run(&o).and_then(|out| {
            expect_finisher(&out, Who::Primary, &o)?;
            merged_has_the_workload(&out)?;
            let b = &out.seen[Who::Backup.index()];
            if b.status() != Some(0) || !b.said("replay: complete: every epoch matched the log") {
                bail!(
                    "the backup did not replay every epoch to the end ({}); {}",
                    out.exits[1],
                    where_(&o)
                );
            }
            let p = &out.seen[Who::Primary.index()];
            if p.backup_lost.is_some() || b.takeover.is_some() {
                bail!(
                    "a board was declared gone in a pair where none died; {}",
                    where_(&o)
                );
            }
            let Some(s) = p.summary else {
                bail!("the primary printed no summary; {}", where_(&o));
            };
            if s.acked != s.msgs {
                bail!(
                    "the primary ended with {} of {} messages acknowledged",
                    s.acked,
                    s.msgs
                );
            }
            Ok(format!(
                "{} epochs, {} log messages, {} bytes; output held p50 {} us p99 {} us",
                s.epochs, s.msgs, s.log_bytes, s.hold_p50_us, s.hold_p99_us
            ))
        });
        report(name, t, r);
    }

    let name = "pair-ethernet-backup-killed";
    if wanted(name) {
        let t = Instant::now();
        let mut o = options(image, bundle, name);
        o.kills = vec![KillSpec {
            who: Who::Backup,
            when: When::Random,
        }];
        o.board.seed = 21;
        let r = pair::run(&o).and_then(|out| {
            expect_finisher(&out, Who::Primary, &o)?;
            merged_has_the_workload(&out)?;
            let Some((lost, _)) = out.seen[Who::Primary.index()].backup_lost else {
                bail!("the primary never said its backup was gone; {}", where_(&o));
            };
            if !out.killed[Who::Backup.index()] {
                bail!("the backup was not killed; {}", where_(&o));
            }
            Ok(format!(
                "seed {}: backup lost at epoch {}",
                o.board.seed, lost.epoch
            ))
        });
        report(name, t, r);
    }

    for (i, seed) in PRIMARY_KILL_SEEDS.into_iter().enumerate() {
        // The last one is killed from outside, through the pid file.
        let outside = i + 1 == PRIMARY_KILL_SEEDS.len();
        let name = if outside {
            format!("pair-ethernet-primary-killed-from-outside-seed-{seed}")
        } else {
            format!("pair-ethernet-primary-killed-seed-{seed}")
        };
        if !wanted(&name) {
            continue;
        }
        let t = Instant::now();
        let mut o = options(image, bundle, &name);
        o.board.seed = seed;
        let killer = if outside {
            // The same seeded epoch as `--kill primary@random` would pick,
            // watched for in the primary's console file as it grows.
            let Trigger::Epoch(epoch) = kill::resolve(
                KillSpec {
                    who: Who::Primary,
                    when: When::Random,
                },
                seed,
                o.board.epoch,
            ) else {
                unreachable!("random kills are epochs")
            };
            Some(kill_from_outside(
                o.dir.join("primary.pid"),
                o.dir.join("primary.console.txt"),
                epoch,
            ))
        } else {
            o.kills = vec![KillSpec {
                who: Who::Primary,
                when: When::Random,
            }];
            None
        };
        let r = pair::run(&o).and_then(|out| {
            let killed = match killer.map(|k| k.join()) {
                Some(Ok(Ok(epoch))) => format!("kill -9 from outside at epoch {epoch}"),
                Some(Ok(Err(e))) => bail!("the outside kill failed: {e}"),
                Some(Err(_)) => bail!("the outside killer panicked"),
                None => out
                    .kills
                    .first()
                    .map_or("no kill".into(), |k| format!("--kill {}", k.1)),
            };
            expect_finisher(&out, Who::Backup, &o)?;
            merged_has_the_workload(&out)?;
            let Some((tk, _)) = out.seen[Who::Backup.index()].takeover else {
                bail!("the backup never took over; {}", where_(&o));
            };
            if !out.killed[Who::Primary.index()] {
                bail!("the primary was not killed; {}", where_(&o));
            }
            Ok(format!(
                "seed {seed}: {killed}; takeover at epoch {} after {} ms of board time{}; {} bytes re-emitted",
                tk.epoch,
                tk.silent_ms,
                out.detection_wall()
                    .map_or(String::new(), |d| format!(" ({:.1} s wall)", d.as_secs_f64())),
                tk.released
            ))
        });
        report(&name, t, r);
    }

    // Over serial the log of a Debian boot (about 1.5 MB) crosses QEMU's
    // PL011 at some 25 KB/s: in CI the primary dies a fifth of the way
    // through the boot (epoch 40 of about 214) and the backup, no longer
    // waiting for the link, finishes the guest; `--long` also runs the
    // whole guest paired over serial.
    let serial: &[(&str, Option<u64>)] = if long {
        &[
            ("pair-serial-primary-killed-at-epoch-40", Some(40)),
            ("pair-serial-completes-every-epoch-matched", None),
        ]
    } else {
        &[("pair-serial-primary-killed-at-epoch-40", Some(40))]
    };
    for &(name, kill_at) in serial {
        if !wanted(name) {
            continue;
        }
        let t = Instant::now();
        let mut o = options(image, bundle, name);
        o.link = LinkKind::Serial;
        o.board.epoch = 10_000_000;
        o.board.timeout = Duration::from_secs(900);
        o.kills = kill_at
            .map(|n| KillSpec {
                who: Who::Primary,
                when: When::Epoch(n),
            })
            .into_iter()
            .collect();
        let r = pair::run(&o).and_then(|out| {
            let who = if kill_at.is_some() {
                Who::Backup
            } else {
                Who::Primary
            };
            expect_finisher(&out, who, &o)?;
            merged_has_the_workload(&out)?;
            if kill_at.is_none()
                && !out.seen[Who::Backup.index()]
                    .said("replay: complete: every epoch matched the log")
            {
                bail!("the backup did not replay every epoch; {}", where_(&o));
            }
            Ok(match out.seen[Who::Backup.index()].takeover {
                Some((tk, _)) => format!("takeover at epoch {}", tk.epoch),
                None => String::new(),
            })
        });
        report(name, t, r);
    }

    // The Pi 4's pair under QEMU: two raspi4b boards over their
    // mini-UARTs (Cortex-A72 without FEAT_ECV: the memory-mapped timer and
    // the redirected counter reads), the primary killed; on the exact
    // counter, and on the real-core step path with each board's overflow
    // skidding up to 100 instructions its own way (`tandem.step-skid`).
    for (name, skid) in [
        ("pair-raspi4b-serial-primary-killed-at-epoch-60", None),
        (
            "pair-raspi4b-serial-steps-skid-100-primary-killed-at-epoch-60",
            Some(100),
        ),
    ] {
        if !wanted(name) {
            continue;
        }
        let t = Instant::now();
        let r = (|| {
            let rpi = crate::image::build(crate::board::Board::Raspi4b.image(false))?;
            let mut o = options(&rpi, bundle, name);
            o.link = LinkKind::Serial;
            o.board.board = crate::board::Board::Raspi4b;
            o.board.epoch = 10_000_000;
            if let Some(skid) = skid {
                o.board.epoch_counter = crate::board_options::EpochCounter::Steps;
                o.board.step_skid = skid;
            }
            o.board.timeout = Duration::from_secs(600);
            o.kills = vec![KillSpec {
                who: Who::Primary,
                when: When::Epoch(60),
            }];
            let out = pair::run(&o)?;
            expect_finisher(&out, Who::Backup, &o)?;
            merged_has_the_workload(&out)?;
            Ok(match out.seen[Who::Backup.index()].takeover {
                Some((tk, _)) => format!("takeover at epoch {}", tk.epoch),
                None => bail!("the backup never took over; {}", where_(&o)),
            })
        })();
        report(name, t, r);
    }

    // The bare-metal test guest (about 30,000 instructions) in epochs of
    // 2,000, on a test-hooks image whose backup changes its fingerprint at
    // epoch 5, as a diverged guest would.
    let name = "pair-backup-diverges-primary-runs-on";
    if wanted(name) {
        let t = Instant::now();
        let mut o = options(test_hooks, test_guest_bundle, name);
        o.board.epoch = 2_000;
        o.backup.board_options = "tandem.selftest=diverge:5".into();
        o.board.timeout = Duration::from_secs(300);
        let r = pair::run(&o).and_then(|out| {
            expect_finisher(&out, Who::Primary, &o)?;
            let b = &out.seen[Who::Backup.index()];
            if b.status() != Some(6) || !b.said("replay: divergence at epoch 5 ") {
                bail!(
                    "the backup did not stop at epoch 5 with status 6 ({}); {}",
                    out.exits[1],
                    where_(&o)
                );
            }
            if out.seen[Who::Primary.index()].backup_lost.is_none() {
                bail!(
                    "the primary never said it runs on unprotected; {}",
                    where_(&o)
                );
            }
            if !out
                .merged
                .text()
                .contains("test-guest: 13 passed, 0 failed")
            {
                bail!("the test guest did not finish its checks; {}", where_(&o));
            }
            Ok(String::new())
        });
        report(name, t, r);
    }

    let name = "pair-refuses-another-seed";
    if wanted(name) {
        let t = Instant::now();
        let mut o = options(image, bundle, name);
        o.backup.seed = Some(crate::qemu::DEFAULT_SEED + 1);
        o.board.timeout = Duration::from_secs(120);
        let r = pair::run(&o).and_then(|out| {
            for who in Who::BOTH {
                let s = &out.seen[who.index()];
                if s.status() != Some(4) {
                    bail!(
                        "the {who} ended {}, not with status 4; {}",
                        out.exits[who.index()],
                        where_(&o)
                    );
                }
                if !s.said("pairing refused: random-number seed differs") {
                    bail!("the {who}'s console does not name the seed; {}", where_(&o));
                }
            }
            if out.finisher().is_some() {
                bail!("a refused pair ran the guest");
            }
            Ok(String::new())
        });
        report(name, t, r);
    }
    Ok((passed, failed))
}

/// Waits for the pid file, then watches the board's console file for a
/// status line at `epoch` or later and `kill -9`s that process, as a user
/// would from another terminal. Returns the epoch it saw.
fn kill_from_outside(
    pid_file: PathBuf,
    console: PathBuf,
    epoch: u64,
) -> std::thread::JoinHandle<Result<u64>> {
    let _ = std::fs::remove_file(&pid_file);
    let _ = std::fs::remove_file(&console);
    std::thread::spawn(move || {
        let start = Instant::now();
        loop {
            if start.elapsed() > Duration::from_secs(300) {
                bail!("epoch {epoch} not reached in 5 minutes");
            }
            std::thread::sleep(Duration::from_millis(20));
            let Ok(text) = std::fs::read_to_string(&console) else {
                continue;
            };
            let seen = text.lines().rev().find_map(Status::parse).map(|s| s.epoch);
            let Some(seen) = seen.filter(|&e| e >= epoch) else {
                continue;
            };
            let pid = std::fs::read_to_string(&pid_file)?;
            let status = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status()?;
            if !status.success() {
                bail!("kill -9 {} failed ({status})", pid.trim());
            }
            return Ok(seen);
        }
    })
}
