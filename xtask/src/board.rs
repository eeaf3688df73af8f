//! `--board virt|raspi4b`: which QEMU machine a command boots, and the
//! one place that says what each board means for QEMU: its configs
//! (`qemu-configs/<config>.args`: machine, cores, RAM, serial order), its
//! hypervisor image, its device tree, and which combinations cannot work.
//!
//! | | virt | raspi4b |
//! | --- | --- | --- |
//! | QEMU machine | `virt,virtualization=on`, `-smp 1` | `raspi4b`, `-smp 4` (QEMU refuses fewer) |
//! | RAM | `--memory` (default 1G) | 2G, fixed by the machine (the DTB gives the guest the low 960 MiB) |
//! | CPU | `--cpu` (default max) | Cortex-A72, fixed |
//! | GIC | `--gic 2\|3` | GIC-400 (v2), fixed |
//! | device tree | QEMU's own | Debian's `bcm2711-rpi-4-b.dtb` (`-dtb`, fetched by `setup`) |
//! | `-serial` #0, the console | PL011 0x0900_0000 | PL011 UART0 0xfe20_1000 |
//! | `-serial` #1, the serial link | PL011 0x0904_0000 | the mini-UART 0xfe21_5040 (QEMU models no UART2-5) |
//! | Ethernet link | virtio-net | none (no virtio, no GENET model) |

use crate::image::ImageKind;
use crate::paths;
use crate::qemu::Vars;
use anyhow::{Result, bail};
use std::path::PathBuf;

/// A QEMU machine the hypervisor runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Board {
    /// QEMU `-M virt,virtualization=on`.
    #[default]
    Virt,
    /// QEMU `-M raspi4b`: the Raspberry Pi 4 Model B.
    Raspi4b,
}

/// What a board run is for: which of the board's configs it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// One board, console on the terminal (`run`, the smoke tests).
    Run,
    /// Halted with a gdb server (`run --gdb`).
    Gdb,
    /// Record or replay: the link UART to a host socket.
    Link,
    /// A pair's board over serial.
    PairSerial,
    /// A pair's board over Ethernet.
    PairEthernet,
}

/// The machine's knobs as the command line gave them (`None`: not given).
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub gic: Option<u8>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

impl Machine {
    /// The knobs from the command line's `--cpu`, `--gic` (which have
    /// virt's defaults, `max` and 3: on raspi4b those mean "not given")
    /// and `--memory`.
    pub fn from_flags(board: Board, cpu: &str, gic: u8, memory: Option<String>) -> Machine {
        let fixed = board == Board::Raspi4b;
        Machine {
            gic: (!(fixed && gic == 3)).then_some(gic),
            cpu: (!(fixed && cpu == "max")).then(|| cpu.to_string()),
            memory,
        }
    }
}

/// The name of Debian's Raspberry Pi 4 device tree, kept beside the guest.
pub const PI4_DTB: &str = "bcm2711-rpi-4-b.dtb";

impl Board {
    /// The board's name on the command line and for QEMU `-M`.
    pub fn name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Raspi4b => "raspi4b",
        }
    }

    /// The hypervisor's description of this board.
    pub fn support(self) -> board_support::Board {
        match self {
            Board::Virt => board_support::boards::QEMU_VIRT,
            Board::Raspi4b => board_support::boards::RASPBERRY_PI_4,
        }
    }

    /// The hypervisor image built for this board.
    pub fn image(self, test_hooks: bool) -> ImageKind {
        ImageKind {
            board: self.support().name,
            test_hooks,
        }
    }

    /// The QEMU config (`qemu-configs/<name>.args`) for `what`.
    ///
    /// # Errors
    /// A combination the board cannot do, saying why.
    pub fn config(self, what: Use) -> Result<&'static str> {
        Ok(match (self, what) {
            (Board::Virt, Use::Run) => "virt",
            (Board::Virt, Use::Gdb) => "virt-gdb",
            (Board::Virt, Use::Link) => "virt-link",
            (Board::Virt, Use::PairSerial) => "virt-pair-serial",
            (Board::Virt, Use::PairEthernet) => "virt-pair-ethernet",
            (Board::Raspi4b, Use::Run) => "raspi4b",
            (Board::Raspi4b, Use::Gdb) => "raspi4b-gdb",
            (Board::Raspi4b, Use::Link) => "raspi4b-link",
            (Board::Raspi4b, Use::PairSerial) => "raspi4b-pair-serial",
            (Board::Raspi4b, Use::PairEthernet) => bail!(
                "--board raspi4b --link ethernet cannot work: QEMU's raspi4b has no virtio \
                 and does not model the Pi 4's GENET Ethernet, so there is no NIC for the \
                 link; use --link serial (the mini-UART)"
            ),
        })
    }

    /// The board's RAM when `--memory` does not say (raspi4b: always).
    pub fn default_memory(self) -> &'static str {
        match self {
            Board::Virt => "1G",
            Board::Raspi4b => "2G",
        }
    }

    /// The guest's counter frequency on the board's default CPU (CNTFRQ:
    /// QEMU's `-cpu max` 1 GHz; the Cortex-A72 62.5 MHz), for turning a
    /// log's ticks into seconds.
    pub fn counter_hz(self) -> f64 {
        match self {
            Board::Virt => 1e9,
            Board::Raspi4b => 62.5e6,
        }
    }

    /// Sets the machine's variables of the board's configs: `GIC`, `CPU`
    /// and `MEM` on virt; `DTB` on raspi4b, whose machine is fixed.
    ///
    /// # Errors
    /// A knob the board does not have, or the Pi 4 device tree missing.
    pub fn machine_vars(self, m: &Machine, v: &mut Vars) -> Result<()> {
        match self {
            Board::Virt => {
                v.insert("GIC".into(), m.gic.unwrap_or(3).to_string());
                v.insert("CPU".into(), m.cpu.clone().unwrap_or_else(|| "max".into()));
                v.insert(
                    "MEM".into(),
                    m.memory
                        .clone()
                        .unwrap_or_else(|| self.default_memory().into()),
                );
            }
            Board::Raspi4b => {
                check_fixed(m)?;
                v.insert("MEM".into(), self.default_memory().into());
                v.insert("DTB".into(), pi4_dtb()?.display().to_string());
            }
        }
        Ok(())
    }
}

