//! The record/replay scenarios of `cargo xtask test`: the Debian guest
//! recorded on one QEMU board and replayed on another, for several epoch
//! lengths; a freshly recorded log with one changed epoch time, which
//! the replay must refuse at the right epoch; the bare-metal test guest
//! under record and replay (it checks from the inside that the PMU, the
//! hypervisor's epoch counter, is hidden and unusable, and prints the RNDR
//! values it draws, which the replay must reproduce); replays by a
//! board that differs from the recording one (epoch length, epoch
//! counter, memory, CPU, GIC version, guest timer, guest, seed), each
//! refused at pairing with its reason; the Debian guest recorded and
//! replayed on a GICv2 (GIC-400) board, with the memory-mapped timer, and
//! with the real-core step path forced (`--epoch-counter steps`); and a
//! replay whose feeder dies
//! half way, and a recording whose recorder dies half way, which the board
//! must each report as its peer gone (status 7), never as a divergence.

use crate::board_options::EpochCounter;
use crate::image::Image;
use crate::linkhost::{self, BoardOptions, Vanish};
use crate::recording;
use crate::runner::Outcome;
use crate::{guest, paths};
use anyhow::{Context, Result, bail};
use el2_hypervisor::exit::ExitStatus;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Epoch lengths CI records and replays the Linux guest with.
pub const EPOCHS: [u64; 2] = [1_000_000, 10_000_000];
/// Shorter epochs, run with `cargo xtask test --long`: a Linux boot is
/// about 2.1e9 guest instructions, so 10,000-instruction epochs mean
/// 210,000 boundaries, and the replaying board reads its ~15 MB log through
/// QEMU's PL011 one byte per main-loop turn (about 15 minutes).
pub const LONG_EPOCHS: [u64; 2] = [10_000, 100_000];

