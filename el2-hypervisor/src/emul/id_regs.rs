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
//! - AArch32, at every EL: ID_AA64PFR0_EL1.EL0 and EL1 (and EL3 if
//!   present) read 0b0001, AArch64 only, where the hardware may say
//!   0b0010, AArch64 and AArch32 (`-cpu max` and the Cortex-A72 do for EL0
//!   and EL1). The hypervisor does not handle AArch32's own traps
//!   (MRC/MRRC counter reads, EC 0x03/0x04). Linux then refuses 32-bit
//!   binaries (`system_supports_32bit_el0()` reads EL0), so EL0 stays in
//!   AArch64. ([`super::exception`] still gets AArch32's vector, 16-bit
//!   instruction lengths and IT state right, as hiding is advice.)
//!   The AArch32 ID registers (CRm 1 to 3: ID_PFR0_EL1 to ID_MMFR5_EL1,
//!   MVFR0-2) read as zero whole: the Arm ARM makes them UNKNOWN when no
//!   EL has AArch32, zero is what KVM picks for the same reason
//!   (`aa32_id_visibility`: "consistency between systems"), and Linux
//!   reads them only when EL0 has AArch32 (`__cpuinfo_store_cpu`,
//!   `init_cpu_features`). That also hides the AArch32 views of the PMU
//!   (ID_DFR0_EL1.PerfMon) and the AMU (ID_PFR0_EL1.AMU).
//! - EL2 (ID_AA64PFR0_EL1.EL2 and SEL2 read 0): the guest runs at EL1 and
//!   has no EL2 to use, no nested virtualisation; its HVCs are firmware
//!   calls. Linux at EL1 never reads the field (whether it has EL2 comes
//!   from the EL it booted at, `is_hyp_mode_available()`); reading 0 keeps
//!   the view consistent for a guest that does. EL3 keeps its presence
//!   (the guest's SMCs reach firmware, which the hypervisor emulates),
//!   without AArch32.
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
    ID_AA64PFR1_EL1, ID_AA64SMFR0_EL1, ID_AA64ZFR0_EL1, SysReg,
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
/// ID_AA64PFR0_EL1.EL0, `UnsignedEnum 3:0 EL0`: 0b0001 `IMP` (AArch64),
/// 0b0010 `AARCH32` (AArch64 and AArch32). EL1, EL2 and EL3 likewise, with
/// 0b0000 `NI` (not implemented) for EL2 and EL3.
pub const PFR0_EL0: u64 = field(0);
/// ID_AA64PFR0_EL1.EL1, `UnsignedEnum 7:4 EL1`.
pub const PFR0_EL1: u64 = field(4);
/// ID_AA64PFR0_EL1.EL2, `UnsignedEnum 11:8 EL2`.
pub const PFR0_EL2: u64 = field(8);
/// ID_AA64PFR0_EL1.EL3, `UnsignedEnum 15:12 EL3`.
pub const PFR0_EL3: u64 = field(12);
/// ID_AA64PFR0_EL1.SEL2 (Secure EL2), `UnsignedEnum 39:36 SEL2`.
pub const PFR0_SEL2: u64 = field(36);
/// The value of an ID_AA64PFR0_EL1 ELx field for "AArch64 only".
const EL_AARCH64_ONLY: u64 = 0b0001;
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

/// True for the AArch32 ID registers: op0=3, op1=0, CRn=0, CRm 1 to 3
/// (ID_PFR0_EL1 ... ID_MMFR5_EL1, MVFR0_EL1 ... MVFR2_EL1, and the
/// unallocated encodings among them).
pub const fn is_aarch32_id_register(reg: SysReg) -> bool {
    reg.op0 == 3 && reg.op1 == 0 && reg.crn == 0 && reg.crm >= 1 && reg.crm <= 3
}

/// The bits of `reg` the guest must see as zero, or as the hypervisor's
/// own value ([`shown_bits`]). ID_AA64ZFR0_EL1 and ID_AA64SMFR0_EL1 only
/// describe SVE and SME, and the AArch32 ID registers only AArch32, so they
/// read as zero whole.
pub const fn hidden_bits(reg: SysReg) -> u64 {
    match reg {
        ID_AA64ISAR0_EL1 => ISAR0_RNDR,
        ID_AA64ISAR2_EL1 => ISAR2_WFXT,
        ID_AA64PFR0_EL1 => {
            PFR0_SVE | PFR0_AMU | PFR0_EL0 | PFR0_EL1 | PFR0_EL2 | PFR0_EL3 | PFR0_SEL2
        }
        ID_AA64PFR1_EL1 => PFR1_SME | PFR1_MTE,
        ID_AA64ZFR0_EL1 | ID_AA64SMFR0_EL1 => u64::MAX,
        ID_AA64DFR0_EL1 => {
            DFR0_PMUVER | DFR0_PMSVER | DFR0_TRACEBUFFER | DFR0_MTPMU | DFR0_BRBE | DFR0_HPMN0
        }
        ID_AA64MMFR1_EL1 => MMFR1_HAFDBS,
        _ if is_aarch32_id_register(reg) => u64::MAX,
        _ => 0,
    }
}

