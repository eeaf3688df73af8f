//! `cargo xtask sdcard --out DIR`: what goes on each Raspberry Pi 4's SD
//! card boot partition (a FAT partition the Pi's firmware reads), one
//! directory per board: `primary/` and `backup/` (docs/pi4.md).
//!
//! Each holds the hypervisor as `kernel8.img`, `config.txt` (the
//! firmware's settings), `cmdline.txt` (the hypervisor's `tandem.*`
//! options, written by `board_options`, with the board's role), the guest
//! bundle, and the firmware files: `bcm2711-rpi-4-b.dtb` from Debian's
//! kernel package, `start4.elf` and `fixup4.dat` from Debian's
//! `raspi-firmware` package if it is installed (non-free-firmware; else a
//! README says where to get them). [`parse_config_txt`] and
//! [`parse_cmdline_txt`] read both formats back, for the tests.
//!
//! The UARTs on real hardware (why, in docs/pi4.md):
//! - console: PL011 UART0 on GPIO14/15 (header pins 8/10),
//!   `dtoverlay=disable-bt` taking it from Bluetooth, `enable_uart=1`
//!   (115200 8N1). Its 48 MHz clock does not follow the core clock.
//! - link: PL011 UART3 on GPIO4/5 (header pins 7/29), `dtoverlay=uart3`
//!   so that the firmware's device tree enables it (the hypervisor takes
//!   the first enabled PL011 that is not the console as the link) and
//!   `gpio=4-5=a4` so that the pins carry it from boot (no Linux runs
//!   the board's pinmux). Not the mini-UART: it can reach the header only
//!   on GPIO14/15, the console's pins, and its baud rate follows the VPU
//!   core clock. Under QEMU, which models no UART3, the link is the
//!   mini-UART.

use crate::board::PI4_DTB;
use crate::board_options::{self, Ack, Deadline, EpochCounter};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// What `sdcard` writes.
pub struct Options {
    /// The raspi4b hypervisor image (`tandem-rpi4.bin`).
    pub image: PathBuf,
    /// The guest bundle.
    pub bundle: PathBuf,
    pub epoch: u64,
    pub seed: u64,
    pub firmware: Firmware,
}

/// The Pi firmware files found on this machine.
#[derive(Clone, Debug, Default)]
pub struct Firmware {
    /// `bcm2711-rpi-4-b.dtb` (Debian's kernel package, via `setup`).
    pub dtb: Option<PathBuf>,
    /// `start4.elf` and `fixup4.dat` (Debian's `raspi-firmware`).
    pub start4: Option<PathBuf>,
    pub fixup4: Option<PathBuf>,
}

/// Where Debian's `raspi-firmware` package installs the firmware.
pub const RASPI_FIRMWARE_DIR: &str = "/usr/lib/raspi-firmware";

/// The firmware files on this machine.
pub fn find_firmware() -> Firmware {
    let fw = Path::new(RASPI_FIRMWARE_DIR);
    let exists = |p: PathBuf| p.exists().then_some(p);
    Firmware {
        dtb: crate::board::pi4_dtb().ok(),
        start4: exists(fw.join("start4.elf")),
        fixup4: exists(fw.join("fixup4.dat")),
    }
}

/// The two boards.
pub const ROLES: [&str; 2] = ["primary", "backup"];

/// The files the hypervisor and its guest need on a card.
pub const KERNEL: &str = "kernel8.img";
pub const BUNDLE: &str = "tandem-guest.bin";
/// Where the firmware puts the bundle: 128 MiB, inside the RAM the guest
/// gets (the hypervisor keeps the first 32 MiB), where QEMU puts an initrd;
/// 2 MiB-aligned, so that the kernel, 2 MiB into the bundle, runs in place
/// (docs/design.md). Not `followkernel`: that places it right after kernel8.img's bytes,
/// inside the hypervisor's BSS, heap and stack (its image_size is larger
/// than the file), which the hypervisor zeroes and uses first.
pub const BUNDLE_ADDRESS: u64 = 0x0800_0000;

