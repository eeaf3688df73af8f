//! The rows of `cargo xtask bench pair` and how they print: the table,
//! the memory and failover lines, and the last line.

use std::time::Duration;

/// What runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Config {
    /// QEMU alone, the guest at EL1 (no hypervisor).
    Bare,
    /// The hypervisor alone, no epochs.
    Hyp,
    /// The hypervisor with epochs and no link.
    Epochs,
    /// Recording to a file (the log over the PL011 to `cargo xtask`'s recorder).
    Record,
    /// A live pair over virtio-net.
    PairEth,
    /// A live pair over the second PL011s.
    PairSerial,
}

impl Config {
    pub const ALL: [Config; 6] = [
        Config::Bare,
        Config::Hyp,
        Config::Epochs,
        Config::Record,
        Config::PairEth,
        Config::PairSerial,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Config::Bare => "bare",
            Config::Hyp => "hyp",
            Config::Epochs => "epochs",
            Config::Record => "record",
            Config::PairEth => "pair-eth",
            Config::PairSerial => "pair-serial",
        }
    }

    /// Whether it runs once per epoch length.
    pub fn has_epochs(self) -> bool {
        !matches!(self, Config::Bare | Config::Hyp)
    }

    /// Whether it is a live pair (and so has an acking policy).
    pub fn is_pair(self) -> bool {
        matches!(self, Config::PairEth | Config::PairSerial)
    }
}

/// One run's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub config: Config,
    pub epoch: Option<u64>,
    /// A pair's acking policy (`tandem.ack`).
    pub ack: Option<String>,
    /// QEMU start to the guest's power-off.
    pub boot: Duration,
    /// `/init` started to the workload's result.
    pub workload: Duration,
    /// QEMU's CPU time over the workload (a pair's primary), if sampled.
    pub workload_cpu: Option<Duration>,
    pub log_bytes: Option<u64>,
    /// Guest time the log covers, seconds.
    pub guest_seconds: Option<f64>,
    pub msgs: Option<u64>,
    pub epochs: Option<u64>,
    /// Output hold time p50, p99 (µs).
    pub hold_us: Option<(u64, u64)>,
    /// QEMU's peak resident memory (KiB; a pair's primary).
    pub peak_kib: Option<u64>,
}

impl Row {
    /// A row with the times only.
    pub fn timed(config: Config, epoch: Option<u64>, boot: Duration, workload: Duration) -> Self {
        Self {
            config,
            epoch,
            ack: None,
            boot,
            workload,
            workload_cpu: None,
            log_bytes: None,
            guest_seconds: None,
            msgs: None,
            epochs: None,
            hold_us: None,
            peak_kib: None,
        }
    }

    /// Log bytes per second of guest time.
    pub fn log_per_guest_second(&self) -> Option<f64> {
        match (self.log_bytes, self.guest_seconds) {
            (Some(b), Some(s)) if s > 0.0 => Some(b as f64 / s),
            _ => None,
        }
    }

    /// Log messages per epoch.
    pub fn msgs_per_epoch(&self) -> Option<f64> {
        match (self.msgs, self.epochs) {
            (Some(m), Some(e)) if e > 0 => Some(m as f64 / e as f64),
            _ => None,
        }
    }

    fn label(&self) -> String {
        match self.epoch {
            Some(e) => format!("{} @{}", self.config.name(), e),
            None => self.config.name().to_string(),
        }
    }
}

/// The median of several runs of one configuration: the run whose
/// workload time is the median (the lower one of an even count), its
/// figures as that run printed them, with the boot time, the workload's
/// CPU time and the peak memory the medians of all the runs. `None` for no runs.
pub fn median(mut runs: Vec<Row>) -> Option<Row> {
    fn mid<T: Ord + Copy>(mut v: Vec<T>) -> Option<T> {
        v.sort();
        v.get((v.len().max(1) - 1) / 2).copied()
    }
    let boot = mid(runs.iter().map(|r| r.boot).collect())?;
    let peak = mid(runs.iter().filter_map(|r| r.peak_kib).collect());
    let cpu = mid(runs.iter().filter_map(|r| r.workload_cpu).collect());
    runs.sort_by_key(|r| r.workload);
    let mut row = runs.swap_remove((runs.len() - 1) / 2);
    row.boot = boot;
    row.peak_kib = peak;
    row.workload_cpu = cpu;
    Some(row)
}

