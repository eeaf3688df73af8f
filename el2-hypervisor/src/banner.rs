//! The boot banner: what the hypervisor found on the board.
//!
//! Tests on QEMU compare these lines with what QEMU was given (`-m`,
//! `gic-version`, `-cpu`), so the wording is stable: change it together
//! with `ci/expect/`.

use crate::cpu_features::CpuFeatures;
use board_support::{BoardInfo, PsciMethod};
use core::fmt;

/// Everything the banner shows.
pub struct Banner<'a> {
    pub board_name: &'a str,
    pub info: &'a BoardInfo<'a>,
    pub features: CpuFeatures,
}

/// A byte count as `N GiB`, `N MiB` or `N KiB` when exact, else bytes.
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n != 0 && n.is_multiple_of(1 << 20) {
            write!(f, "{} MiB", n >> 20)
        } else if n != 0 && n.is_multiple_of(1 << 10) {
            write!(f, "{} KiB", n >> 10)
        } else {
            write!(f, "{n} bytes")
        }
    }
}

impl fmt::Display for Banner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.info;
        writeln!(
            f,
            "tandem {}: EL2 lockstep hypervisor, board {}",
            env!("CARGO_PKG_VERSION"),
            self.board_name
        )?;
        writeln!(f, "  model:   {}", i.model)?;
        writeln!(
            f,
            "  memory:  base {:#010x} size {}",
            i.memory_base(),
            Size(i.memory_size())
        )?;
        writeln!(
            f,
            "  gic:     v{} (distributor {:#010x})",
            i.gic.version.number(),
            i.gic.distributor.base
        )?;
        writeln!(f, "  console: pl011 {:#010x}", i.console.region.base)?;
        let psci = match i.psci {
            Some(PsciMethod::Smc) => "smc",
            Some(PsciMethod::Hvc) => "hvc",
            None => "none",
        };
        writeln!(f, "  psci:    {psci}")?;
        write!(f, "  cpu:     {}", self.features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_features::IdRegisters;
    use alloc::string::ToString;

    #[test]
    fn sizes() {
        assert_eq!(Size(512 << 20).to_string(), "512 MiB");
        assert_eq!(Size(3 << 30).to_string(), "3072 MiB");
        assert_eq!(Size(4096).to_string(), "4 KiB");
        assert_eq!(Size(100).to_string(), "100 bytes");
    }

    #[test]
    fn banner_from_the_qemu_fixture() {
        let dtb = include_bytes!("../../board-support/tests/fixtures/virt-gicv3.dtb");
        let info = board_support::dtb::parse(dtb).unwrap();
        let features = CpuFeatures::decode(&IdRegisters {
            mmfr0: 1 << 60,
            dfr0: 1 << 8,
            ..Default::default()
        });
        let s = Banner {
            board_name: "qemu-virt",
            info: &info,
            features,
        }
        .to_string();
        assert!(s.contains("memory:  base 0x40000000 size 512 MiB"), "{s}");
        assert!(s.contains("gic:     v3 (distributor 0x08000000)"), "{s}");
        assert!(s.contains("psci:    smc"), "{s}");
        assert!(s.contains("cpu:     ecv=yes pmu=v3 lse=no"), "{s}");
    }
}
