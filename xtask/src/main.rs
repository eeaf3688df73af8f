//! `cargo xtask`: the project's host-side commands. `cargo xtask --help`.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use xtask::board::{Board, Machine, Use};
use xtask::image;
use xtask::qemu::{self, Vars};
use xtask::runner::{BoardRun, run};
use xtask::util::step;
use xtask::{paths, setup, smoke};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Tandem's host-side tooling")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what this machine lacks: the Rust target, QEMU >= 10, the default guest.
    Setup,
    /// Build the hypervisor image (target/tandem/tandem-<board>.{elf,bin}).
    Build {
        /// Build with the test hooks (deliberate failures on request).
        #[arg(long)]
        test_hooks: bool,
        /// The board to build for.
        #[arg(long, value_enum, default_value_t)]
        board: Board,
    },
    /// Write what goes on each Raspberry Pi 4's SD card boot partition
    /// (primary/, backup/): kernel8.img, config.txt, cmdline.txt, the
    /// guest bundle, the Pi firmware files or where to get them (docs/pi4.md).
    Sdcard(SdcardArgs),
    /// Boot the hypervisor on one QEMU board, console on this terminal.
    Run(RunArgs),
    /// Print performance figures measured side by side (see docs/measurements.md).
    Bench {
        /// The QEMU machine (raspi4b: `bench epochs` only).
        #[arg(long, value_enum, default_value_t)]
        board: Board,
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Host unit tests, then the QEMU smoke scenarios (ci/smoke.toml).
    Test {
        /// Only smoke scenarios whose name contains this.
        #[arg(long)]
        smoke_filter: Option<String>,
        /// Skip the host unit tests and the lints.
        #[arg(long)]
        no_unit: bool,
        /// Also record and replay with short epochs (10,000 and 100,000
        /// instructions): about half an hour more.
        #[arg(long)]
        long: bool,
    },
    /// Run the guest replicated on a live pair of QEMU boards, optionally killing one (docs/pair.md).
    Pair(PairArgs),
    /// Record a guest run: a board in record mode, its log of inputs kept in --log (docs/record-replay.md).
    Record(LinkArgs),
    /// Replay a recorded log on a board in replay mode, which checks every epoch against it.
    Replay(LinkArgs),
}

/// Options of `record` and `replay` (replay with the recording's values).
#[derive(clap::Args)]
struct LinkArgs {
    /// The log file (record writes it, replay reads it); consoles are kept beside it.
    #[arg(long)]
    log: std::path::PathBuf,
    #[command(flatten)]
    board: EpochBoardArgs,
    /// The board's random-number seed (QEMU -seed; RNDR's values follow it).
    #[arg(long, default_value_t = xtask::qemu::DEFAULT_SEED)]
    seed: u64,
    /// Kill QEMU after this many seconds (0: never).
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Do not echo the board's console.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    guest: GuestArgs,
}