/// The epoch length of the last line: the boards' default.
pub const DEFAULT_EPOCH: u64 = el2_hypervisor::options::DEFAULT_EPOCH;

fn find(rows: &[Row], config: Config, epoch: Option<u64>) -> Option<&Row> {
    let mut matching = rows
        .iter()
        .filter(|r| r.config == config && (epoch.is_none() || r.epoch == epoch));
    let first = matching.next()?;
    // Of several acking policies, the output rule's (the default).
    Some(
        std::iter::once(first)
            .chain(matching)
            .find(|r| r.ack.as_deref().is_none_or(|a| a == "output"))
            .unwrap_or(first),
    )
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

/// The table, a line per row: wall times, the workload's ratio to the
/// hypervisor alone and to bare, the workload's CPU time and its ratio to
/// the hypervisor alone's, the log, the output hold, the acking policy,
/// QEMU's peak memory.
pub fn table(rows: &[Row]) -> Vec<String> {
    let hyp_row = find(rows, Config::Hyp, None);
    let hyp = hyp_row.map(|r| r.workload);
    let hyp_cpu = hyp_row.and_then(|r| r.workload_cpu);
    let bare = find(rows, Config::Bare, None);
    let mut out = vec![format!(
        "{:<22} {:>9} {:>9} {:>7} {:>7} {:>9} {:>8} {:>9} {:>11} {:>9} {:>17} {:>6} {:>8}",
        "",
        "boot+run",
        "workload",
        "/hyp",
        "/bare",
        "cpu",
        "cpu/hyp",
        "boot/bare",
        "log B/gst-s",
        "msg/epoch",
        "hold p50/p99 ms",
        "ack",
        "peak MiB"
    )];
    for r in rows {
        out.push(format!(
            "{:<22} {:>7.2} s {:>7.2} s {:>7} {:>7} {:>9} {:>8} {:>9} {:>11} {:>9} {:>17} {:>6} {:>8}",
            r.label(),
            r.boot.as_secs_f64(),
            r.workload.as_secs_f64(),
            opt(hyp, |h| format!("{:.2}", ratio(r.workload, h))),
            opt(bare, |b| format!("{:.2}", ratio(r.workload, b.workload))),
            opt(r.workload_cpu, |c| format!("{:.2} s", c.as_secs_f64())),
            opt(r.workload_cpu.zip(hyp_cpu), |(c, h)| format!(
                "{:.2}",
                ratio(c, h)
            )),
            opt(bare, |b| format!("{:.2}", ratio(r.boot, b.boot))),
            opt(r.log_per_guest_second(), |v| format!("{v:.0}")),
            opt(r.msgs_per_epoch(), |v| format!("{v:.1}")),
            opt(r.hold_us, |(p50, p99)| format!(
                "{:.1}/{:.1}",
                p50 as f64 / 1e3,
                p99 as f64 / 1e3
            )),
            r.ack.as_deref().unwrap_or("-"),
            opt(r.peak_kib, |k| format!("{}", k / 1024)),
        ));
    }
    out
}

/// QEMU's peak memory under the hypervisor against bare (the boot-cost
/// target: within 1.10x).
pub fn memory_line(rows: &[Row]) -> Option<String> {
    let hyp = find(rows, Config::Hyp, None)?.peak_kib?;
    let bare = find(rows, Config::Bare, None)?.peak_kib?;
    Some(format!(
        "QEMU peak memory: hypervisor {} MiB, bare {} MiB, ratio {:.2}",
        hyp / 1024,
        bare / 1024,
        hyp as f64 / bare.max(1) as f64
    ))
}

/// The last line's ratios in QEMU's CPU time over the workload instead of
/// wall time (`cpu_time` says why both), when every run was sampled.
pub fn cpu_line(rows: &[Row]) -> Option<String> {
    let cpu = |c, e| find(rows, c, e).and_then(|r| r.workload_cpu);
    let pair = cpu(Config::PairEth, Some(DEFAULT_EPOCH))?;
    let hyp = cpu(Config::Hyp, None)?;
    let bare = cpu(Config::Bare, None)?;
    Some(format!(
        "cpu time (QEMU, the workload; a pair's primary): pair/hypervisor={:.2} hypervisor/bare={:.2}",
        ratio(pair, hyp),
        ratio(hyp, bare)
    ))
}

/// A primary killed in a pair: detection in the backup's time and in wall
/// time after the kill.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Failover {
    pub epoch: u64,
    /// The failure detector's wait, on the backup's clock.
    pub silent_ms: u64,
    pub wall: Option<Duration>,
    /// Guest time (µs) where the backup's guest went on, and where the
    /// primary's last status line had its guest.
    pub takeover_guest_us: u64,
    pub primary_last_guest_us: Option<u64>,
}