/// `config.txt` for a board (both boards get the same; the role is in
/// `cmdline.txt`).
pub fn config_txt(role: &str) -> String {
    let image_base = board_support::boards::RASPBERRY_PI_4.image_base;
    format!(
        "# Tandem: the {role} board of a Raspberry Pi 4 pair (docs/pi4.md).\n\
         # The firmware starts kernel8.img at EL2 on core 0 with the device tree\n\
         # in x0; cores 1-3 wait in the spin table until the hypervisor parks them.\n\
         arm_64bit=1\n\
         kernel={KERNEL}\n\
         # Linked there (board-support RASPBERRY_PI_4.image_base).\n\
         kernel_address={image_base:#x}\n\
         initramfs {BUNDLE} {BUNDLE_ADDRESS:#x}\n\
         device_tree={PI4_DTB}\n\
         # Console: PL011 UART0 on GPIO14/15 (pins 8/10), taken from Bluetooth.\n\
         enable_uart=1\n\
         dtoverlay=disable-bt\n\
         # Link: PL011 UART3 on GPIO4/5 (pins 7/29), enabled and muxed from boot.\n\
         dtoverlay=uart3\n\
         gpio=4-5=a4\n\
         # No splash, no HDMI probing delay on a headless board.\n\
         disable_splash=1\n"
    )
}

/// `cmdline.txt` for a board: its `tandem.*` options, one line. A real
/// core's epochs are counted by INST_RETIRED (the cycle counter counts
/// cycles there, not instructions: `tandem.epoch-counter`).
pub fn cmdline_txt(role: &str, o: &Options) -> String {
    let replica = board_options::replica_words(
        role,
        o.epoch,
        Deadline::default(),
        Ack::default(),
        EpochCounter::InstRetired,
    );
    let words = board_options::pair_words(&replica, "serial");
    format!("{}\n", board_options::board_cmdline(o.seed, &words))
}

/// The README for a card whose firmware files were not found.
fn firmware_readme(missing: &[&str]) -> String {
    format!(
        "Missing from this boot partition: {}.\n\n\
         They are the Raspberry Pi's own boot firmware, which this machine does\n\
         not have. Get them from Debian's `raspi-firmware` package (component\n\
         non-free-firmware; it installs them in {RASPI_FIRMWARE_DIR}/), or from the\n\
         `boot/` folder of the Raspberry Pi Foundation's `firmware` repository,\n\
         and copy them here. bcm2711-rpi-4-b.dtb comes from Debian's arm64 kernel\n\
         package (`cargo xtask setup` copies it beside the guest); the overlays\n\
         config.txt names (overlays/disable-bt.dtbo, overlays/uart3.dtbo) come\n\
         with the firmware. See docs/pi4.md.\n",
        missing.join(", ")
    )
}

/// What was written.
pub struct Written {
    pub dirs: Vec<PathBuf>,
    pub missing_firmware: Vec<&'static str>,
}

impl Written {
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .dirs
            .iter()
            .map(|d| format!("sdcard: wrote {}", d.display()))
            .collect();
        if !self.missing_firmware.is_empty() {
            out.push(format!(
                "sdcard: not on this machine: {} (each card's README-firmware.txt says where to get them)",
                self.missing_firmware.join(", ")
            ));
        }
        out
    }
}