/// What a board with epochs is given (`record`, `replay`, `pair`).
#[derive(clap::Args)]
struct EpochBoardArgs {
    /// The QEMU machine (raspi4b: 4 cores, 2 GiB, GIC-400, Cortex-A72, fixed).
    #[arg(long, value_enum, default_value_t)]
    board: Board,
    /// Guest instructions per epoch (`tandem.epoch`).
    #[arg(long, default_value_t = el2_hypervisor::options::DEFAULT_EPOCH)]
    epoch: u64,
    /// Board RAM (QEMU -m syntax; default 1G on virt; raspi4b has 2G, fixed).
    #[arg(long)]
    memory: Option<String>,
    #[command(flatten)]
    machine: MachineArgs,
    /// Force the guest's timer (`tandem.guest-timer`): sysreg (needs
    /// FEAT_ECV) or mmio; by default the core decides.
    #[arg(long, value_parser = xtask::board_options::parse_guest_timer)]
    guest_timer: Option<xtask::board_options::GuestTimer>,
    /// How a timer deadline inside an epoch is met (`tandem.deadline`):
    /// inline or epoch-end.
    #[arg(long, value_parser = xtask::board_options::parse_deadline, default_value = "inline")]
    deadline: xtask::board_options::Deadline,
    /// When a pair's primary waits for acknowledgements (`tandem.ack`):
    /// output or epoch.
    #[arg(long, value_parser = xtask::board_options::parse_ack, default_value = "output")]
    ack: xtask::board_options::Ack,
    /// What counts epochs and lands their exact ends
    /// (`tandem.epoch-counter`): cycles (the exact cycle counter), steps
    /// (overflow early, single-step to the count: the real-core path),
    /// inst-retired (real cores only).
    #[arg(long, value_parser = xtask::board_options::parse_epoch_counter, default_value = "cycles")]
    epoch_counter: xtask::board_options::EpochCounter,
    /// With `--epoch-counter steps`: land each early overflow up to this
    /// many instructions late, differently on each board, as a real
    /// core's skid would (`tandem.step-skid`, at most 128; 0: none).
    #[arg(long, default_value_t = 0)]
    step_skid: u64,
}

impl EpochBoardArgs {
    /// The board's options (record, replay, each board of a pair), with
    /// the command's seed, timeout in seconds (0: never) and echo.
    fn options<'a>(
        self,
        image: &'a image::Image,
        bundle: &'a std::path::Path,
        seed: u64,
        timeout_s: u64,
        echo: bool,
    ) -> xtask::linkhost::BoardOptions<'a> {
        xtask::linkhost::BoardOptions {
            image,
            bundle,
            epoch: self.epoch,
            deadline: self.deadline,
            ack: self.ack,
            board: self.board,
            epoch_counter: self.epoch_counter,
            step_skid: self.step_skid,
            memory: self.memory,
            cpu: self.machine.cpu,
            gic: self.machine.gic,
            guest_timer: self.guest_timer,
            seed,
            timeout: match timeout_s {
                0 => Duration::MAX,
                s => Duration::from_secs(s),
            },
            echo,
        }
    }
}

