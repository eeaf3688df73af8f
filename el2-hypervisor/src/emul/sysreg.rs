//! Trapped MSR/MRS accesses (ESR_EL2.EC 0x18) decoded, and the encodings of
//! the system registers the hypervisor answers for the guest.
//!
//! ISS layout: Arm ARM (DDI 0487) D23.2.41 "ESR_EL2", "ISS encoding for an
//! exception from MSR, MRS, or System instruction execution in AArch64
//! state": Op0 [21:20], Op2 [19:17], Op1 [16:14], CRn [13:10], Rt [9:5],
//! CRm [4:1], Direction [0] (1 = read, MRS). Encodings as in Linux's
//! `arch/arm64/tools/sysreg` and `arch/arm64/include/asm/sysreg.h`.

/// A system register's encoding (op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysReg {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
}

impl SysReg {
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        SysReg {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// The feature ID space that `HCR_EL2.TID3` traps: op0=3, op1=0, CRn=0,
    /// CRm 1 to 7 (the AArch32 and AArch64 ID registers, allocated or not).
    pub const fn is_id_register(self) -> bool {
        self.op0 == 3 && self.op1 == 0 && self.crn == 0 && self.crm >= 1 && self.crm <= 7
    }
}

/// One trapped MSR (write) or MRS (read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// The general-purpose register transferred (31 is XZR).
    pub rt: u8,
    /// True for MRS (the guest reads), false for MSR.
    pub read: bool,
}

impl SysRegAccess {
    /// An access of `reg` through general register `rt`: MRS when `read`.
    pub const fn new(reg: SysReg, rt: u8, read: bool) -> Self {
        Self {
            op0: reg.op0,
            op1: reg.op1,
            crn: reg.crn,
            crm: reg.crm,
            op2: reg.op2,
            rt,
            read,
        }
    }

    /// The register accessed, for matching against the constants here.
    pub const fn reg(&self) -> SysReg {
        SysReg::new(self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// Decodes the ISS of an EC 0x18 trap.
pub const fn decode(iss: u32) -> SysRegAccess {
    SysRegAccess {
        op0: field(iss, 20, 2),
        op2: field(iss, 17, 3),
        op1: field(iss, 14, 3),
        crn: field(iss, 10, 4),
        rt: field(iss, 5, 5),
        crm: field(iss, 1, 4),
        read: iss & 1 != 0,
    }
}

const fn field(iss: u32, lsb: u32, bits: u32) -> u8 {
    ((iss >> lsb) & ((1 << bits) - 1)) as u8
}

/// Generic Timer registers (Arm ARM D23.8 / D24.x "Generic Timer registers").
pub const CNTFRQ_EL0: SysReg = SysReg::new(3, 3, 14, 0, 0);
pub const CNTPCT_EL0: SysReg = SysReg::new(3, 3, 14, 0, 1);
pub const CNTVCT_EL0: SysReg = SysReg::new(3, 3, 14, 0, 2);
/// Self-synchronised counter views (FEAT_ECV).
pub const CNTPCTSS_EL0: SysReg = SysReg::new(3, 3, 14, 0, 5);
pub const CNTVCTSS_EL0: SysReg = SysReg::new(3, 3, 14, 0, 6);
pub const CNTP_TVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 0);
pub const CNTP_CTL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 1);
pub const CNTP_CVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 2);
pub const CNTV_TVAL_EL0: SysReg = SysReg::new(3, 3, 14, 3, 0);
pub const CNTV_CTL_EL0: SysReg = SysReg::new(3, 3, 14, 3, 1);
pub const CNTV_CVAL_EL0: SysReg = SysReg::new(3, 3, 14, 3, 2);

