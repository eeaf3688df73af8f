//! What every QEMU board run of a replica needs, the same for a record or
//! replay board (`linkhost`) and for each board of a pair (`pair`): the
//! image and guest, the epoch length, the machine, the seed, the timeout.

use crate::board::{Board, Machine};
use crate::image::Image;
use crate::qemu::{self, Vars};
use std::path::Path;
use std::time::Duration;

pub use el2_hypervisor::options::{
    AckPolicy as Ack, Deadlines as Deadline, EpochCounterKind as EpochCounter, GuestTimer,
};

/// `--deadline` on the command line: a `tandem.deadline` value.
pub fn parse_deadline(s: &str) -> Result<Deadline, String> {
    Deadline::from_option(s).ok_or_else(|| names(s, Deadline::ALL.map(Deadline::option)))
}

/// `--ack` on the command line: a `tandem.ack` value.
pub fn parse_ack(s: &str) -> Result<Ack, String> {
    Ack::from_option(s).ok_or_else(|| names(s, Ack::ALL.map(Ack::option)))
}

/// `--epoch-counter` on the command line: a `tandem.epoch-counter` value.
pub fn parse_epoch_counter(s: &str) -> Result<EpochCounter, String> {
    EpochCounter::from_option(s)
        .ok_or_else(|| names(s, EpochCounter::ALL.map(EpochCounter::option)))
}

/// `--guest-timer` on the command line: a `tandem.guest-timer` value.
pub fn parse_guest_timer(s: &str) -> Result<GuestTimer, String> {
    GuestTimer::from_option(s).ok_or_else(|| names(s, GuestTimer::ALL.map(GuestTimer::option)))
}

fn names<const N: usize>(s: &str, all: [&str; N]) -> String {
    format!("`{s}` is not one of {}", all.join(", "))
}

/// The `tandem.*` words of a replica in `mode`: `tandem.mode`,
/// `tandem.epoch`, `tandem.deadline`, `tandem.ack` and
/// `tandem.epoch-counter`. The one writer of these words, for QEMU's
/// `-append` and a Pi's `cmdline.txt` alike.
pub fn replica_words(
    mode: &str,
    epoch: u64,
    deadline: Deadline,
    ack: Ack,
    counter: EpochCounter,
) -> String {
    format!(
        "tandem.mode={mode} tandem.epoch={epoch} tandem.deadline={} tandem.ack={} tandem.epoch-counter={}",
        deadline.option(),
        ack.option(),
        counter.option()
    )
}

/// A pair's board: its replica's words and the link (`tandem.link`).
pub fn pair_words(replica: &str, link: &str) -> String {
    format!("{replica} tandem.link={link}")
}

/// A board's whole command line: `tandem.seed` first (so that it enters
/// the pairing digest), then `options`.
pub fn board_cmdline(seed: u64, options: &str) -> String {
    format!("tandem.seed={seed} {options}").trim().to_string()
}

/// One board's run: what record, replay and a pair share.
#[derive(Clone)]
pub struct BoardOptions<'a> {
    /// The hypervisor image (`image::build(ImageKind::VIRT)`).
    pub image: &'a Image,
    /// The guest bundle.
    pub bundle: &'a Path,
    /// Guest instructions per epoch (`tandem.epoch`).
    pub epoch: u64,
    /// How timer deadlines inside an epoch are met (`tandem.deadline`).
    pub deadline: Deadline,
    /// When a pair's primary waits for its backup (`tandem.ack`).
    pub ack: Ack,
    /// What counts epochs and lands their ends (`tandem.epoch-counter`).
    pub epoch_counter: EpochCounter,
    /// A simulated skid of the forced step path's overflow, in
    /// instructions (`tandem.step-skid`; 0: none).
    pub step_skid: u64,
    /// The QEMU machine (`--board`).
    pub board: Board,
    /// Board RAM, QEMU `-m` syntax (`None`: the board's default).
    pub memory: Option<String>,
    /// QEMU `-cpu` (model and properties; on raspi4b only its default,
    /// `max`, which there means the board's Cortex-A72, or `cortex-a72`).
    pub cpu: String,
    /// The virt board's GIC version (QEMU `gic-version`, 2 or 3).
    pub gic: u8,
    /// The guest's timer, if forced (`tandem.guest-timer`; by default
    /// the core decides: the memory-mapped one without FEAT_ECV).
    pub guest_timer: Option<GuestTimer>,
    /// QEMU `-seed` and `tandem.seed`.
    pub seed: u64,
    /// Kill QEMU after this long.
    pub timeout: Duration,
    /// Echo the board's console to stdout.
    pub echo: bool,
}

impl<'a> BoardOptions<'a> {
    /// The test suites' board: 1 GiB, `-cpu max`, GICv3, the default
    /// seed, quiet.
    pub fn suite(image: &'a Image, bundle: &'a Path, epoch: u64, timeout: Duration) -> Self {
        Self {
            image,
            bundle,
            epoch,
            deadline: Deadline::default(),
            ack: Ack::default(),
            epoch_counter: EpochCounter::default(),
            step_skid: 0,
            board: Board::Virt,
            memory: None,
            cpu: "max".into(),
            gic: 3,
            guest_timer: None,
            seed: qemu::DEFAULT_SEED,
            timeout,
            echo: false,
        }
    }

    /// The board options of a replica in `mode` with `epoch`-instruction
    /// epochs (a pair's backup may be given another): `tandem.mode`,
    /// `tandem.epoch`, `tandem.deadline`, `tandem.ack`,
    /// `tandem.epoch-counter`, a `tandem.step-skid` and a forced
    /// `tandem.guest-timer`.
    pub fn replica_options(&self, mode: &str, epoch: u64) -> String {
        let mut o = replica_words(mode, epoch, self.deadline, self.ack, self.epoch_counter);
        if self.step_skid > 0 {
            o.push_str(&format!(" tandem.step-skid={}", self.step_skid));
        }
        if let Some(t) = self.guest_timer {
            o.push_str(" tandem.guest-timer=");
            o.push_str(t.option());
        }
        o
    }

    /// The machine's knobs as `board::Machine` takes them.
    pub fn machine(&self) -> Machine {
        Machine::from_flags(self.board, &self.cpu, self.gic, self.memory.clone())
    }

    /// The QEMU variables of the machine, its guest, and its link's
    /// socket (`LINK_SOCK`), for a configuration with a link.
    ///
    /// # Errors
    /// A knob the board does not have (`board::Board::machine_vars`).
    pub fn link_vars(&self, sock: &Path) -> anyhow::Result<Vars> {
        let mut v = Vars::new();
        v.insert("IMAGE".into(), self.image.bin.display().to_string());
        self.board.machine_vars(&self.machine(), &mut v)?;
        v.insert("BUNDLE".into(), self.bundle.display().to_string());
        v.insert("LINK_SOCK".into(), sock.display().to_string());
        Ok(v)
    }
}