/// Options of `pair`.
#[derive(clap::Args)]
struct PairArgs {
    /// What joins the two boards.
    #[arg(long, value_enum, default_value_t = xtask::pair::LinkKind::Ethernet)]
    link: xtask::pair::LinkKind,
    /// Kill a board with SIGKILL: primary|backup @ epoch=N | after=SECONDS | random (repeatable).
    #[arg(long)]
    kill: Vec<xtask::pair::kill::KillSpec>,
    #[command(flatten)]
    board: EpochBoardArgs,
    /// The boards' random-number seed, and the seed of `--kill ...@random`.
    #[arg(long, default_value_t = xtask::qemu::DEFAULT_SEED)]
    seed: u64,
    /// Heartbeat interval of the boards, ms of board time (`tandem.heartbeat-ms`).
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// A peer unheard this long is declared dead, ms of board time (`tandem.fail-ms`).
    #[arg(long)]
    fail_ms: Option<u64>,
    /// Give the backup another seed (to see a mismatched pair refused).
    #[arg(long)]
    backup_seed: Option<u64>,
    /// Give the backup another epoch length (to see a mismatched pair refused).
    #[arg(long)]
    backup_epoch: Option<u64>,
    /// Kill both boards after this many seconds (0: never).
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Do not print the merged guest console.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    guest: GuestArgs,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// The workload recorded with several epoch lengths against no epochs, with log sizes.
    Epochs {
        /// Epoch lengths, comma separated.
        #[arg(long, value_delimiter = ',', default_values_t = [100_000u64, 1_000_000, 10_000_000])]
        lengths: Vec<u64>,
    },
    /// The guest side by side: bare, the hypervisor alone, with epochs,
    /// recording, an Ethernet and a serial pair, at several epoch lengths;
    /// a table, QEMU's peak memory, a failover figure, a plot in docs/.
    Pair {
        /// Configurations to run, comma separated.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = xtask::bench_pair::table::Config::ALL)]
        configs: Vec<xtask::bench_pair::table::Config>,
        /// Epoch lengths, comma separated (for the configurations with epochs).
        #[arg(long, value_delimiter = ',', default_values_t = [100_000u64, 1_000_000, 10_000_000])]
        epochs: Vec<u64>,
        /// Acking policies to run each pair with, passed as `tandem.ack=P`
        /// (comma separated, e.g. output,epoch); default: the boards' own
        /// (the output rule), no option passed.
        #[arg(long, value_delimiter = ',')]
        acks: Option<Vec<String>>,
        /// Skip the failover run (a pair whose primary is killed).
        #[arg(long)]
        no_failover: bool,
        /// Where the plot goes.
        #[arg(long, default_value = "docs/bench-pair.svg")]
        plot: std::path::PathBuf,
        /// The workload's configurations at the default epoch only: no
        /// failover run, no plot (for development).
        #[arg(long)]
        quick: bool,
        /// Runs of each configuration, taken in interleaved rounds; each
        /// row is the median run (single runs move by 10-20 % here).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The guest workload under the hypervisor against the same guest booted directly.
    Guest {
        /// Runs of each variant (the median is printed).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// QEMU CPU model (cortex-a72: no FEAT_ECV, so the guest under
        /// tandem counts with the memory-mapped timer).
        #[arg(long, default_value = "max")]
        cpu: String,
    },
}

/// Options of `sdcard`.
#[derive(clap::Args)]
struct SdcardArgs {
    /// Where to write primary/ and backup/.
    #[arg(long)]
    out: std::path::PathBuf,
    /// Guest instructions per epoch (`tandem.epoch`).
    #[arg(long, default_value_t = el2_hypervisor::options::DEFAULT_EPOCH)]
    epoch: u64,
    /// The boards' seed (`tandem.seed`; the same on both, or they refuse to pair).
    #[arg(long, default_value_t = xtask::qemu::DEFAULT_SEED)]
    seed: u64,
    #[command(flatten)]
    guest: GuestArgs,
}

/// The board's core and interrupt controller (`run`, `record`, `replay`, `pair`).
#[derive(clap::Args)]
struct MachineArgs {
    /// QEMU CPU model and properties (max has FEAT_ECV; cortex-a72, the
    /// Raspberry Pi 4's core, has not: its guest gets the memory-mapped
    /// timer). raspi4b: its Cortex-A72s, fixed.
    #[arg(long, default_value = "max")]
    cpu: String,
    /// GIC version of the virt board. raspi4b: its GIC-400 (v2), fixed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    gic: u8,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The QEMU machine (raspi4b: 4 cores, 2 GiB, GIC-400, Cortex-A72, fixed).
    #[arg(long, value_enum, default_value_t)]
    board: Board,
    #[command(flatten)]
    machine: MachineArgs,
    /// Board RAM (QEMU -m syntax; default 1G on virt; raspi4b has 2G, fixed).
    #[arg(long)]
    memory: Option<String>,
    /// Extra words for the board's command line (the hypervisor's `tandem.*` options).
    #[arg(long, default_value = "")]
    board_cmdline: String,
    /// The board's random-number seed (QEMU -seed; RNDR's values follow it).
    #[arg(long, default_value_t = xtask::qemu::DEFAULT_SEED)]
    seed: u64,
    /// Halt at the first instruction with a gdb server on :1234.
    #[arg(long)]
    gdb: bool,
    /// Use the image with test hooks.
    #[arg(long)]
    test_hooks: bool,
    /// Kill QEMU after this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    #[command(flatten)]
    guest: GuestArgs,
}

/// Which guest to run (default: the Debian guest `setup` prepared).
#[derive(clap::Args, Clone)]
struct GuestArgs {
    /// Guest kernel: an arm64 Image, or Debian's gzipped vmlinuz.
    #[arg(long)]
    kernel: Option<std::path::PathBuf>,
    /// Guest initramfs (cpio).
    #[arg(long)]
    initramfs: Option<std::path::PathBuf>,
    /// Guest kernel command line.
    #[arg(long, default_value = xtask::guest::DEFAULT_CMDLINE)]
    cmdline: String,
    /// Boot the hypervisor with no guest.
    #[arg(long, conflicts_with_all = ["kernel", "initramfs"])]
    no_guest: bool,
}

impl GuestArgs {
    /// Builds the guest bundle; `None` with `--no-guest`.
    fn bundle(&self) -> Result<Option<std::path::PathBuf>> {
        if self.no_guest {
            return Ok(None);
        }
        let default = if self.kernel.is_none() || self.initramfs.is_none() {
            Some(xtask::guest::prepare()?)
        } else {
            None
        };
        let kernel = self
            .kernel
            .clone()
            .or_else(|| default.as_ref().map(|g| g.kernel.clone()))
            .expect("set");
        let initramfs = self
            .initramfs
            .clone()
            .or_else(|| default.as_ref().map(|g| g.initramfs.clone()));
        let out = paths::guest_dir().join("bundle.bin");
        std::fs::create_dir_all(paths::guest_dir())?;
        xtask::guest::write_bundle(&kernel, initramfs.as_deref(), &self.cmdline, &out)?;
        Ok(Some(out))
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli.command) {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Setup => setup::setup(),
        Cmd::Build { test_hooks, board } => {
            setup::ensure()?;
            let img = image::build(board.image(test_hooks))?;
            println!("{}\n{}", img.bin.display(), img.elf.display());
            Ok(())
        }
        Cmd::Run(args) => run_board(args),
        Cmd::Sdcard(a) => sdcard(a),
        Cmd::Bench {
            board,
            what: BenchWhat::Epochs { lengths },
        } => {
            setup::ensure()?;
            xtask::bench::epochs_bench(board, &lengths)
        }
        Cmd::Bench {
            board: Board::Raspi4b,
            what: BenchWhat::Guest { .. },
        } => bail!(
            "bench guest --board raspi4b cannot work: its baseline boots the guest bare, and Debian's \
             kernel dies on Debian's bcm2711-rpi-4-b.dtb in QEMU (brcmstb_l2_intc_of_init: QEMU does \
             not model that interrupt controller); a bare baseline needs a trimmed DTB"
        ),
        Cmd::Bench {
            board: Board::Raspi4b,
            what: BenchWhat::Pair { .. },
        } => bail!(
            "bench pair --board raspi4b is not there yet: its runs are virt's (a bare baseline and an \
             Ethernet pair, neither possible on raspi4b); use `bench --board raspi4b epochs` and \
             `pair --board raspi4b --link serial`"
        ),
        Cmd::Bench {
            board: Board::Virt,
            what:
                BenchWhat::Pair {
                    configs,
                    epochs,
                    acks,
                    no_failover,
                    plot,
                    quick,
                    runs,
                },
        } => {
            setup::ensure()?;
            let o = xtask::bench_pair::BenchOptions {
                configs,
                epochs,
                acks,
                runs: runs.max(1),
                failover: !no_failover,
                plot: Some(paths::root().join(plot)),
            };
            xtask::bench_pair::run(&if quick { o.quick() } else { o })
        }
        Cmd::Bench {
            board: Board::Virt,
            what: BenchWhat::Guest { runs, cpu },
        } => {
            setup::ensure()?;
            xtask::bench::guest_bench(runs.max(1), &cpu)
        }
        Cmd::Test {
            smoke_filter,
            no_unit,
            long,
        } => test(smoke_filter.as_deref(), no_unit, long),
        Cmd::Pair(a) => pair(a),
        Cmd::Record(a) => record_or_replay(a, false),
        Cmd::Replay(a) => record_or_replay(a, true),
    }
}

/// `pair`: the work is in `xtask::pair`.
fn pair(a: PairArgs) -> Result<()> {
    setup::ensure()?;
    // Refuse a link the board does not have before building anything.
    a.link.config(a.board.board)?;
    let img = image::build(a.board.board.image(false))?;
    let Some(bundle) = a.guest.bundle()? else {
        bail!("a pair needs a guest (drop --no-guest)");
    };
    let dir = xtask::pair::default_dir();
    step(&format!(
        "starting a pair over {} (epochs of {}); each board's console, and the pid files, in {}",
        a.link.option(),
        a.board.epoch,
        dir.display()
    ));
    let o = xtask::pair::PairOptions {
        board: a.board.options(&img, &bundle, a.seed, a.timeout, !a.quiet),
        link: a.link,
        kills: a.kill,
        heartbeat_ms: a.heartbeat_ms,
        fail_ms: a.fail_ms,
        board_options: String::new(),
        backup: xtask::pair::BackupOverrides {
            seed: a.backup_seed,
            epoch: a.backup_epoch,
            board_options: String::new(),
        },
        dir,
    };
    let out = xtask::pair::run(&o)?;
    println!();
    for line in xtask::pair::report::closing(&out) {
        println!("{line}");
    }
    match out.finisher() {
        Some(_) => Ok(()),
        None => bail!(
            "the guest did not complete (see the consoles in {})",
            o.dir.display()
        ),
    }
}

/// `record` and `replay`: the work is in `xtask::linkhost`.
fn record_or_replay(a: LinkArgs, replay: bool) -> Result<()> {
    setup::ensure()?;
    let img = image::build(a.board.board.image(false))?;
    let Some(bundle) = a.guest.bundle()? else {
        bail!("record and replay need a guest (drop --no-guest)");
    };
    let o = a.board.options(&img, &bundle, a.seed, a.timeout, !a.quiet);
    if replay {
        xtask::linkhost::replay_command(&a.log, &o)
    } else {
        xtask::linkhost::record_command(&a.log, &o)
    }
}

fn run_board(a: RunArgs) -> Result<()> {
    setup::ensure()?;
    let machine = Machine::from_flags(a.board, &a.machine.cpu, a.machine.gic, a.memory.clone());
    let mut v = Vars::new();
    // Refuse what the board cannot do before building anything.
    a.board.machine_vars(&machine, &mut v)?;
    let config = a.board.config(if a.gdb { Use::Gdb } else { Use::Run })?;
    let img = image::build(a.board.image(a.test_hooks))?;
    v.insert("IMAGE".into(), img.bin.display().to_string());
    qemu::set_board_cmdline(&mut v, a.seed, &a.board_cmdline);
    if let Some(bundle) = a.guest.bundle()? {
        v.insert("BUNDLE".into(), bundle.display().to_string());
    }
    let transcript = paths::out_dir().join("run.console.txt");
    let what = match a.board {
        Board::Virt => format!("gic v{}, cpu {}, {}", v["GIC"], v["CPU"], v["MEM"]),
        Board::Raspi4b => "4 x cortex-a72, gic-400, 2G".to_string(),
    };
    step(&format!(
        "booting on QEMU {} ({what}); console kept in {}",
        a.board.name(),
        transcript.display()
    ));
    let out = run(&BoardRun {
        config,
        vars: v,
        elf: Some(&img.elf),
        timeout: if a.timeout == 0 {
            Duration::MAX
        } else {
            Duration::from_secs(a.timeout)
        },
        echo: true,
        interactive: true,
        transcript,
        extra_args: vec![],
    })?;
    match out.exit_code() {
        Some(0) => Ok(()),
        _ => bail!("{}", out.describe()),
    }
}

fn test(filter: Option<&str>, no_unit: bool, long: bool) -> Result<()> {
    setup::ensure()?;
    let (mut passed, mut failed) = (0usize, 0usize);
    if !no_unit {
        step("host unit tests: cargo test --workspace");
        let (p, f, ok) = cargo_test()?;
        passed += p;
        failed += f;
        if !ok && f == 0 {
            bail!("cargo test failed before running its tests (see above)");
        }
        step("lints: rustfmt, clippy on the host and the bare-metal target");
        let (p, f) = xtask::lint::run()?;
        passed += p;
        failed += f;
    }
    let release = image::build(smoke::kinds()[0])?;
    let test_hooks = image::build(smoke::kinds()[1])?;
    let raspi4b = image::build(smoke::kinds()[2])?;
    let suite = smoke::load()?;
    step(&format!(
        "QEMU smoke scenarios ({}; consoles in {})",
        suite.scenario.len(),
        paths::out_dir().join("smoke").display()
    ));
    let (_, bundle) = xtask::guest::default_bundle()?;
    let test_guest = xtask::test_guest::build()?;
    let test_guest_bundle = paths::guest_dir().join("test-guest-bundle.bin");
    xtask::guest::write_bundle(&test_guest, None, "", &test_guest_bundle)?;
    let inputs = smoke::Inputs {
        release,
        test_hooks,
        raspi4b: Some(raspi4b),
        bundle: Some(bundle),
        test_guest_bundle: Some(test_guest_bundle),
        test_guest_kernel: Some(test_guest.clone()),
    };
    let (mut p, mut f) = smoke::run_suite(&suite, &inputs, filter)?;
    let (rp, rf) = xtask::replay_suite::run(
        &inputs.release,
        inputs.raspi4b.as_ref().expect("built above"),
        inputs.bundle.as_deref().expect("built above"),
        inputs.test_guest_bundle.as_deref().expect("built above"),
        filter,
        long,
    )?;
    p += rp;
    f += rf;
    let (pp, pf) = xtask::pair_suite::run(
        &inputs.release,
        &inputs.test_hooks,
        inputs.bundle.as_deref().expect("built above"),
        inputs.test_guest_bundle.as_deref().expect("built above"),
        filter,
        long,
    )?;
    p += pp;
    f += pf;
    println!("smoke: {p} passed, {f} failed");
    passed += p;
    failed += f;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} test(s) failed");
    }
    Ok(())
}