/// Writes `out/primary` and `out/backup`.
///
/// # Errors
/// A file cannot be read or written.
pub fn write(out: &Path, o: &Options) -> Result<Written> {
    let mut dirs = Vec::new();
    let found = [
        (PI4_DTB, o.firmware.dtb.as_ref()),
        ("start4.elf", o.firmware.start4.as_ref()),
        ("fixup4.dat", o.firmware.fixup4.as_ref()),
    ];
    let missing: Vec<&'static str> = found
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
    for role in ROLES {
        let dir = out.join(role);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let copy = |from: &Path, name: &str| {
            std::fs::copy(from, dir.join(name))
                .with_context(|| format!("copying {} to {}", from.display(), dir.display()))
        };
        copy(&o.image, KERNEL)?;
        copy(&o.bundle, BUNDLE)?;
        for (name, path) in found {
            if let Some(p) = path {
                copy(p, name)?;
            }
        }
        std::fs::write(dir.join("config.txt"), config_txt(role))?;
        std::fs::write(dir.join("cmdline.txt"), cmdline_txt(role, o))?;
        let readme = dir.join("README-firmware.txt");
        if missing.is_empty() {
            let _ = std::fs::remove_file(readme);
        } else {
            std::fs::write(readme, firmware_readme(&missing))?;
        }
        dirs.push(dir);
    }
    Ok(Written {
        dirs,
        missing_firmware: missing,
    })
}

/// One `config.txt` line that means something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigLine {
    /// `name=value`.
    Set { name: String, value: String },
    /// `initramfs FILE ADDRESS|followkernel`.
    Initramfs { file: String, at: String },
    /// A `[filter]` section header (`[pi4]`, `[all]`).
    Section(String),
}

/// Parses `config.txt` as the Pi's firmware reads it: one setting a line,
/// `#` comments, `name=value` (no spaces around `=`), and the one command
/// with a space-separated syntax, `initramfs`.
///
/// # Errors
/// A line that is none of those, with its number.
pub fn parse_config_txt(text: &str) -> Result<Vec<ConfigLine>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("initramfs ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let [file, at] = parts.as_slice() else {
                bail!(
                    "config.txt line {}: `initramfs FILE ADDRESS|followkernel`",
                    n + 1
                );
            };
            let at_ok = *at == "followkernel" || parse_number(at).is_some();
            if !at_ok {
                bail!("config.txt line {}: bad initramfs address `{at}`", n + 1);
            }
            out.push(ConfigLine::Initramfs {
                file: file.to_string(),
                at: at.to_string(),
            });
        } else if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(ConfigLine::Section(section.to_string()));
        } else if let Some((name, value)) = line.split_once('=') {
            let valid = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
            if !valid(name) || value.is_empty() || value != value.trim() {
                bail!("config.txt line {}: `{line}` is not `name=value`", n + 1);
            }
            out.push(ConfigLine::Set {
                name: name.to_string(),
                value: value.to_string(),
            });
        } else {
            bail!("config.txt line {}: `{line}` is not a setting", n + 1);
        }
    }
    Ok(out)
}

/// A number as config.txt writes them: decimal or `0x` hex.
fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The values of `name` in parsed config lines, in order.
pub fn settings<'a>(lines: &'a [ConfigLine], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| match l {
            ConfigLine::Set { name: n, value } if n == name => Some(value.as_str()),
            _ => None,
        })
        .collect()
}

