//! The CPU features the guest is told about: ID register values (trapped by
//! `HCR_EL2.TID3`) with the features the hypervisor hides cleared.
//!
//! Hidden, and why (design notes, section 4 "Determinism"):
//! - FEAT_RNG (RNDR/RNDRRS): randomness differs between boards.
//! - FEAT_WFxT: WFIT/WFET time out on the real counter.
//! - The PMU (PMUv3, and its AArch32 view), SPE, TRBE, BRBE, AMU: counters
//!   and traces of what the hardware did, which differ between boards; the
//!   hypervisor owns the PMU for its epochs.
//! - SVE and SME: state the hypervisor does not save or check.
//! - MTE: tag checks the hypervisor does not handle.
//! - FEAT_HAFDBS (hardware Access flag and dirty state): the MMU sets AF
//!   and DBM bits in the guest's page tables on a TLB miss, and whether an
//!   access misses depends on the TLB's history, which differs between
//!   boards (and between QEMU runs: its TLB resizes on host time). Linux
//!   clears AF for page aging without flushing the TLB, so with HAFDBS the
//!   guest's memory need not be a function of its instruction stream.
//!   Without it Linux manages AF and dirty in software, on faults, at exact
//!   instructions. (Hidden by this argument; no replay has shown it yet.)
//!
//! Hiding is advice to the guest: Linux (and user space through its
//! HWCAPs) only uses what the ID registers advertise; the traps that stop
//! a guest using a feature anyway (CPTR_EL2, MDCR_EL2) belong to the arch
//! layer.
//!
//! Field positions: Linux `arch/arm64/tools/sysreg` (the kernel's
//! transcription of the Arm ARM D23.2 register descriptions), each cited
//! beside its mask.

use super::sysreg::{
    ID_AA64DFR0_EL1, ID_AA64ISAR0_EL1, ID_AA64ISAR2_EL1, ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1,
    ID_AA64PFR1_EL1, ID_AA64SMFR0_EL1, ID_AA64ZFR0_EL1, ID_DFR0_EL1, ID_PFR0_EL1, SysReg,
};

/// A 4-bit ID field at `lsb`.
const fn field(lsb: u32) -> u64 {
    0xf << lsb
}

/// ID_AA64ISAR0_EL1.RNDR, `UnsignedEnum 63:60 RNDR`.
pub const ISAR0_RNDR: u64 = field(60);
/// ID_AA64ISAR2_EL1.WFxT, `UnsignedEnum 3:0 WFxT`.
pub const ISAR2_WFXT: u64 = field(0);
/// ID_AA64PFR0_EL1.SVE, `UnsignedEnum 35:32 SVE`.
pub const PFR0_SVE: u64 = field(32);
/// ID_AA64PFR0_EL1.AMU, `UnsignedEnum 47:44 AMU`.
pub const PFR0_AMU: u64 = field(44);
/// ID_AA64PFR1_EL1.SME, `UnsignedEnum 27:24 SME`.
pub const PFR1_SME: u64 = field(24);
/// ID_AA64PFR1_EL1.MTE, `UnsignedEnum 11:8 MTE`.
pub const PFR1_MTE: u64 = field(8);
/// ID_AA64DFR0_EL1.PMUVer, `UnsignedEnum 11:8 PMUVer`.
pub const DFR0_PMUVER: u64 = field(8);
/// ID_AA64DFR0_EL1.PMSVer (SPE), `UnsignedEnum 35:32 PMSVer`.
pub const DFR0_PMSVER: u64 = field(32);
/// ID_AA64DFR0_EL1.TraceBuffer (TRBE), `UnsignedEnum 47:44 TraceBuffer`.
pub const DFR0_TRACEBUFFER: u64 = field(44);
/// ID_AA64DFR0_EL1.MTPMU, `Enum 51:48 MTPMU`: describes the PMU, 0b0000
/// (`NI_IMPDEF`) without one.
pub const DFR0_MTPMU: u64 = field(48);
/// ID_AA64DFR0_EL1.BRBE, `UnsignedEnum 55:52 BRBE`.
pub const DFR0_BRBE: u64 = field(52);
/// ID_AA64DFR0_EL1.HPMN0, `Enum 63:60 HPMN0`: describes MDCR_EL2.HPMN=0
/// for the PMU, 0b0000 without one.
pub const DFR0_HPMN0: u64 = field(60);
/// ID_AA64MMFR1_EL1.HAFDBS, `UnsignedEnum 3:0 HAFDBS`.
pub const MMFR1_HAFDBS: u64 = field(0);
/// ID_DFR0_EL1.PerfMon (the AArch32 view of the PMU), `UnsignedEnum 27:24 PerfMon`.
pub const AARCH32_DFR0_PERFMON: u64 = field(24);
/// ID_PFR0_EL1.AMU (the AArch32 view of the AMU), `UnsignedEnum 23:20 AMU`.
pub const AARCH32_PFR0_AMU: u64 = field(20);

