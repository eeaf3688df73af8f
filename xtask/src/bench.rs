//! `cargo xtask bench`: figures measured side by side in one run, printed,
//! never asserted on time.
//!
//! `guest`: the default guest booted directly by QEMU at EL1 (no
//! hypervisor) against the same guest under the hypervisor, same machine
//! options. Times are host wall-clock times at which console lines arrive
//! (from the outside, so the guest's own clock, which the hypervisor
//! emulates, does not enter into it).

use crate::board::{Board, Machine, Use};
use crate::image::{self, ImageKind};
use crate::qemu::Vars;
use crate::runner::{BoardRun, Outcome, run};
use crate::{guest, paths, smoke};
use anyhow::{Context, Result, bail};
use std::time::Duration;

const INIT_STARTED: &str = "tandem-guest: init started";
const RESULT: &str = "tandem-guest: workload result";
const POWER_DOWN: &str = "reboot: Power down";

/// Timings of one guest run.
#[derive(Clone, Copy, Debug)]
pub struct GuestTimes {
    /// QEMU start to the guest's power-off.
    pub boot_to_poweroff: Duration,
    /// `/init` started to the workload's result: the workload alone.
    pub workload: Duration,
    /// QEMU's CPU time over the same window (`cpu_time`), if sampled.
    pub workload_cpu: Option<Duration>,
}

fn at(out: &Outcome, needle: &str) -> Result<Duration> {
    out.lines
        .iter()
        .find(|(_, l)| l.contains(needle))
        .map(|(t, _)| *t)
        .with_context(|| format!("the console has no `{needle}` line"))
}