/// Parses `cmdline.txt` as the firmware reads it: the first line is the
/// whole command line (the firmware ignores the rest), words separated by
/// single spaces; returns each word as (name, value if `name=value`).
///
/// # Errors
/// An empty command line, more than one line, or an empty word.
pub fn parse_cmdline_txt(text: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut lines = text.lines();
    let Some(first) = lines.next().filter(|l| !l.trim().is_empty()) else {
        bail!("cmdline.txt is empty");
    };
    if lines.any(|l| !l.trim().is_empty()) {
        bail!("cmdline.txt has more than one line (the firmware reads only the first)");
    }
    first
        .split(' ')
        .map(|w| {
            if w.is_empty() {
                bail!("cmdline.txt: an empty word (two spaces, or one at an end)");
            }
            Ok(match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w.to_string(), None),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tandem-sdcard-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn options(dir: &Path) -> Options {
        let put = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        Options {
            image: put("hv.bin", b"hypervisor"),
            bundle: put("bundle.bin", b"guest"),
            epoch: 1_000_000,
            seed: 7,
            firmware: Firmware {
                dtb: Some(put("dtb", b"\xd0\x0d\xfe\xed")),
                start4: None,
                fixup4: Some(put("fixup", b"fixup")),
            },
        }
    }

    #[test]
    fn each_board_gets_its_files_and_both_parse() {
        let tmp = scratch("files");
        let o = options(&tmp);
        let out = tmp.join("card");
        let w = write(&out, &o).unwrap();
        assert_eq!(w.missing_firmware, ["start4.elf"]);
        for role in ROLES {
            let dir = out.join(role);
            for f in [
                KERNEL,
                BUNDLE,
                PI4_DTB,
                "fixup4.dat",
                "config.txt",
                "cmdline.txt",
            ] {
                assert!(dir.join(f).exists(), "{role}/{f}");
            }
            assert_eq!(std::fs::read(dir.join(KERNEL)).unwrap(), b"hypervisor");
            let readme = std::fs::read_to_string(dir.join("README-firmware.txt")).unwrap();
            assert!(readme.contains("start4.elf") && readme.contains("raspi-firmware"));

            let config =
                parse_config_txt(&std::fs::read_to_string(dir.join("config.txt")).unwrap())
                    .unwrap();
            assert_eq!(settings(&config, "arm_64bit"), ["1"]);
            assert_eq!(settings(&config, "enable_uart"), ["1"]);
            assert_eq!(settings(&config, "kernel"), [KERNEL]);
            assert_eq!(settings(&config, "kernel_address"), ["0x200000"]);
            assert_eq!(settings(&config, "dtoverlay"), ["disable-bt", "uart3"]);
            assert!(config.contains(&ConfigLine::Initramfs {
                file: BUNDLE.into(),
                at: "0x8000000".into()
            }));

            let text = std::fs::read_to_string(dir.join("cmdline.txt")).unwrap();
            let words = parse_cmdline_txt(&text).unwrap();
            let get = |k: &str| {
                words
                    .iter()
                    .find(|(n, _)| n == k)
                    .and_then(|(_, v)| v.clone())
            };
            assert_eq!(get("tandem.mode").as_deref(), Some(role));
            assert_eq!(get("tandem.link").as_deref(), Some("serial"));
            assert_eq!(get("tandem.seed").as_deref(), Some("7"));
            assert_eq!(get("tandem.epoch").as_deref(), Some("1000000"));
            // The hypervisor's own parser takes it as it is.
            let opts = el2_hypervisor::options::parse(text.trim()).unwrap();
            assert_eq!(opts.epoch, 1_000_000);
            assert_eq!(opts.seed, Some(7));
        }
    }

    #[test]
    fn with_all_firmware_there_is_no_readme() {
        let tmp = scratch("all-firmware");
        let mut o = options(&tmp);
        o.firmware.start4 = o.firmware.fixup4.clone();
        let out = tmp.join("card");
        let w = write(&out, &o).unwrap();
        assert!(w.missing_firmware.is_empty());
        assert!(out.join("primary/start4.elf").exists());
        assert!(!out.join("backup/README-firmware.txt").exists());
    }

    #[test]
    fn config_txt_parser_refuses_what_the_firmware_would_not_read() {
        assert!(
            parse_config_txt("arm_64bit=1\n# c\n[pi4]\ninitramfs a.bin followkernel\n").is_ok()
        );
        assert!(parse_config_txt("arm_64bit = 1\n").is_err());
        assert!(parse_config_txt("arm_64bit\n").is_err());
        assert!(parse_config_txt("initramfs a.bin\n").is_err());
        assert!(parse_config_txt("initramfs a.bin somewhere\n").is_err());
        assert!(parse_config_txt("enable_uart=\n").is_err());
    }

    #[test]
    fn cmdline_txt_parser_refuses_two_lines_and_empty_words() {
        assert_eq!(
            parse_cmdline_txt("a=1 b\n").unwrap(),
            [
                ("a".to_string(), Some("1".to_string())),
                ("b".to_string(), None)
            ]
        );
        assert!(parse_cmdline_txt("a=1\nb=2\n").is_err());
        assert!(parse_cmdline_txt("a=1  b=2\n").is_err());
        assert!(parse_cmdline_txt("\n").is_err());
    }
}