/// How a refusal scenario makes the replaying board differ.
type ChangeBoard = fn(&mut BoardOptions<'_>);

/// The scenario whose feeder dies half way.
const FEEDER_DIES: &str = "replay-feeder-dies-board-says-peer-gone";
/// The scenario whose recorder dies half way.
const RECORDER_DIES: &str = "record-recorder-dies-board-says-peer-gone";

/// The scenario that records and replays with the step path forced.
const STEPS: &str = "record-replay-linux-steps-to-exact-count";

/// The number that follows the first `label` in a console, if any.
fn number_after(console: &str, label: &str) -> Option<u64> {
    let (_, rest) = console.split_once(label)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Where a board's epoch statistics give its single steps.
const STEPS_LABEL: &str = "single steps to the exact count: ";

/// The total of `single steps to the exact count: N` in a board's epoch
/// statistics, if it printed one.
fn steps_taken(console: &str) -> Option<u64> {
    number_after(console, STEPS_LABEL)
}

/// Exclusive windows a console's board ran again whole
/// (`replica::exclusive`): `exclusive-window=` in its trap counts.
fn window_runs(console: &str) -> Option<u64> {
    number_after(console, " exclusive-window=")
}

/// The step figures of a console's epoch report.
fn step_report(console: &str) -> Option<&str> {
    let (_, rest) = console.split_once(STEPS_LABEL)?;
    rest.split(')').next()
}

/// What the test guest prints when every check passed.
const TEST_GUEST_PASSED: &str = "test-guest: 13 passed, 0 failed";

fn options<'a>(image: &'a Image, bundle: &'a Path, epoch: u64) -> BoardOptions<'a> {
    let timeout = Duration::from_secs(if epoch < 1_000_000 { 2400 } else { 600 });
    BoardOptions::suite(image, bundle, epoch, timeout)
}

/// Checks that a board ended with `status`, naming its console if not.
fn expect_status(out: &Outcome, status: ExitStatus, console: &Path) -> Result<()> {
    if out.exit_code() != Some(i32::from(status.code())) {
        bail!(
            "{}, expected status {} ({}); console {}",
            out.describe(),
            status.code(),
            status.meaning(),
            console.display()
        );
    }
    Ok(())
}

fn dir() -> PathBuf {
    paths::out_dir().join("replay")
}

fn console(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Records `bundle` at `epoch` into `log` and checks the recording run.
fn record_ok(image: &Image, bundle: &Path, epoch: u64, log: &Path, expect: &str) -> Result<String> {
    record_ok_on(&options(image, bundle, epoch), log, expect)
}

/// As [`record_ok`], on the board `o`.
fn record_ok_on(o: &BoardOptions<'_>, log: &Path, expect: &str) -> Result<String> {
    let r = linkhost::record(log, o)?;
    let text = console(&linkhost::beside(log, ".console.txt"))?;
    expect_status(
        &r.outcome,
        ExitStatus::Success,
        &linkhost::beside(log, ".console.txt"),
    )?;
    if !text.contains(expect) {
        bail!("the recorded guest did not print `{expect}`");
    }
    Ok(text)
}

/// Replays `log` and checks it finished with every epoch matched and the
/// same guest console as `recorded`.
fn replay_ok(image: &Image, bundle: &Path, epoch: u64, log: &Path, recorded: &str) -> Result<()> {
    replay_ok_on(&options(image, bundle, epoch), log, recorded)
}

/// As [`replay_ok`], on the board `o`.
fn replay_ok_on(o: &BoardOptions<'_>, log: &Path, recorded: &str) -> Result<()> {
    let r = linkhost::replay(log, o)?;
    let path = linkhost::beside(log, ".replay.console.txt");
    let text = console(&path)?;
    expect_status(&r.outcome, ExitStatus::Success, &path)?;
    if !text.contains("replay: complete: every epoch matched the log") {
        bail!(
            "the replaying board did not report a complete replay; console {}",
            path.display()
        );
    }
    recording::compare_consoles(recorded, &text)
        .map_err(|e| anyhow::anyhow!("{e}; console {}", path.display()))
}

/// Replays `log` with a feeder that dies (closes its socket, as a killed
/// host program's does) once half the log is acknowledged: the board must
/// stop with status 7 and say its peer is gone, and xtask must say "peer
/// gone"; neither may speak of a divergence.
fn feeder_dies(image: &Image, bundle: &Path, log: &Path) -> Result<()> {
    let half = recording::Log::read(log)?.messages.len() / 2;
    let mut o = options(image, bundle, 10_000);
    o.timeout = Duration::from_secs(120);
    let r = linkhost::replay_with(log, &o, Vanish::AfterAcked(half))?;
    let path = dir().join(format!("{FEEDER_DIES}.console.txt"));
    std::fs::copy(linkhost::beside(log, ".replay.console.txt"), &path)?;
    let text = console(&path)?;
    expect_status(&r.outcome, ExitStatus::PeerGone, &path)?;
    if !text.contains("hypervisor: link: the peer is gone (epoch ") {
        bail!(
            "the board did not say its peer is gone; console {}",
            path.display()
        );
    }
    let said = match linkhost::replay_verdict(&r) {
        Ok(()) => bail!("xtask took a replay cut short for a finished one"),
        Err(e) => format!("{e:#}"),
    };
    if !said.starts_with("peer gone: ") {
        bail!("xtask said `{said}`, not that the peer is gone");
    }
    if text.contains("divergence") || said.contains("diverge") {
        bail!(
            "a gone peer was reported as a divergence (xtask: `{said}`); console {}",
            path.display()
        );
    }
    println!("  {said}");
    Ok(())
}

/// Records the test guest with a recorder that stores half the messages
/// of a whole recording (`full`) and vanishes: the board must stop with
/// status 7 and say its peer is gone, within the record timeout of host
/// time although its clock runs at instruction speed (QEMU's
/// `sleep=off`): it waits for acknowledgements in pauses of its clock.
fn recorder_dies(image: &Image, bundle: &Path, full: &Path) -> Result<()> {
    let half = recording::Log::read(full)?.messages.len() as u64 / 2;
    let log = dir().join(format!("{RECORDER_DIES}.log"));
    let mut o = options(image, bundle, 10_000);
    o.timeout = Duration::from_secs(120);
    let out = linkhost::record_vanishing(&log, &o, half)?;
    let path = linkhost::beside(&log, ".console.txt");
    let text = console(&path)?;
    expect_status(&out, ExitStatus::PeerGone, &path)?;
    if !text.contains("hypervisor: link: the peer is gone (epoch ") {
        bail!(
            "the board did not say its peer is gone; console {}",
            path.display()
        );
    }
    if text.contains("divergence") {
        bail!(
            "a gone recorder was reported as a divergence; console {}",
            path.display()
        );
    }
    let kept = recording::Log::read(&log)?.messages.len() as u64;
    println!(
        "  the recorder kept {kept} messages and vanished; the board said its peer is gone after {:.1} s",
        out.wall.as_secs_f64()
    );
    Ok(())
}

/// Runs the suite; prints one line per scenario; returns (passed, failed).
pub fn run(
    image: &Image,
    raspi4b: &Image,
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

    // QEMU's Raspberry Pi 4: the log leaves the board over its mini-UART
    // (the link there: QEMU models no second PL011), the three secondary
    // cores parked all along. Recorded only: its replay diverges, as on
    // any core without FEAT_ECV (docs/pi4.md, "Known not to work yet").
    let name = "record-raspi4b-over-the-mini-uart";
    if wanted(name) {
        let t = Instant::now();
        let r = (|| {
            let o = BoardOptions {
                board: crate::board::Board::Raspi4b,
                ..options(raspi4b, bundle, 10_000_000)
            };
            let log = dir().join("raspi4b.log");
            let _ = std::fs::remove_file(&log);
            let rec = record_ok_on(&o, &log, &result_line)?;
            let parked = "hypervisor: secondary cores [1, 2, 3] parked in WFI";
            if !rec.contains(parked) {
                bail!("the raspi4b board did not say `{parked}`");
            }
            let l = recording::Log::read(&log)?;
            let epochs = l
                .messages
                .iter()
                .filter(|m| matches!(m, replication_link::message::Message::EpochEnd(_)))
                .count();
            if epochs < 100 {
                bail!("only {epochs} epoch ends came over the mini-UART");
            }
            println!("  {epochs} epoch ends over the mini-UART");
            Ok(())
        })();
        report(name, t, r);
    }

    // The memory-mapped timer (the guest's time on a core without
    // FEAT_ECV), forced on -cpu max: there the CP15 counter reads Linux
    // still makes before time_init() trap too, so every input of the
    // guest is the hypervisor's and the replay must match every epoch.
    // (On cortex-a72 they are redirected to the trapped CNTPCT_EL0: the
    // scenario after this one.)
    let name = "record-replay-linux-mmio-timer";
    if wanted(name) {
        let t = Instant::now();
        let r = (|| {
            let mut o = options(image, bundle, 10_000_000);
            o.guest_timer = Some(crate::board_options::GuestTimer::Mmio);
            let log = dir().join("linux-mmio-timer.log");
            let _ = std::fs::remove_file(&log);
            let rec = record_ok_on(&o, &log, &result_line)?;
            let mmio = "arch_timer: mmio timer(s) running at";
            if !rec.contains(mmio) || rec.contains("arch_timer: cp15") {
                bail!("the recorded guest did not count with the memory-mapped timer (`{mmio}`)");
            }
            // The SMCCC TRNG seeded the CRNG before time_init().
            let crng = rec.find("random: crng init done");
            if crng.is_none_or(|at| Some(at) > rec.find(mmio)) {
                bail!("the CRNG was not seeded before the timer was probed (no SMCCC TRNG?)");
            }
            let counts = crate::smoke::trap_counts(&rec).context("no traps line")?;
            if counts.get("mmio-counter").copied().unwrap_or(0) == 0 {
                bail!("no read of the memory-mapped counter was counted");
            }
            replay_ok_on(&o, &log, &rec)
        })();
        report(name, t, r);
    }

    // The Raspberry Pi 4's combination on virt: Cortex-A72 (no FEAT_ECV,
    // so the memory-mapped timer) and GICv2. The kernel's CNTVCT_EL0
    // reads, which cannot trap there, are redirected to the trapped
    // CNTPCT_EL0 (`guest::counter_patch`); SLUB's reads before time_init()
    // then trap (counted as counter-read) and every epoch replays.
    let name = "record-replay-linux-cortex-a72-gicv2";
    if wanted(name) {
        let t = Instant::now();
        let r = (|| {
            let o = BoardOptions {
                cpu: "cortex-a72".into(),
                gic: 2,
                ..options(image, bundle, 10_000_000)
            };
            let log = dir().join("linux-cortex-a72-gicv2.log");
            let _ = std::fs::remove_file(&log);
            let rec = record_ok_on(&o, &log, &result_line)?;
            let redirected = redirected_counter_reads(&rec)
                .context("no `guest kernel: N CNTVCT_EL0 reads redirected` line")?;
            if redirected == 0 {
                bail!("no CNTVCT_EL0 read of the guest kernel was redirected");
            }
            let counts = crate::smoke::trap_counts(&rec).context("no traps line")?;
            if counts.get("counter-read").copied().unwrap_or(0) == 0 {
                bail!(
                    "the redirected counter reads did not trap (counter-read=0): \
                     did the kernel's alternatives write them back?"
                );
            }
            replay_ok_on(&o, &log, &rec)
        })();
        report(name, t, r);
    }

    // The GIC-400 path (the Raspberry Pi 4's GIC): GICv2 list registers
    // through GICH, the guest's GICC on GICV, the maintenance interrupt.
    let name = "record-replay-linux-gicv2-epoch-10000000";
    if wanted(name) {
        let t = Instant::now();
        let log = dir().join("linux-gicv2.log");
        let o = BoardOptions {
            gic: 2,
            ..options(image, bundle, 10_000_000)
        };
        let r = record_ok_on(&o, &log, &result_line).and_then(|rec| replay_ok_on(&o, &log, &rec));
        report(name, t, r);
    }

    // The real-core path forced on QEMU: the epoch counter overflows a
    // margin early and the guest is single-stepped to the exact count; the
    // replay, stepping the same way, must match every epoch.
    let name = STEPS;
    if wanted(name) {
        let t = Instant::now();
        let r = (|| {
            let mut o = options(image, bundle, 10_000_000);
            o.epoch_counter = EpochCounter::Steps;
            let log = dir().join("linux-steps.log");
            let _ = std::fs::remove_file(&log);
            let rec = record_ok_on(&o, &log, &result_line)?;
            let steps = steps_taken(&rec).with_context(|| {
                format!(
                    "the recording printed no single-step count; console {}",
                    linkhost::beside(&log, ".console.txt").display()
                )
            })?;
            if steps == 0 {
                bail!("the recording took no single steps: the step path did not run");
            }

            replay_ok_on(&o, &log, &rec)?;
            let rep = console(&linkhost::beside(&log, ".replay.console.txt"))?;
            // The replay steps exactly as the recording did: the same
            // steps, the same ones counting two (`replica::step_to_count`).
            let (a, b) = (step_report(&rec), step_report(&rep));
            if a != b {
                bail!(
                    "the replay stepped otherwise than the recording: `{a:?}` recorded, `{b:?}` replayed"
                );
            }
            println!("  {steps} single steps to the exact count in the recording");
            Ok(())
        })();
        report(name, t, r);
    }

    // Two real cores' overflows skid differently, so their boards start
    // stepping at different instructions: simulated here (each board's
    // early overflow lands up to 100 instructions late, where its own
    // clock says). The guest must not see where: the replay still
    // matches every epoch, though it took other steps than the recording.
    // On the Pi 4's combination (a Cortex-A72, no LSE: Linux's atomics are
    // LDXR/STXR loops, which a step or a landing inside would break on one
    // board only: `replica::exclusive`), and on `-cpu max`.
    for (name, cpu, gic) in [
        ("record-replay-linux-steps-with-simulated-skid", "max", 3),
        (
            "record-replay-linux-cortex-a72-gicv2-steps-with-simulated-skid",
            "cortex-a72",
            2,
        ),
    ] {
        if !wanted(name) {
            continue;
        }
        let t = Instant::now();
        let r = (|| {
            let mut o = options(image, bundle, 10_000_000);
            o.epoch_counter = EpochCounter::Steps;
            o.step_skid = 100;
            o.cpu = cpu.to_string();
            o.gic = gic;
            let log = dir().join(format!("{name}.log"));
            let _ = std::fs::remove_file(&log);
            let rec = record_ok_on(&o, &log, &result_line)?;
            replay_ok_on(&o, &log, &rec)?;
            let rep = console(&linkhost::beside(&log, ".replay.console.txt"))?;
            let (a, b) = (step_report(&rec), step_report(&rep));
            if a.is_none() || a == b {
                bail!(
                    "the two boards stepped alike (`{a:?}` recorded, `{b:?}` replayed): the skid was not simulated"
                );
            }
            let (wa, wb) = (window_runs(&rec), window_runs(&rep));
            println!(
                "  single steps: recorded {}, replayed {}; exclusive windows run again whole: {wa:?} and {wb:?}",
                steps_taken(&rec).unwrap_or(0),
                steps_taken(&rep).unwrap_or(0)
            );
            Ok(())
        })();
        report(name, t, r);
    }

    let name = "replay-refuses-a-changed-epoch-time";
    if wanted(name) {
        let t = Instant::now();
        let r = (|| {
            // Its own recording, made now by this build: a log left by an
            // earlier run (or another scenario) proves nothing about this one.
            let epoch = 1_000_000;
            let log = dir().join("linux-to-change.log");
            let _ = std::fs::remove_file(&log);
            record_ok(image, bundle, epoch, &log, &result_line)?;
            let bad = dir().join("linux-corrupt.log");
            let at_epoch = recording::corrupt_epoch_time(&log, &bad, 100, 1_000_000)?;
            let r = linkhost::replay(&bad, &options(image, bundle, epoch))?;
            let path = linkhost::beside(&bad, ".replay.console.txt");
            let text = console(&path)?;
            expect_status(&r.outcome, ExitStatus::Divergence, &path)?;
            let want = format!("replay: divergence at epoch {at_epoch} ");
            if !text.contains(&want) {
                bail!(
                    "no `{want}...` report (epoch {at_epoch} ran on a changed guest time); console {}",
                    path.display()
                );
            }
            Ok(())
        })();
        report(name, t, r);
    }

    // A replaying board that differs from the recording one in what the
    // guest could observe must refuse to pair, and say what differs.
    let refusals: [(&str, ChangeBoard, &str); 8] = [
        (
            "replay-refuses-another-gic-version",
            // The guest sees another interrupt controller: the platform
            // lane holds the GIC version and ID_AA64PFR0_EL1 (whose GIC
            // field says whether there is a GICv3 CPU interface).
            |o| o.gic = 2,
            "pairing refused: platform differs",
        ),
        (
            "replay-refuses-another-epoch-length",
            |o| o.epoch = 20_000,
            "pairing refused: epoch length differs (ours 20000, peer 10000 instructions)",
        ),
        (
            "replay-refuses-another-memory-size",
            |o| o.memory = Some("512M".into()),
            "pairing refused: guest RAM differs (ours 480 MiB, peer 992 MiB)",
        ),
        (
            "replay-refuses-another-cpu",
            // The same model with pointer authentication off: another
            // ID_AA64ISAR1_EL1, which the guest reads.
            |o| o.cpu = "max,pauth=off".into(),
            "pairing refused: platform differs",
        ),
        (
            "replay-refuses-another-guest-timer",
            // The memory-mapped timer instead of the CP15 one: another
            // device tree, so another guest platform.
            |o| o.guest_timer = Some(crate::board_options::GuestTimer::Mmio),
            "pairing refused: platform differs",
        ),
        (
            "replay-refuses-another-epoch-counter",
            // The same epochs, but a board that steps shows its guest the
            // steps (`replica::step_to_count`): not the same guest.
            |o| o.epoch_counter = EpochCounter::Steps,
            "pairing refused: epoch counter differs (ours steps, peer cycles: tandem.epoch-counter)",
        ),
        (
            "replay-refuses-another-seed",
            |o| o.seed = crate::qemu::DEFAULT_SEED + 1,
            "pairing refused: random-number seed differs (ours 2, peer 1)",
        ),
        (
            "replay-refuses-another-guest",
            |_| {},
            "pairing refused: guest image differs",
        ),
    ];
    let log = dir().join("test-guest.log");
    let name = "record-replay-test-guest-pmu-hidden-rndr-equal";
    let mut test_guest_log = None;
    let refusal_wanted = refusals.iter().any(|(n, _, _)| wanted(n));
    if wanted(name) || refusal_wanted || wanted(FEEDER_DIES) || wanted(RECORDER_DIES) {
        let t = Instant::now();
        let r = (|| {
            let _ = std::fs::remove_file(&log);
            let rec = record_ok(image, test_guest_bundle, 10_000, &log, TEST_GUEST_PASSED)?;
            for check in ["rndr-hidden", "pmu-sve-undefined", "rndr-executes"] {
                let line = format!("test-guest: {check} ... PASS");
                if !rec.contains(&line) {
                    bail!("the recorded test guest did not print `{line}`");
                }
            }
            let rndr = rec
                .lines()
                .find(|l| l.contains("test-guest: rndr values"))
                .context("the recorded test guest printed no RNDR values")?;
            replay_ok(image, test_guest_bundle, 10_000, &log, &rec)?;
            // replay_ok compared every guest line: the RNDR line among them.
            println!("  {rndr} (the same in the replay)");
            test_guest_log = Some(log.clone());
            Ok(())
        })();
        if wanted(name) {
            report(name, t, r);
        } else if let Err(e) = r {
            report("record-test-guest-for-refusals", t, Err(e));
        }
    }

    if wanted(FEEDER_DIES) {
        let t = Instant::now();
        let r = test_guest_log
            .as_deref()
            .context("no test-guest recording to replay (its scenario failed)")
            .and_then(|log| feeder_dies(image, test_guest_bundle, log));
        report(FEEDER_DIES, t, r);
    }

    if wanted(RECORDER_DIES) {
        let t = Instant::now();
        let r = test_guest_log
            .as_deref()
            .context("no test-guest recording to compare with (its scenario failed)")
            .and_then(|log| recorder_dies(image, test_guest_bundle, log));
        report(RECORDER_DIES, t, r);
    }

    for (name, change, want) in refusals {
        if !wanted(name) {
            continue;
        }
        let t = Instant::now();
        let r = (|| {
            let Some(log) = test_guest_log.as_ref() else {
                bail!("no test-guest recording to replay (its scenario failed)");
            };
            // The other guest is the Linux bundle; every other case
            // replays the test guest it recorded.
            let guest = if name.ends_with("another-guest") {
                bundle
            } else {
                test_guest_bundle
            };
            let mut o = options(image, guest, 10_000);
            change(&mut o);
            let r = linkhost::replay(log, &o)?;
            // Kept per scenario (each replay of this log writes the same file).
            let path = dir().join(format!("{name}.console.txt"));
            std::fs::copy(linkhost::beside(log, ".replay.console.txt"), &path)?;
            let text = console(&path)?;
            expect_status(&r.outcome, ExitStatus::BadConfiguration, &path)?;
            if !text.lines().any(|l| l.contains(want)) {
                bail!(
                    "no `{want}` on the board's console; console {}",
                    path.display()
                );
            }
            Ok(())
        })();
        report(name, t, r);
    }
    Ok((passed, failed))
}

/// N in the hypervisor's `guest kernel: N CNTVCT_EL0 reads redirected`
/// line, if the console has one.
fn redirected_counter_reads(console: &str) -> Option<u64> {
    let line = console
        .lines()
        .find_map(|l| l.split_once("hypervisor: guest kernel: ").map(|(_, r)| r))?;
    let (n, rest) = line.split_once(' ')?;
    rest.starts_with("CNTVCT_EL0 reads redirected")
        .then(|| n.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_read_off_the_epoch_statistics() {
        let line = "hypervisor: epochs: 213 full, 0 ended at a timer deadline, 1 at WFI; 406 deadlines met inside an epoch; timer interrupts: 610, raised late by p50 0 us, p99 0 us, max 0 us; single steps to the exact count: 158464 (740 per epoch on average, min 0, max 1024)";
        assert_eq!(steps_taken(line), Some(158_464));
        assert_eq!(steps_taken("hypervisor: epochs: 2 full"), None);
    }

    #[test]
    fn the_redirected_count_is_read_from_the_hypervisors_line() {
        let line = "x\nhypervisor: guest kernel: 12 CNTVCT_EL0 reads redirected to the trapped CNTPCT_EL0 (4 left)\n";
        assert_eq!(redirected_counter_reads(line), Some(12));
        let unpatched =
            "hypervisor: guest kernel: no PE/COFF header (no MZ at offset 0); running it unpatched";
        assert_eq!(redirected_counter_reads(unpatched), None);
        assert_eq!(redirected_counter_reads("hypervisor: traps: total=3"), None);
    }
}
