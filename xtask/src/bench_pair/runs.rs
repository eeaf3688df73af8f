//! Running each configuration of `cargo xtask bench pair` once and reading
//! its figures off what it printed: the guest's console lines (their
//! arrival times), the recorder's log, the pair's closing lines.

use super::table::{Config, DEFAULT_EPOCH, Failover, Row};
use crate::bench::{guest_seconds, guest_times};
use crate::board_options::{Ack, BoardOptions};
use crate::image::{self, Image, ImageKind};
use crate::pair::kill::{KillSpec, Who};
use crate::pair::{self, BackupOverrides, LinkKind, PairOptions};
use crate::qemu::{self, Vars};
use crate::runner::{BoardRun, run};
use crate::{guest, paths};
use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The icount settings of every run but the recording's: those of a pair
/// (`qemu-configs/virt-pair-*.args`), so that bare, the hypervisor alone,
/// with epochs and the pairs count guest instructions alike. (The recorder
/// board's config has `sleep=off`: `qemu-configs/virt-link.args`.)
const ICOUNT: [&str; 2] = ["-icount", "shift=0,sleep=on"];
const INIT_STARTED: &str = "tandem-guest: init started";
const RESULT: &str = "tandem-guest: workload result";
const POWER_DOWN: &str = "reboot: Power down";
/// The epoch at which the failover run kills its primary: about half way
/// through the default guest's 2,130 M instructions.
const KILL_EPOCH: u64 = 1_000_000_000 / DEFAULT_EPOCH;

/// What every run shares.
pub struct Context {
    image: Image,
    bundle: PathBuf,
    guest: guest::Guest,
    dir: PathBuf,
}