/// ID registers whose values [`super::id_regs`] changes (encodings from
/// `arch/arm64/tools/sysreg`).
pub const ID_PFR0_EL1: SysReg = SysReg::new(3, 0, 0, 1, 0);
pub const ID_DFR0_EL1: SysReg = SysReg::new(3, 0, 0, 1, 2);
pub const ID_AA64PFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 0);
pub const ID_AA64PFR1_EL1: SysReg = SysReg::new(3, 0, 0, 4, 1);
pub const ID_AA64ZFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 4);
pub const ID_AA64SMFR0_EL1: SysReg = SysReg::new(3, 0, 0, 4, 5);
pub const ID_AA64DFR0_EL1: SysReg = SysReg::new(3, 0, 0, 5, 0);
pub const ID_AA64ISAR0_EL1: SysReg = SysReg::new(3, 0, 0, 6, 0);
pub const ID_AA64ISAR2_EL1: SysReg = SysReg::new(3, 0, 0, 6, 2);
pub const ID_AA64MMFR1_EL1: SysReg = SysReg::new(3, 0, 0, 7, 1);

/// GIC CPU interface SGI generation registers (IHI 0069H §12.2; encodings
/// as Linux's `SYS_ICC_SGI1R_EL1` and friends). Write-only. A Non-secure
/// EL1 write of any of them traps to EL2 (EC 0x18) while HCR_EL2.IMO or
/// FMO is set (QEMU's `gicv3_sgi_access`): hand the value to
/// `Vgic::generate_sgi` with the group [`sgi_register`] gives.
pub const ICC_SGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 5);
pub const ICC_ASGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 6);
pub const ICC_SGI0R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 7);

/// The interrupt group an SGI register write generates: only an SGI
/// configured in that group (GICR_IGROUPR0) is pended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SgiGroup {
    Group0,
    Group1,
}

impl SgiGroup {
    /// The `group1` argument of `Vgic::generate_sgi`.
    pub const fn is_group1(self) -> bool {
        matches!(self, SgiGroup::Group1)
    }
}