/// The bits of `reg` the guest must see as zero. ID_AA64ZFR0_EL1 and
/// ID_AA64SMFR0_EL1 only describe SVE and SME, so they read as zero whole.
pub const fn hidden_bits(reg: SysReg) -> u64 {
    match reg {
        ID_AA64ISAR0_EL1 => ISAR0_RNDR,
        ID_AA64ISAR2_EL1 => ISAR2_WFXT,
        ID_AA64PFR0_EL1 => PFR0_SVE | PFR0_AMU,
        ID_AA64PFR1_EL1 => PFR1_SME | PFR1_MTE,
        ID_AA64ZFR0_EL1 | ID_AA64SMFR0_EL1 => u64::MAX,
        ID_AA64DFR0_EL1 => {
            DFR0_PMUVER | DFR0_PMSVER | DFR0_TRACEBUFFER | DFR0_MTPMU | DFR0_BRBE | DFR0_HPMN0
        }
        ID_AA64MMFR1_EL1 => MMFR1_HAFDBS,
        ID_DFR0_EL1 => AARCH32_DFR0_PERFMON,
        ID_PFR0_EL1 => AARCH32_PFR0_AMU,
        _ => 0,
    }
}

/// The value the guest reads from ID register `reg` when the hardware holds
/// `real_value`: hidden features cleared, every other field kept. A register
/// this module does not know passes through unchanged.
pub const fn sanitize_id_register(reg: SysReg, real_value: u64) -> u64 {
    real_value & !hidden_bits(reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets the 4-bit field at `lsb` to `v`.
    fn with(v: u64, lsb: u32) -> u64 {
        v << lsb
    }

    #[test]
    fn hardware_access_flag_hidden_rest_kept() {
        // HAFDBS=2 (AF and dirty), VMIDBits=2, VH=1, PAN=3.
        let real = with(2, 0) | with(2, 4) | with(1, 8) | with(3, 20);
        assert_eq!(
            sanitize_id_register(ID_AA64MMFR1_EL1, real),
            with(2, 4) | with(1, 8) | with(3, 20)
        );
    }

    #[test]
    fn rndr_hidden_rest_kept() {
        // RNDR=1, TLB=2, ATOMIC=2, AES=2.
        let real = with(1, 60) | with(2, 56) | with(2, 20) | with(2, 4);
        let seen = sanitize_id_register(ID_AA64ISAR0_EL1, real);
        assert_eq!(seen, with(2, 56) | with(2, 20) | with(2, 4));
        assert_eq!(seen >> 60, 0);
    }

    #[test]
    fn wfxt_hidden_rest_kept() {
        // WFxT=2, MOPS=1, CSSC=1.
        let real = with(2, 0) | with(1, 16) | with(1, 52);
        assert_eq!(
            sanitize_id_register(ID_AA64ISAR2_EL1, real),
            with(1, 16) | with(1, 52)
        );
    }

    #[test]
    fn sve_and_amu_hidden_in_pfr0() {
        // CSV3=1, CSV2=1, AMU=1, SVE=1, GIC=1, AdvSIMD=1, FP=1, EL2=1, EL1=1, EL0=1.
        let keep = with(1, 60)
            | with(1, 56)
            | with(1, 24)
            | with(1, 20)
            | with(1, 16)
            | with(1, 8)
            | with(1, 4)
            | with(1, 0);
        let real = keep | with(1, 44) | with(1, 32);
        assert_eq!(sanitize_id_register(ID_AA64PFR0_EL1, real), keep);
    }

    #[test]
    fn sme_and_mte_hidden_in_pfr1() {
        // SME=2, MTE=3, BT=1, SSBS=2, CSV2_frac=1.
        let keep = with(1, 0) | with(2, 4) | with(1, 32);
        let real = keep | with(2, 24) | with(3, 8);
        assert_eq!(sanitize_id_register(ID_AA64PFR1_EL1, real), keep);
    }

    #[test]
    fn sve_and_sme_detail_registers_read_zero() {
        assert_eq!(
            sanitize_id_register(ID_AA64ZFR0_EL1, 0x0110_1100_0011_0021),
            0
        );
        assert_eq!(
            sanitize_id_register(ID_AA64SMFR0_EL1, 0x8ff0_0000_0000_0000),
            0
        );
    }

    #[test]
    fn pmu_spe_trbe_brbe_hidden_debug_kept() {
        // DebugVer=9, TraceVer=1, BRPs=5, WRPs=3, CTX_CMPs=1 are kept.
        let keep = with(9, 0) | with(1, 4) | with(5, 12) | with(3, 20) | with(1, 28);
        // PMUVer=6, PMSVer=3, TraceBuffer=1, MTPMU=1, BRBE=1, HPMN0=1 go.
        let real =
            keep | with(6, 8) | with(3, 32) | with(1, 44) | with(1, 48) | with(1, 52) | with(1, 60);
        assert_eq!(sanitize_id_register(ID_AA64DFR0_EL1, real), keep);
    }

    #[test]
    fn aarch32_views_of_the_pmu_and_amu() {
        let dfr0 = with(4, 24) | with(6, 0);
        assert_eq!(sanitize_id_register(ID_DFR0_EL1, dfr0), with(6, 0));
        let pfr0 = with(1, 20) | with(1, 4) | with(1, 0);
        assert_eq!(
            sanitize_id_register(ID_PFR0_EL1, pfr0),
            with(1, 4) | with(1, 0)
        );
    }

    #[test]
    fn other_registers_pass_through() {
        let mmfr0 = 0x1000_0000_0010_1125; // ECV=1, PARange=5, ...
        assert_eq!(
            sanitize_id_register(SysReg::new(3, 0, 0, 7, 0), mmfr0),
            mmfr0
        );
        assert_eq!(
            sanitize_id_register(SysReg::new(3, 0, 0, 6, 1), u64::MAX),
            u64::MAX
        );
        assert_eq!(hidden_bits(SysReg::new(3, 3, 14, 0, 2)), 0);
    }

    #[test]
    fn masks_sit_where_the_sysreg_file_says() {
        assert_eq!(ISAR0_RNDR, 0xf000_0000_0000_0000);
        assert_eq!(ISAR2_WFXT, 0xf);
        assert_eq!(PFR0_SVE, 0xf_0000_0000);
        assert_eq!(PFR0_AMU, 0xf000_0000_0000);
        assert_eq!(PFR1_SME, 0x0f00_0000);
        assert_eq!(PFR1_MTE, 0xf00);
        assert_eq!(DFR0_PMUVER, 0xf00);
        assert_eq!(DFR0_PMSVER, 0xf_0000_0000);
        assert_eq!(DFR0_TRACEBUFFER, 0xf000_0000_0000);
        assert_eq!(DFR0_BRBE, 0x00f0_0000_0000_0000);
    }
}