impl Context {
    pub fn new() -> Result<Self> {
        let (guest, bundle) = guest::bench_bundle()?;
        let image = image::build(ImageKind::VIRT)?;
        let dir = paths::out_dir().join("bench").join("pair");
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            image,
            bundle,
            guest,
            dir,
        })
    }

    pub fn heading(&self, runs: usize) -> String {
        let runs = if runs > 1 {
            format!("the median of {runs} runs each (interleaved rounds)")
        } else {
            "one run each".to_string()
        };
        format!(
            "bench pair: Debian {} + busybox workload ({} awk iterations; the guest with norandmaps); QEMU TCG virt, -cpu max, GICv3, 1 GiB, -icount shift=0 (sleep=on; the recorder's board sleep=off); {runs}, host wall clock",
            self.guest.kernel_package,
            guest::WORKLOAD_ITERATIONS
        )
    }

    /// Runs `config` (at `epoch`, with acking policy `ack` for a pair).
    pub fn run(&self, config: Config, epoch: Option<u64>, ack: Option<&str>) -> Result<Row> {
        let what = match epoch {
            Some(e) => format!("{} at epoch {e}", config.name()),
            None => config.name().to_string(),
        };
        crate::util::step(&format!("bench pair: {what}"));
        let e = epoch.unwrap_or(DEFAULT_EPOCH);
        match config {
            Config::Bare => self.bare(),
            Config::Hyp => self.hosted(config, None),
            Config::Epochs => self.hosted(config, Some(e)),
            Config::Record => self.record(e),
            Config::PairEth => self.pair(LinkKind::Ethernet, e, ack),
            Config::PairSerial => self.pair(LinkKind::Serial, e, ack),
        }
        .with_context(|| format!("bench pair: {what}"))
    }

    fn common(v: &mut Vars) {
        v.insert("GIC".into(), "3".into());
        v.insert("CPU".into(), "max".into());
        v.insert("MEM".into(), "1G".into());
    }

    fn board(&self, config: &'static str, vars: Vars, name: &str) -> BoardRun<'_> {
        BoardRun {
            config,
            vars,
            elf: Some(&self.image.elf),
            timeout: Duration::from_secs(900),
            echo: false,
            interactive: false,
            transcript: self.dir.join(format!("{name}.console.txt")),
            extra_args: ICOUNT.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn bare(&self) -> Result<Row> {
        let mut v = Vars::new();
        Self::common(&mut v);
        v.insert("KERNEL".into(), self.guest.kernel.display().to_string());
        v.insert("INITRD".into(), self.guest.initramfs.display().to_string());
        v.insert("APPEND".into(), guest::BENCH_CMDLINE.into());
        let mut b = self.board("virt-direct", v, "bare");
        b.elf = None;
        let out = run(&b)?;
        let t = guest_times(&out, true)?;
        Ok(Row {
            peak_kib: out.peak_rss_kib,
            workload_cpu: t.workload_cpu,
            ..Row::timed(Config::Bare, None, t.boot_to_poweroff, t.workload)
        })
    }

    /// The hypervisor alone, with epochs (`tandem.epoch`) or without.
    fn hosted(&self, config: Config, epoch: Option<u64>) -> Result<Row> {
        let mut v = Vars::new();
        Self::common(&mut v);
        v.insert("IMAGE".into(), self.image.bin.display().to_string());
        v.insert("BUNDLE".into(), self.bundle.display().to_string());
        let opts = epoch.map_or(String::new(), |e| format!("tandem.epoch={e}"));
        qemu::set_board_cmdline(&mut v, qemu::DEFAULT_SEED, &opts);
        let name = match epoch {
            Some(e) => format!("epochs-{e}"),
            None => "hyp".into(),
        };
        let out = run(&self.board("virt", v, &name))?;
        let t = guest_times(&out, false)?;
        Ok(Row {
            peak_kib: out.peak_rss_kib,
            workload_cpu: t.workload_cpu,
            ..Row::timed(config, epoch, t.boot_to_poweroff, t.workload)
        })
    }

    fn record(&self, epoch: u64) -> Result<Row> {
        let log = self.dir.join(format!("record-{epoch}.log"));
        let o = BoardOptions::suite(&self.image, &self.bundle, epoch, Duration::from_secs(3600));
        let r = crate::linkhost::record(&log, &o)?;
        let t = guest_times(&r.outcome, false)?;
        let s = &r.summary;
        Ok(Row {
            log_bytes: Some(s.bytes),
            guest_seconds: Some(guest_seconds(&log)?),
            msgs: Some(
                s.boundaries + s.entries.values().sum::<u64>() + s.other.values().sum::<u64>(),
            ),
            epochs: Some(s.epochs),
            peak_kib: r.outcome.peak_rss_kib,
            workload_cpu: t.workload_cpu,
            ..Row::timed(Config::Record, Some(epoch), t.boot_to_poweroff, t.workload)
        })
    }

    fn pair_options(
        &self,
        link: LinkKind,
        epoch: u64,
        ack: Option<&str>,
    ) -> Result<PairOptions<'_>> {
        let ack = match ack {
            None => Ack::default(),
            Some(a) => crate::board_options::parse_ack(a).map_err(anyhow::Error::msg)?,
        };
        Ok(PairOptions {
            board: BoardOptions {
                ack,
                ..BoardOptions::suite(&self.image, &self.bundle, epoch, Duration::from_secs(3600))
            },
            link,
            kills: vec![],
            heartbeat_ms: None,
            fail_ms: None,
            board_options: String::new(),
            backup: BackupOverrides::default(),
            dir: self.dir.join(format!("pair-{}-{epoch}", link.option())),
        })
    }

    fn pair(&self, link: LinkKind, epoch: u64, ack: Option<&str>) -> Result<Row> {
        let o = self.pair_options(link, epoch, ack)?;
        let out = pair::run(&o)?;
        if out.finisher() != Some(Who::Primary) {
            bail!(
                "the pair did not run the guest to its end on the primary:\n  {}",
                pair::report::closing(&out).join("\n  ")
            );
        }
        let p = &out.seen[Who::Primary.index()];
        let at = |needle: &str| -> Result<Duration> {
            p.guest_lines
                .iter()
                .find(|(_, l)| l.contains(needle))
                .map(|(t, _)| t.duration_since(out.start))
                .with_context(|| format!("the primary's guest output has no `{needle}` line"))
        };
        let start = at(INIT_STARTED)?;
        let result = at(RESULT)?;
        let workload = result.saturating_sub(start);
        let boot = at(POWER_DOWN).unwrap_or(out.wall);
        let summary = p
            .summary
            .context("the primary printed no `pair: summary` line")?;
        Ok(Row {
            ack: Some(ack.unwrap_or("output").to_string()),
            log_bytes: Some(summary.log_bytes),
            guest_seconds: p.status.map(|(s, _)| s.guest_us as f64 / 1e6),
            msgs: Some(summary.msgs),
            epochs: Some(summary.epochs),
            hold_us: Some((summary.hold_p50_us, summary.hold_p99_us)),
            peak_kib: Some(out.peak_rss_kib[Who::Primary.index()]).filter(|&k| k > 0),
            workload_cpu: out.cpu[Who::Primary.index()].between(start, result),
            ..Row::timed(
                match link {
                    LinkKind::Ethernet => Config::PairEth,
                    LinkKind::Serial => Config::PairSerial,
                },
                Some(epoch),
                boot,
                workload,
            )
        })
    }

    /// One Ethernet pair at the default epoch whose primary is killed at
    /// epoch [`KILL_EPOCH`]: how long until the backup is live.
    pub fn failover(&self) -> Result<Failover> {
        crate::util::step(&format!(
            "bench pair: failover (Ethernet, epoch {DEFAULT_EPOCH}, the primary killed at epoch {KILL_EPOCH})"
        ));
        let mut o = self.pair_options(LinkKind::Ethernet, DEFAULT_EPOCH, None)?;
        o.kills = vec![format!("primary@epoch={KILL_EPOCH}").parse::<KillSpec>()?];
        o.dir = self.dir.join("failover");
        let started = Instant::now();
        let out = pair::run(&o)?;
        let Some((t, _)) = out.seen[Who::Backup.index()].takeover else {
            bail!(
                "no takeover after {:.0} s:\n  {}",
                started.elapsed().as_secs_f64(),
                pair::report::closing(&out).join("\n  ")
            );
        };
        Ok(Failover {
            epoch: t.epoch,
            silent_ms: t.silent_ms,
            wall: out.detection_wall(),
            takeover_guest_us: t.guest_us,
            primary_last_guest_us: out.primary_last_guest_us(),
        })
    }
}