/// Which group a trapped write of `reg` generates, for the guest this
/// hypervisor runs: Non-secure EL1 on a GIC with one Security state
/// (GICD_CTLR.DS = 1, as the vGIC shows); `None` if `reg` is no SGI
/// register. IHI 0069H §12.2 and "Forwarding an SGI to a target PE":
/// - ICC_SGI1R_EL1: Group 1 of the current Security state, which with
///   DS = 1 is the one Group 1 there is.
/// - ICC_ASGI1R_EL1: Group 1 of the *other* Security state, Secure
///   Group 1 for a Non-secure writer. With DS = 1 there is no Secure
///   Group 1: the Distributor treats a Secure Group 1 SGI as Group 0, so
///   the write generates an SGI configured Group 0, as ICC_SGI0R_EL1
///   would (QEMU's `icc_generate_sgi` says so for DS = 1; KVM's
///   `access_gic_sgi` does the same, citing the note under that table).
/// - ICC_SGI0R_EL1: Group 0.
///
/// ICC_SGI1R_EL1 on an SGI configured Group 0 generates nothing here (as
/// QEMU's redistributor does; KVM lets it through, reading the table's
/// NSACR cells as always permitted with DS = 1). Linux puts every SGI in
/// Group 1 and writes only ICC_SGI1R_EL1, so it sees no difference.
pub const fn sgi_register(reg: SysReg) -> Option<SgiGroup> {
    match reg {
        ICC_SGI1R_EL1 => Some(SgiGroup::Group1),
        ICC_ASGI1R_EL1 | ICC_SGI0R_EL1 => Some(SgiGroup::Group0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the ISS of a trapped MSR/MRS.
    fn iss(r: SysReg, rt: u32, read: bool) -> u32 {
        (u32::from(r.op0) << 20)
            | (u32::from(r.op2) << 17)
            | (u32::from(r.op1) << 14)
            | (u32::from(r.crn) << 10)
            | (rt << 5)
            | (u32::from(r.crm) << 1)
            | u32::from(read)
    }

    #[test]
    fn decodes_mrs_x3_cntvct_el0() {
        // MRS x3, CNTVCT_EL0: Op0=3, Op2=2, Op1=3, CRn=14, Rt=3, CRm=0, read.
        let a = decode(0x0034_f861);
        assert_eq!(
            a,
            SysRegAccess {
                op0: 3,
                op1: 3,
                crn: 14,
                crm: 0,
                op2: 2,
                rt: 3,
                read: true
            }
        );
        assert_eq!(a.reg(), CNTVCT_EL0);
        assert_eq!(iss(CNTVCT_EL0, 3, true), 0x0034_f861);
    }

    #[test]
    fn decodes_msr_cntv_cval_from_xzr() {
        let a = decode(iss(CNTV_CVAL_EL0, 31, false));
        assert_eq!(a.reg(), CNTV_CVAL_EL0);
        assert_eq!(a.rt, 31);
        assert!(!a.read);
    }

    #[test]
    fn ignores_bits_above_the_iss_fields() {
        let a = decode(iss(CNTP_CTL_EL0, 7, true) | 0x01c0_0000);
        assert_eq!(a.reg(), CNTP_CTL_EL0);
        assert_eq!(a.rt, 7);
    }

    #[test]
    fn every_field_round_trips() {
        for r in [
            CNTFRQ_EL0,
            CNTPCT_EL0,
            CNTPCTSS_EL0,
            CNTVCTSS_EL0,
            CNTP_TVAL_EL0,
            CNTV_TVAL_EL0,
            ID_AA64ISAR2_EL1,
            SysReg::new(2, 7, 15, 15, 7),
        ] {
            for rt in [0, 17, 30] {
                let a = decode(iss(r, rt, rt == 17));
                assert_eq!((a.reg(), u32::from(a.rt), a.read), (r, rt, rt == 17));
            }
        }
    }

    #[test]
    fn decodes_linux_self_ipi_msr_icc_sgi1r_el1_x0() {
        // MSR ICC_SGI1R_EL1, x0 (S3_0_C12_C11_5): Op0=3, Op2=5, Op1=0,
        // CRn=12, Rt=0, CRm=11, write.
        let a = decode(0x003a_3016);
        assert_eq!(a.reg(), ICC_SGI1R_EL1);
        assert_eq!((a.rt, a.read), (0, false));
        assert_eq!(sgi_register(a.reg()), Some(SgiGroup::Group1));
        assert_eq!(decode(iss(ICC_ASGI1R_EL1, 5, false)).reg(), ICC_ASGI1R_EL1);
        assert_eq!(decode(iss(ICC_SGI0R_EL1, 9, false)).reg(), ICC_SGI0R_EL1);
    }

    #[test]
    fn sgi_registers_and_their_groups() {
        assert_eq!(sgi_register(ICC_SGI1R_EL1), Some(SgiGroup::Group1));
        assert_eq!(sgi_register(ICC_ASGI1R_EL1), Some(SgiGroup::Group0));
        assert_eq!(sgi_register(ICC_SGI0R_EL1), Some(SgiGroup::Group0));
        assert!(SgiGroup::Group1.is_group1() && !SgiGroup::Group0.is_group1());
        // Their CRn=12 CRm=11 neighbours: ICC_DIR_EL1, ICC_RPR_EL1.
        assert_eq!(sgi_register(SysReg::new(3, 0, 12, 11, 1)), None);
        assert_eq!(sgi_register(SysReg::new(3, 0, 12, 11, 3)), None);
        // Same op2 elsewhere.
        assert_eq!(sgi_register(SysReg::new(3, 1, 12, 11, 5)), None);
        assert_eq!(sgi_register(SysReg::new(3, 0, 12, 12, 5)), None);
        assert_eq!(sgi_register(CNTVCT_EL0), None);
        assert!(!ICC_SGI1R_EL1.is_id_register());
    }

    #[test]
    fn id_register_space() {
        assert!(ID_AA64PFR0_EL1.is_id_register());
        assert!(ID_PFR0_EL1.is_id_register());
        assert!(SysReg::new(3, 0, 0, 7, 7).is_id_register());
        // MIDR_EL1 and MPIDR_EL1 (CRm 0) are not in the TID3 group.
        assert!(!SysReg::new(3, 0, 0, 0, 5).is_id_register());
        // CTR_EL0 (op1=3) neither.
        assert!(!SysReg::new(3, 3, 0, 0, 1).is_id_register());
        assert!(!CNTVCT_EL0.is_id_register());
    }
}