/// Runs `cargo test --workspace`, echoing it, and sums its result lines.
fn cargo_test() -> Result<(usize, usize, bool)> {
    let mut child = Command::new(env!("CARGO"))
        .current_dir(paths::root())
        .args(["test", "--workspace", "--color", "never"])
        .stdout(Stdio::piped())
        .spawn()?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let part = part
                    .trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ");
                if let Some(n) = part.strip_suffix(" passed") {
                    passed += n.trim().parse::<usize>().unwrap_or(0);
                } else if let Some(n) = part.strip_suffix(" failed") {
                    failed += n.trim().parse::<usize>().unwrap_or(0);
                }
            }
        }
    }
    let ok = child.wait()?.success();
    Ok((passed, failed, ok))
}

/// `sdcard`: the work is in `xtask::sdcard`.
fn sdcard(a: SdcardArgs) -> Result<()> {
    setup::ensure()?;
    let img = image::build(Board::Raspi4b.image(false))?;
    let Some(bundle) = a.guest.bundle()? else {
        bail!("an SD card needs a guest (drop --no-guest)");
    };
    let o = xtask::sdcard::Options {
        image: img.bin.clone(),
        bundle,
        epoch: a.epoch,
        seed: a.seed,
        firmware: xtask::sdcard::find_firmware(),
    };
    let written = xtask::sdcard::write(&a.out, &o)?;
    for line in written.summary() {
        println!("{line}");
    }
    Ok(())
}