/// The fields of `reg` (within [`hidden_bits`]) the guest reads as a value
/// of the hypervisor's, given the hardware's `real_value`: in
/// ID_AA64PFR0_EL1, EL0 and EL1 are AArch64 only, and EL3 is AArch64 only
/// if the hardware has it at all. (EL2 and SEL2 stay zero.)
pub const fn shown_bits(reg: SysReg, real_value: u64) -> u64 {
    match reg {
        ID_AA64PFR0_EL1 => {
            let el3 = if real_value & PFR0_EL3 != 0 {
                EL_AARCH64_ONLY << 12
            } else {
                0
            };
            (EL_AARCH64_ONLY << 4) | EL_AARCH64_ONLY | el3
        }
        _ => 0,
    }
}

/// The value the guest reads from ID register `reg` when the hardware holds
/// `real_value`: hidden features cleared (or set to the hypervisor's value),
/// every other field kept. A register this module does not know passes
/// through unchanged.
pub const fn sanitize_id_register(reg: SysReg, real_value: u64) -> u64 {
    (real_value & !hidden_bits(reg)) | shown_bits(reg, real_value)
}

#[cfg(test)]
mod tests {
    use super::super::sysreg::{ID_DFR0_EL1, ID_PFR0_EL1};
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
        // CSV3=1, CSV2=1, GIC=1, AdvSIMD=1, FP=1, EL1=1, EL0=1 are kept.
        let keep = with(1, 60)
            | with(1, 56)
            | with(1, 24)
            | with(1, 20)
            | with(1, 16)
            | with(1, 4)
            | with(1, 0);
        // AMU=1, SVE=1 and EL2=1 go.
        let real = keep | with(1, 44) | with(1, 32) | with(1, 8);
        assert_eq!(sanitize_id_register(ID_AA64PFR0_EL1, real), keep);
    }

    /// ID_AA64PFR0_EL1 shaped like QEMU's `-cpu max` on `-M
    /// virt,virtualization=on` without EL3 (composed from the fields, not
    /// dumped from QEMU): CSV3=1, CSV2=3, DIT=1, SEL2=1, SVE=1, RAS=2,
    /// GIC=1, AdvSIMD=1, FP=1, EL3=0, EL2=2, EL1=2, EL0=2.
    const MAX_LIKE_PFR0: u64 = 0x1301_0011_2111_0222;

    #[test]
    fn aarch32_and_el2_hidden_in_pfr0() {
        let seen = sanitize_id_register(ID_AA64PFR0_EL1, MAX_LIKE_PFR0);
        // EL0=EL1=0b0001 (AArch64 only), EL2=SEL2=0, EL3 still absent, SVE
        // gone; CSV3, CSV2, DIT, RAS, GIC, AdvSIMD and FP kept.
        assert_eq!(seen, 0x1301_0000_2111_0011);
        assert_eq!(seen & PFR0_EL0, 0b0001);
        assert_eq!((seen & PFR0_EL1) >> 4, 0b0001);
        assert_eq!(seen & (PFR0_EL2 | PFR0_SEL2 | PFR0_EL3), 0);
    }

    #[test]
    fn el3_keeps_its_presence_without_aarch32() {
        // The Cortex-A72 with EL3: every EL AArch64 and AArch32.
        assert_eq!(sanitize_id_register(ID_AA64PFR0_EL1, 0x2222), 0x1011);
        assert_eq!(sanitize_id_register(ID_AA64PFR0_EL1, 0x1111), 0x1011);
        // QEMU's cortex-a72 without EL3.
        assert_eq!(sanitize_id_register(ID_AA64PFR0_EL1, 0x0222), 0x0011);
        // EL0 and EL1 read AArch64 only even from a zero.
        assert_eq!(sanitize_id_register(ID_AA64PFR0_EL1, 0), 0x0011);
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
    fn aarch32_id_registers_read_zero() {
        // Including the AArch32 views of the PMU (ID_DFR0_EL1.PerfMon) and
        // the AMU (ID_PFR0_EL1.AMU).
        assert_eq!(
            sanitize_id_register(ID_DFR0_EL1, with(4, 24) | with(6, 0)),
            0
        );
        assert_eq!(
            sanitize_id_register(ID_PFR0_EL1, with(1, 20) | with(1, 4) | with(1, 0)),
            0
        );
        for crm in 1..=3 {
            for op2 in 0..=7 {
                let reg = SysReg::new(3, 0, 0, crm, op2);
                assert!(is_aarch32_id_register(reg));
                assert_eq!(
                    sanitize_id_register(reg, u64::MAX),
                    0,
                    "CRm {crm} op2 {op2}"
                );
            }
        }
        // The AArch64 ones (CRm 4 to 7) and others outside CRn 0 are not.
        assert!(!is_aarch32_id_register(ID_AA64PFR0_EL1));
        assert!(!is_aarch32_id_register(SysReg::new(3, 0, 0, 0, 5)));
        assert!(!is_aarch32_id_register(SysReg::new(3, 0, 1, 1, 0)));
        assert!(!is_aarch32_id_register(SysReg::new(3, 1, 0, 2, 0)));
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
        assert_eq!(PFR0_EL0 | PFR0_EL1 | PFR0_EL2 | PFR0_EL3, 0xffff);
        assert_eq!(PFR0_SEL2, 0xf0_0000_0000);
        assert_eq!(PFR1_SME, 0x0f00_0000);
        assert_eq!(PFR1_MTE, 0xf00);
        assert_eq!(DFR0_PMUVER, 0xf00);
        assert_eq!(DFR0_PMSVER, 0xf_0000_0000);
        assert_eq!(DFR0_TRACEBUFFER, 0xf000_0000_0000);
        assert_eq!(DFR0_BRBE, 0x00f0_0000_0000_0000);
    }
}
