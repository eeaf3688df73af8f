//! CPU features the hypervisor relies on, decoded from the ID registers.
//!
//! Field positions: Arm ARM (DDI 0487) D23.2, "ID_AA64MMFR0_EL1" (ECV,
//! bits [63:60]), "ID_AA64DFR0_EL1" (PMUVer, bits [11:8]),
//! "ID_AA64ISAR0_EL1" (RNDR, bits [63:60]; Atomic, bits [23:20]),
//! "ID_AA64MMFR1_EL1" (VH, bits [11:8]).

use core::fmt;

/// Raw ID register values, as read at EL2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRegisters {
    pub mmfr0: u64,
    pub mmfr1: u64,
    pub dfr0: u64,
    pub isar0: u64,
    pub pfr0: u64,
}

/// PMU architecture version (ID_AA64DFR0_EL1.PMUVer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmuVersion {
    None,
    /// PMUv3 and its extensions: the value is the field (1 = PMUv3, 4 = v3p1,
    /// 5 = v3p4, 6 = v3p5, 7 = v3p7, 8 = v3p8, 9 = v3p9).
    V3(u8),
    ImplementationDefined,
}

impl fmt::Display for PmuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PmuVersion::None => f.write_str("none"),
            PmuVersion::V3(1) => f.write_str("v3"),
            PmuVersion::V3(4) => f.write_str("v3p1"),
            PmuVersion::V3(n) if *n >= 5 => write!(f, "v3p{}", n - 1),
            PmuVersion::V3(n) => write!(f, "v3(field {n})"),
            PmuVersion::ImplementationDefined => f.write_str("impdef"),
        }
    }
}

/// Decoded features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuFeatures {
    /// FEAT_ECV: lets EL2 trap EL1's CNTVCT_EL0 reads (`CNTHCTL_EL2.EL1TVCT`).
    pub ecv: bool,
    pub pmu: PmuVersion,
    /// FEAT_LSE: atomics without LL/SC exclusives.
    pub lse: bool,
    /// FEAT_RNG: RNDR/RNDRRS, which the guest must not see.
    pub rng: bool,
    /// FEAT_VHE.
    pub vhe: bool,
    /// GIC system-register interface (ID_AA64PFR0_EL1.GIC, bits [27:24]).
    pub gic_sysregs: bool,
}

const fn field(reg: u64, lsb: u32) -> u8 {
    ((reg >> lsb) & 0xf) as u8
}

impl CpuFeatures {
    pub const fn decode(id: &IdRegisters) -> Self {
        let pmu = match field(id.dfr0, 8) {
            0 => PmuVersion::None,
            0xf => PmuVersion::ImplementationDefined,
            n => PmuVersion::V3(n),
        };
        CpuFeatures {
            ecv: field(id.mmfr0, 60) >= 1,
            pmu,
            lse: field(id.isar0, 20) >= 2,
            rng: field(id.isar0, 60) >= 1,
            vhe: field(id.mmfr1, 8) >= 1,
            gic_sysregs: field(id.pfr0, 24) >= 1,
        }
    }

    pub const fn has_pmu(&self) -> bool {
        matches!(self.pmu, PmuVersion::V3(_))
    }
}

const fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

impl fmt::Display for CpuFeatures {
    /// The banner's `cpu:` line, e.g. `ecv=yes pmu=v3p5 lse=yes rng=yes vhe=yes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ecv={} pmu={} lse={} rng={} vhe={}",
            yes_no(self.ecv),
            self.pmu,
            yes_no(self.lse),
            yes_no(self.rng),
            yes_no(self.vhe)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn decodes_each_field() {
        let id = IdRegisters {
            mmfr0: 2 << 60,
            mmfr1: 1 << 8,
            dfr0: 6 << 8,
            isar0: (1 << 60) | (2 << 20),
            pfr0: 1 << 24,
        };
        let f = CpuFeatures::decode(&id);
        assert!(f.ecv && f.lse && f.rng && f.vhe && f.gic_sysregs);
        assert_eq!(f.pmu, PmuVersion::V3(6));
        assert_eq!(f.to_string(), "ecv=yes pmu=v3p5 lse=yes rng=yes vhe=yes");
    }

    #[test]
    fn cortex_a72_like() {
        // Cortex-A72: no ECV, PMUv3, no LSE (ARMv8.0), no RNG, no VHE.
        let id = IdRegisters {
            dfr0: 1 << 8,
            ..Default::default()
        };
        let f = CpuFeatures::decode(&id);
        assert_eq!(f.to_string(), "ecv=no pmu=v3 lse=no rng=no vhe=no");
        assert!(f.has_pmu());
        assert!(!CpuFeatures::decode(&IdRegisters::default()).has_pmu());
        assert_eq!(
            CpuFeatures::decode(&IdRegisters {
                dfr0: 0xf << 8,
                ..Default::default()
            })
            .pmu,
            PmuVersion::ImplementationDefined
        );
    }
}
