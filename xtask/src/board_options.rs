//! What every QEMU board run of a replica needs, the same for a record or
//! replay board (`linkhost`) and for each board of a pair (`pair`): the
//! image and guest, the epoch length, the machine, the seed, the timeout.

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
    /// Board RAM, QEMU `-m` syntax.
    pub memory: String,
    /// QEMU `-cpu` (model and properties).
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
            memory: "1G".into(),
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
    /// `tandem.epoch-counter` and a forced `tandem.guest-timer`.
    pub fn replica_options(&self, mode: &str, epoch: u64) -> String {
        let mut o = format!(
            "tandem.mode={mode} tandem.epoch={epoch} tandem.deadline={} tandem.ack={} tandem.epoch-counter={}",
            self.deadline.option(),
            self.ack.option(),
            self.epoch_counter.option()
        );
        if let Some(t) = self.guest_timer {
            o.push_str(" tandem.guest-timer=");
            o.push_str(t.option());
        }
        o
    }

    /// The QEMU variables of the machine, its guest, and its link's
    /// socket (`LINK_SOCK`), for a configuration with a link.
    pub fn link_vars(&self, sock: &Path) -> Vars {
        let mut v = Vars::new();
        v.insert("IMAGE".into(), self.image.bin.display().to_string());
        v.insert("GIC".into(), self.gic.to_string());
        v.insert("CPU".into(), self.cpu.clone());
        v.insert("MEM".into(), self.memory.clone());
        v.insert("BUNDLE".into(), self.bundle.display().to_string());
        v.insert("LINK_SOCK".into(), sock.display().to_string());
        v
    }
}