impl Failover {
    /// The step the guest's own clock takes across the takeover: from the
    /// primary's last status to where the backup went on (0 when the
    /// backup went on from before it, re-running the rest).
    pub fn guest_gap_us(&self) -> Option<u64> {
        self.primary_last_guest_us
            .map(|p| self.takeover_guest_us.saturating_sub(p))
    }
}

pub fn failover_line(f: &Failover) -> String {
    format!(
        "failover (Ethernet, epoch {DEFAULT_EPOCH}, primary killed): the backup live at epoch {} after {} ms of the backup's clock, {} of wall time after the kill; in guest time it went on at {:.3} s, the primary's last status {}: a gap of {} in the guest's own time",
        f.epoch,
        f.silent_ms,
        opt(f.wall, |w| format!("{:.2} s", w.as_secs_f64())),
        f.takeover_guest_us as f64 / 1e6,
        opt(f.primary_last_guest_us, |p| format!(
            "{:.3} s",
            p as f64 / 1e6
        )),
        opt(f.guest_gap_us(), |g| format!("{:.1} ms", g as f64 / 1e3)),
    )
}

/// `bench pair: pair/hypervisor=R.RR hypervisor/bare=R.RR log=N B/guest-s
/// epoch=E`: the Ethernet pair at the default epoch against the hypervisor
/// alone, which against bare, on the workload. `-` for a figure whose run
/// was not in this invocation.
pub fn last_line(rows: &[Row]) -> String {
    let pair = find(rows, Config::PairEth, Some(DEFAULT_EPOCH));
    let hyp = find(rows, Config::Hyp, None);
    let bare = find(rows, Config::Bare, None);
    let r = |a: Option<&Row>, b: Option<&Row>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", ratio(a.workload, b.workload)),
        _ => "-".into(),
    };
    format!(
        "bench pair: pair/hypervisor={} hypervisor/bare={} log={} B/guest-s epoch={DEFAULT_EPOCH}",
        r(pair, hyp),
        r(hyp, bare),
        opt(pair.and_then(Row::log_per_guest_second), |v| format!(
            "{v:.0}"
        )),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn s(v: f64) -> Duration {
        Duration::from_secs_f64(v)
    }

    /// A tiny run of every config at two epoch lengths.
    pub(crate) fn rows() -> Vec<Row> {
        let mut rows = vec![
            Row {
                peak_kib: Some(220 * 1024),
                workload_cpu: Some(s(1.6)),
                ..Row::timed(Config::Bare, None, s(4.0), s(2.0))
            },
            Row {
                peak_kib: Some(250 * 1024),
                workload_cpu: Some(s(2.0)),
                ..Row::timed(Config::Hyp, None, s(6.0), s(2.1))
            },
        ];
        for (e, slow) in [(100_000, 3.0), (DEFAULT_EPOCH, 1.2)] {
            rows.push(Row::timed(Config::Epochs, Some(e), s(7.0), s(2.1 * slow)));
            rows.push(Row {
                log_bytes: Some(2_000_000),
                guest_seconds: Some(8.0),
                msgs: Some(60_000),
                epochs: Some(2_000),
                ..Row::timed(Config::Record, Some(e), s(30.0), s(2.1 * slow * 1.5))
            });
            for ack in ["output", "epoch"] {
                rows.push(Row {
                    ack: Some(ack.into()),
                    log_bytes: Some(2_400_000),
                    guest_seconds: Some(8.0),
                    msgs: Some(64_000),
                    epochs: Some(2_000),
                    hold_us: Some((6_100, 25_000)),
                    workload_cpu: Some(s(2.2 * slow)),
                    ..Row::timed(Config::PairEth, Some(e), s(31.0), s(2.31 * slow))
                });
            }
        }
        rows
    }

    #[test]
    fn the_last_line_is_the_ethernet_pair_at_the_default_epoch() {
        // 2.31 * 1.2 / 2.1 = 1.32; 2.1 / 2.0 = 1.05; 2.4 MB / 8 s.
        assert_eq!(
            last_line(&rows()),
            "bench pair: pair/hypervisor=1.32 hypervisor/bare=1.05 log=300000 B/guest-s epoch=10000000"
        );
        // Without the pair's run, its figures are `-`.
        let few: Vec<Row> = rows().into_iter().take(2).collect();
        assert_eq!(
            last_line(&few),
            "bench pair: pair/hypervisor=- hypervisor/bare=1.05 log=- B/guest-s epoch=10000000"
        );
    }

    #[test]
    fn a_row_is_the_median_run() {
        let run = |boot, work, peak| Row {
            peak_kib: Some(peak),
            log_bytes: Some(peak * 10),
            workload_cpu: Some(s(boot / 2.0)),
            ..Row::timed(Config::PairEth, Some(DEFAULT_EPOCH), s(boot), s(work))
        };
        // Workload 2.5 is the median; its log stays with it, while the
        // boot (5.0) and the peak (210) are medians of their own.
        let m = median(vec![
            run(4.0, 2.5, 220),
            run(5.0, 3.9, 200),
            run(6.0, 2.1, 210),
        ])
        .unwrap();
        assert_eq!(
            (m.workload, m.boot, m.peak_kib),
            (s(2.5), s(5.0), Some(210))
        );
        assert_eq!(m.log_bytes, Some(2200));
        // The CPU time is a median of its own too (2.5 s, from the 5.0 run).
        assert_eq!(m.workload_cpu, Some(s(2.5)));
        // Of two, the lower; of one, itself; of none, nothing.
        let m = median(vec![run(4.0, 2.5, 220), run(5.0, 2.1, 200)]).unwrap();
        assert_eq!(
            (m.workload, m.boot, m.peak_kib),
            (s(2.1), s(4.0), Some(200))
        );
        assert_eq!(
            median(vec![run(4.0, 2.5, 220)]).unwrap(),
            run(4.0, 2.5, 220)
        );
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn the_table_has_a_row_per_run_with_its_ratios() {
        let t = table(&rows());
        assert_eq!(t.len(), 1 + rows().len());
        assert!(t[0].contains("log B/gst-s") && t[0].contains("ack"));
        let pair = t
            .iter()
            .find(|l| l.starts_with("pair-eth @1000000") && l.contains("output"))
            .unwrap();
        let cells: Vec<&str> = pair.split_whitespace().collect();
        // label (2 words), boot, s, workload, s, /hyp, /bare, boot/bare, ...
        assert_eq!(
            &cells[2..],
            &[
                "31.00", "s", "2.77", "s", "1.32", "1.39", "2.64", "s", "1.32", "7.75", "300000",
                "32.0", "6.1/25.0", "output", "-"
            ]
        );
        // A row without CPU samples says `-` in both CPU columns.
        let rec = t.iter().find(|l| l.starts_with("record @100000")).unwrap();
        let cells: Vec<&str> = rec.split_whitespace().collect();
        assert_eq!(&cells[8..10], &["-", "-"], "{rec}");
        // 2.2 * 1.2 / 2.0 = 1.32; 2.0 / 1.6 = 1.25.
        assert_eq!(
            cpu_line(&rows()).unwrap(),
            "cpu time (QEMU, the workload; a pair's primary): pair/hypervisor=1.32 hypervisor/bare=1.25"
        );
        let bare = t.iter().find(|l| l.starts_with("bare ")).unwrap();
        assert!(bare.ends_with(" 220"), "{bare}");
        assert_eq!(
            memory_line(&rows()).unwrap(),
            "QEMU peak memory: hypervisor 250 MiB, bare 220 MiB, ratio 1.14"
        );
        assert!(
            failover_line(&Failover {
                epoch: 923,
                silent_ms: 2000,
                wall: Some(s(2.25)),
                takeover_guest_us: 1_234_000,
                primary_last_guest_us: Some(1_230_600),
            })
            .ends_with("live at epoch 923 after 2000 ms of the backup's clock, 2.25 s of wall time after the kill; in guest time it went on at 1.234 s, the primary's last status 1.231 s: a gap of 3.4 ms in the guest's own time")
        );
    }
}