/// Refuses the knobs that `-M raspi4b` fixes.
fn check_fixed(m: &Machine) -> Result<()> {
    if let Some(g) = m.gic.filter(|&g| g != 2) {
        bail!("--board raspi4b has a GIC-400 (GICv2): --gic {g} cannot be used");
    }
    if let Some(c) = m.cpu.as_deref().filter(|&c| c != "cortex-a72") {
        bail!(
            "--board raspi4b's cores are Cortex-A72s, fixed by the machine: --cpu {c} cannot be used"
        );
    }
    if let Some(mem) = m.memory.as_deref().filter(|&s| !is_two_gib(s)) {
        bail!(
            "--board raspi4b has 2 GiB of RAM, fixed by the machine: --memory {mem} cannot be used"
        );
    }
    Ok(())
}

fn is_two_gib(s: &str) -> bool {
    matches!(s, "2G" | "2g" | "2048M" | "2048m" | "2GiB")
}

/// Debian's `bcm2711-rpi-4-b.dtb`, which `setup` copies beside the guest.
///
/// # Errors
/// When it is not there.
pub fn pi4_dtb() -> Result<PathBuf> {
    let p = paths::guest_dir().join(PI4_DTB);
    if !p.exists() {
        bail!(
            "{} is missing: `cargo xtask setup` copies it from Debian's kernel package",
            p.display()
        );
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raspi4b_refuses_ethernet_with_the_reason() {
        let e = Board::Raspi4b.config(Use::PairEthernet).unwrap_err();
        assert!(e.to_string().contains("no virtio"), "{e}");
        assert_eq!(
            Board::Raspi4b.config(Use::PairSerial).unwrap(),
            "raspi4b-pair-serial"
        );
        assert_eq!(
            Board::Virt.config(Use::PairEthernet).unwrap(),
            "virt-pair-ethernet"
        );
    }

    #[test]
    fn raspi4b_refuses_what_its_machine_fixes() {
        let refused = |m: Machine| check_fixed(&m).unwrap_err().to_string();
        assert!(
            refused(Machine {
                gic: Some(3),
                ..Machine::default()
            })
            .contains("GIC-400")
        );
        assert!(
            refused(Machine {
                cpu: Some("max".into()),
                ..Machine::default()
            })
            .contains("Cortex-A72")
        );
        assert!(
            refused(Machine {
                memory: Some("1G".into()),
                ..Machine::default()
            })
            .contains("2 GiB")
        );
        assert!(
            check_fixed(&Machine {
                gic: Some(2),
                cpu: Some("cortex-a72".into()),
                memory: Some("2G".into())
            })
            .is_ok()
        );
    }

    #[test]
    fn virt_defaults_mean_not_given_on_raspi4b() {
        let m = Machine::from_flags(Board::Raspi4b, "max", 3, None);
        assert!(m.gic.is_none() && m.cpu.is_none());
        assert!(check_fixed(&m).is_ok());
        let m = Machine::from_flags(Board::Virt, "max", 3, None);
        assert_eq!((m.gic, m.cpu.as_deref()), (Some(3), Some("max")));
    }

    #[test]
    fn virt_defaults() {
        let mut v = Vars::new();
        Board::Virt
            .machine_vars(&Machine::default(), &mut v)
            .unwrap();
        assert_eq!(v["GIC"], "3");
        assert_eq!(v["CPU"], "max");
        assert_eq!(v["MEM"], "1G");
    }

    #[test]
    fn every_config_exists_and_the_image_is_the_boards() {
        for b in [Board::Virt, Board::Raspi4b] {
            for u in [
                Use::Run,
                Use::Gdb,
                Use::Link,
                Use::PairSerial,
                Use::PairEthernet,
            ] {
                if let Ok(c) = b.config(u) {
                    let p = paths::root().join("qemu-configs").join(format!("{c}.args"));
                    assert!(p.exists(), "{}", p.display());
                }
            }
            assert_eq!(b.support().qemu_machine, b.name());
        }
        assert_eq!(Board::Raspi4b.image(false).board, "rpi4");
    }
}