/// Reads the timings off a finished run. A board under the hypervisor
/// must end with exit status 0 (its exit record); the same guest booted
/// directly has no hypervisor to write one, so QEMU's own clean exit is
/// its end.
pub fn guest_times(out: &Outcome, direct: bool) -> Result<GuestTimes> {
    let ended_well = if direct {
        out.qemu_exit == Some(0) && !out.timed_out
    } else {
        out.exit_code() == Some(0)
    };
    if !ended_well {
        bail!("the run ended badly: {}", out.describe());
    }
    let start = at(out, INIT_STARTED)?;
    let result = at(out, RESULT)?;
    Ok(GuestTimes {
        boot_to_poweroff: at(out, POWER_DOWN).unwrap_or(out.wall),
        workload: result.saturating_sub(start),
        workload_cpu: out.cpu.between(start, result),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Runs the guest bench on QEMU's `cpu` model and prints the table.
pub fn guest_bench(runs: usize, cpu: &str) -> Result<()> {
    let (g, bundle) = guest::bench_bundle()?;
    let img = image::build(ImageKind::VIRT)?;
    let common = |v: &mut Vars| {
        v.insert("GIC".into(), "3".into());
        v.insert("CPU".into(), cpu.into());
        v.insert("MEM".into(), "1G".into());
    };
    let (mut direct, mut hosted) = (Vec::new(), Vec::new());
    let mut traps = String::new();
    for i in 0..runs {
        let mut v = Vars::new();
        common(&mut v);
        v.insert("KERNEL".into(), g.kernel.display().to_string());
        v.insert("INITRD".into(), g.initramfs.display().to_string());
        v.insert("APPEND".into(), guest::BENCH_CMDLINE.into());
        let out = run(&BoardRun {
            config: "virt-direct",
            vars: v,
            elf: None,
            timeout: Duration::from_secs(120),
            echo: false,
            interactive: false,
            transcript: paths::out_dir()
                .join("bench")
                .join(format!("direct-{i}.console.txt")),
            extra_args: vec![],
        })?;
        direct.push(guest_times(&out, true).context("direct run")?);

        let mut v = Vars::new();
        common(&mut v);
        v.insert("IMAGE".into(), img.bin.display().to_string());
        v.insert("BUNDLE".into(), bundle.display().to_string());
        crate::qemu::set_board_cmdline(&mut v, crate::qemu::DEFAULT_SEED, "");
        let out = run(&BoardRun {
            config: "virt",
            vars: v,
            elf: Some(&img.elf),
            timeout: Duration::from_secs(180),
            echo: false,
            interactive: false,
            transcript: paths::out_dir()
                .join("bench")
                .join(format!("hosted-{i}.console.txt")),
            extra_args: vec![],
        })?;
        hosted.push(guest_times(&out, false).context("run under the hypervisor")?);
        if let Some(counts) = smoke::trap_counts(&out.console) {
            traps = counts
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    let d_boot = median(direct.iter().map(|t| t.boot_to_poweroff).collect());
    let h_boot = median(hosted.iter().map(|t| t.boot_to_poweroff).collect());
    let d_work = median(direct.iter().map(|t| t.workload).collect());
    let h_work = median(hosted.iter().map(|t| t.workload).collect());
    let ratio = |h: Duration, d: Duration| h.as_secs_f64() / d.as_secs_f64().max(1e-9);
    println!(
        "guest bench: Debian {} + busybox workload ({} awk iterations)",
        g.kernel_package,
        guest::WORKLOAD_ITERATIONS
    );
    println!(
        "QEMU TCG, virt, -cpu {cpu}, GICv3, 1 GiB; median of {runs} run(s) each, host wall clock"
    );
    println!("{:<28} {:>16} {:>12}", "", "boot to poweroff", "workload");
    println!(
        "{:<28} {:>14.2} s {:>10.2} s",
        "direct at EL1 (no hypervisor)",
        d_boot.as_secs_f64(),
        d_work.as_secs_f64()
    );
    println!(
        "{:<28} {:>14.2} s {:>10.2} s",
        "under tandem",
        h_boot.as_secs_f64(),
        h_work.as_secs_f64()
    );
    println!(
        "{:<28} {:>16.2} {:>12.2}",
        "ratio (tandem / direct)",
        ratio(h_boot, d_boot),
        ratio(h_work, d_work)
    );
    println!("traps (last run under tandem): {traps}");
    Ok(())
}

/// One line of the epochs table.
struct EpochRow {
    label: String,
    workload: Duration,
    boot: Duration,
    epochs: u64,
    log_bytes: u64,
    guest_seconds: f64,
}

/// Guest time covered by a log: where its last epoch end starts the next
/// epoch, in seconds.
pub fn guest_seconds(log: &std::path::Path) -> Result<f64> {
    use replication_link::message::Message;
    let l = crate::recording::Log::read(log)?;
    // Each epoch end carries the guest time its next epoch starts at.
    let last = l
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::EpochEnd(e) => Some(e.time),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    Ok(last as f64 / QEMU_VIRT_COUNTER_HZ)
}

/// The guest counter's frequency on QEMU's `virt` with `-cpu max`
/// (CNTFRQ_EL0, 1 GHz): a log holds counter ticks.
const QEMU_VIRT_COUNTER_HZ: f64 = 1e9;

/// `cargo xtask bench epochs`: the guest workload recorded (epochs, log
/// over the link) against the same workload under the hypervisor without
/// epochs, in one run, both under `-icount shift=0`.
pub fn epochs_bench(board: Board, lengths: &[u64]) -> Result<()> {
    let (g, bundle) = guest::bench_bundle()?;
    let img = image::build(board.image(false))?;
    let dir = paths::out_dir().join("bench").join(board.name());
    std::fs::create_dir_all(&dir)?;

    let mut v = Vars::new();
    board.machine_vars(&Machine::default(), &mut v)?;
    v.insert("IMAGE".into(), img.bin.display().to_string());
    v.insert("BUNDLE".into(), bundle.display().to_string());
    crate::qemu::set_board_cmdline(&mut v, crate::qemu::DEFAULT_SEED, "");
    let out = run(&BoardRun {
        config: board.config(Use::Run)?,
        vars: v,
        elf: Some(&img.elf),
        timeout: Duration::from_secs(600),
        echo: false,
        interactive: false,
        transcript: dir.join("free-icount.console.txt"),
        extra_args: vec!["-icount".into(), "shift=0,sleep=off".into()],
    })?;
    let base = guest_times(&out, false).context("run without epochs")?;
    let mut rows = vec![EpochRow {
        label: "no epochs (free)".into(),
        workload: base.workload,
        boot: base.boot_to_poweroff,
        epochs: 0,
        log_bytes: 0,
        guest_seconds: 0.0,
    }];
    for &len in lengths {
        let log = dir.join(format!("record-{len}.log"));
        let o = crate::linkhost::BoardOptions {
            board,
            ..crate::linkhost::BoardOptions::suite(&img, &bundle, len, Duration::from_secs(2400))
        };
        let r = crate::linkhost::record(&log, &o)?;
        let t = guest_times(&r.outcome, false).with_context(|| format!("recording at {len}"))?;
        rows.push(EpochRow {
            label: format!("record, epoch {len}"),
            workload: t.workload,
            boot: t.boot_to_poweroff,
            epochs: r.summary.epochs,
            log_bytes: r.summary.bytes,
            guest_seconds: guest_seconds(&log)? * QEMU_VIRT_COUNTER_HZ / board.counter_hz(),
        });
    }
    println!(
        "epochs bench: Debian {} + busybox workload, QEMU TCG -icount shift=0, {}",
        g.kernel_package,
        match board {
            Board::Virt => "virt, -cpu max, 1 GiB",
            Board::Raspi4b => "raspi4b (4 x cortex-a72, 3 parked), 2 GiB",
        }
    );
    println!(
        "host wall clock; the log goes over the board's link UART (virt: its second PL011; raspi4b: the mini-UART) to the host recorder (cargo xtask record)"
    );
    println!(
        "{:<24} {:>10} {:>8} {:>12} {:>8} {:>10} {:>11} {:>12}",
        "", "boot+run", "ratio", "workload", "ratio", "epochs", "log B/epoch", "log B/guest s"
    );
    let (b_boot, b_work) = (
        rows[0].boot.as_secs_f64(),
        rows[0].workload.as_secs_f64().max(1e-9),
    );
    for r in &rows {
        let per_epoch = if r.epochs > 0 {
            r.log_bytes as f64 / r.epochs as f64
        } else {
            0.0
        };
        let per_sec = if r.guest_seconds > 0.0 {
            r.log_bytes as f64 / r.guest_seconds
        } else {
            0.0
        };
        println!(
            "{:<24} {:>8.1} s {:>8.2} {:>10.2} s {:>8.2} {:>10} {:>11.0} {:>12.0}",
            r.label,
            r.boot.as_secs_f64(),
            r.boot.as_secs_f64() / b_boot,
            r.workload.as_secs_f64(),
            r.workload.as_secs_f64() / b_work,
            r.epochs,
            per_epoch,
            per_sec
        );
    }
    Ok(())
}
