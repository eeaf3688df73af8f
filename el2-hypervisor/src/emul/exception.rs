//! Exceptions the hypervisor makes the guest take, and instructions it
//! completes for the guest: the values a real core would leave, computed
//! from the guest's state at the trap.
//!
//! Everything here follows the Arm ARM (DDI 0487) pseudocode
//! `AArch64.TakeException` (the new PSTATE, SPSR, ELR and vector) and the
//! ESR_ELx descriptions (D23.2.41 for ESR_EL2, the same ISS encodings for
//! ESR_EL1). The runtime calls two things:
//! - [`Injection::new`] for an exception the guest must take at its EL1
//!   vectors (an undefined instruction, an external abort): it gives what to
//!   write to ESR/FAR/ELR/SPSR_EL1 and the ELR/SPSR_EL2 to ERET with.
//! - [`skip_instruction`] after emulating a trapped instruction: the next
//!   PC by the instruction's length (ESR.IL) and the PSTATE an executed
//!   instruction leaves (single-step advanced, BTYPE cleared).
//!
//! The guest may be at EL1 (AArch64, SP_EL0 or SP_EL1) or at EL0 (AArch64,
//! or AArch32 where the hardware has it: hiding AArch32 in the ID registers
//! is advice only). Both SPSR formats are handled: the AArch32 one keeps
//! N Z C V, DIT (bit 24), PAN (22), SS (21) and IL (20) where the AArch64
//! one has them, and has SSBS at 23 and the IT bits at 26:25 and 15:10.
//!
//! A [`PstateFeatures`] says which PSTATE fields the *hardware* has (read
//! at EL2, before [`super::id_regs`] hides anything from the guest): the
//! entry PSTATE is what this core would produce, whatever the guest is told.

/// SPSR_ELx / PSTATE bits (AArch64 format; Arm ARM, "SPSR_EL2" among the
/// special-purpose registers, C5.2).
pub const SPSR_N: u64 = 1 << 31;
pub const SPSR_Z: u64 = 1 << 30;
pub const SPSR_C: u64 = 1 << 29;
pub const SPSR_V: u64 = 1 << 28;
/// The condition flags N, Z, C, V (bits 31:28, same place in both formats).
pub const SPSR_NZCV: u64 = SPSR_N | SPSR_Z | SPSR_C | SPSR_V;
/// TCO, bit 25: Tag Check Override (FEAT_MTE). AArch32 format: `IT[1]`.
pub const SPSR_TCO: u64 = 1 << 25;
/// DIT, bit 24: Data Independent Timing (FEAT_DIT), in both formats.
pub const SPSR_DIT: u64 = 1 << 24;
/// UAO, bit 23: User Access Override (FEAT_UAO). AArch32 format: SSBS.
pub const SPSR_UAO: u64 = 1 << 23;
/// PAN, bit 22: Privileged Access Never (FEAT_PAN), in both formats.
pub const SPSR_PAN: u64 = 1 << 22;
/// SS, bit 21: software step, in both formats.
pub const SPSR_SS: u64 = 1 << 21;
/// IL, bit 20: illegal execution state, in both formats.
pub const SPSR_IL: u64 = 1 << 20;
/// ALLINT, bit 13: all interrupts masked (FEAT_NMI).
pub const SPSR_ALLINT: u64 = 1 << 13;
/// SSBS, bit 12: speculative store bypass safe (FEAT_SSBS).
pub const SPSR_SSBS: u64 = 1 << 12;
/// BTYPE, bits 11:10: branch type (FEAT_BTI). AArch32 format: `IT[3:2]`.
pub const SPSR_BTYPE: u64 = 0b11 << 10;
pub const SPSR_D: u64 = 1 << 9;
pub const SPSR_A: u64 = 1 << 8;
pub const SPSR_I: u64 = 1 << 7;
pub const SPSR_F: u64 = 1 << 6;
/// The exception masks D, A, I, F (bits 9:6).
pub const SPSR_DAIF: u64 = SPSR_D | SPSR_A | SPSR_I | SPSR_F;
/// M, bits 4:0: `M[4]` is nRW (1 = AArch32), `M[3:2]` the EL, `M[0]` the SP.
pub const SPSR_M: u64 = 0x1f;
/// `M[4]` = 1: the state was AArch32 (the SPSR is in the AArch32 format).
pub const SPSR_M_AARCH32: u64 = 1 << 4;
/// M = EL0t (AArch64 EL0).
pub const SPSR_M_EL0T: u64 = 0b0000;
/// M = EL1t (EL1 on SP_EL0).
pub const SPSR_M_EL1T: u64 = 0b0100;
/// M = EL1h (EL1 on SP_EL1): every exception to EL1 enters here.
pub const SPSR_M_EL1H: u64 = 0b0101;

/// AArch32-format SPSR fields that the AArch64 format puts elsewhere:
/// `IT[1:0]` at 26:25 and `IT[7:2]` at 15:10.
const SPSR32_IT_LOW: u64 = 0b11 << 25;
const SPSR32_IT_HIGH: u64 = 0x3f << 10;

/// SCTLR_EL1.SPAN, bit 23: 0 sets PSTATE.PAN on taking an exception to EL1
/// (RES1 without FEAT_PAN).
pub const SCTLR_SPAN: u64 = 1 << 23;
/// SCTLR_EL1.DSSBS, bit 44: PSTATE.SSBS on taking an exception to EL1.
pub const SCTLR_DSSBS: u64 = 1 << 44;
/// SCTLR_EL1.SPINTMASK, bit 62: 0 sets PSTATE.ALLINT on taking an
/// exception to EL1, 1 clears it (FEAT_NMI).
pub const SCTLR_SPINTMASK: u64 = 1 << 62;

/// Vector offsets from VBAR_EL1 (Arm ARM D1.3.1, "Exception vectors"):
/// which quarter of the table serves the interrupted context...
pub const VECTOR_CURRENT_SP0: u64 = 0x000;
pub const VECTOR_CURRENT_SPX: u64 = 0x200;
pub const VECTOR_LOWER_AARCH64: u64 = 0x400;
pub const VECTOR_LOWER_AARCH32: u64 = 0x600;
/// ...plus the entry in that quarter for the kind of exception.
pub const VECTOR_SYNC: u64 = 0x000;
pub const VECTOR_IRQ: u64 = 0x080;
pub const VECTOR_FIQ: u64 = 0x100;
pub const VECTOR_SERROR: u64 = 0x180;

/// ESR_ELx fields (Arm ARM D23.2.41): EC at 31:26, IL at 25.
pub const ESR_EC_SHIFT: u32 = 26;
pub const ESR_IL: u64 = 1 << 25;
/// EC 0x00: unknown reason, what an undefined instruction reports.
pub const EC_UNKNOWN: u64 = 0x00;
/// EC 0x20 / 0x21: instruction abort from a lower EL / the same EL.
pub const EC_IABT_LOWER: u64 = 0x20;
pub const EC_IABT_CURRENT: u64 = 0x21;
/// EC 0x24 / 0x25: data abort from a lower EL / the same EL.
pub const EC_DABT_LOWER: u64 = 0x24;
pub const EC_DABT_CURRENT: u64 = 0x25;
/// Data abort ISS.WnR, bit 6: the access was a write.
pub const ISS_WNR: u64 = 1 << 6;
/// Data abort ISS.CM, bit 8: a cache maintenance or address translation
/// instruction faulted (WnR is then 1).
pub const ISS_CM: u64 = 1 << 8;
/// DFSC/IFSC 0b010000: synchronous external abort, not on a translation
/// table walk.
pub const FSC_SYNC_EXTERNAL_ABORT: u64 = 0x10;

/// The PSTATE fields of the hardware that exception entry writes and that
/// not every core has (FEAT_PAN, FEAT_SSBS, FEAT_MTE, FEAT_NMI).
///
/// FEAT_UAO and FEAT_BTI need no flag: entry clears UAO and BTYPE, and
/// without the feature the bit is RES0, zero either way. Fields of later
/// features (EXLOCK, bit 34, FEAT_GCS; PACM, bit 35, FEAT_PAuth_LR; UINJ,
/// bit 36, FEAT_UINJ; PM, bit 32, FEAT_EBEP) come out as zero: none of
/// them exists on the cores this runs on (QEMU 10.0 `-cpu max`,
/// `-cpu cortex-a72`), so that is exact there; with FEAT_GCS EXLOCK would
/// be GCSCR_EL1.EXLOCKEN for an exception from EL1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PstateFeatures {
    /// FEAT_PAN: PSTATE.PAN exists.
    pub pan: bool,
    /// FEAT_SSBS: PSTATE.SSBS exists.
    pub ssbs: bool,
    /// FEAT_MTE: PSTATE.TCO exists. The guest is not told about MTE
    /// ([`super::id_regs`]), so TCO does nothing for it; it is set because
    /// the core would set it.
    pub mte: bool,
    /// FEAT_NMI: PSTATE.ALLINT exists.
    pub nmi: bool,
}

impl PstateFeatures {
    /// None of them: an Armv8.0 core such as the Cortex-A72.
    pub const NONE: Self = PstateFeatures {
        pan: false,
        ssbs: false,
        mte: false,
        nmi: false,
    };

    /// Decodes the hardware's ID_AA64PFR1_EL1 and ID_AA64MMFR1_EL1 (read at
    /// EL2, not the guest's sanitised view). Fields (Linux
    /// `arch/arm64/tools/sysreg`): PFR1.SSBS 7:4, PFR1.MTE 11:8, PFR1.NMI
    /// 39:36, MMFR1.PAN 23:20; any non-zero value has the PSTATE field.
    ///
    /// MTE: the Arm ARM sets TCO with FEAT_MTE (MTE >= 1). QEMU 10.0's
    /// `arm_cpu_do_interrupt_aarch64` sets it only with FEAT_MTE2
    /// (MTE >= 2), and `-M virt` without `mte=on` shows MTE = 1: there an
    /// injected exception sets TCO where QEMU's own would not. Invisible to
    /// a guest without tag checks, and the same on both boards.
    pub const fn from_id_registers(pfr1: u64, mmfr1: u64) -> Self {
        const fn has(reg: u64, lsb: u32) -> bool {
            (reg >> lsb) & 0xf != 0
        }
        PstateFeatures {
            pan: has(mmfr1, 20),
            ssbs: has(pfr1, 4),
            mte: has(pfr1, 8),
            nmi: has(pfr1, 36),
        }
    }
}

/// True when `spsr` describes AArch32 state (`M[4]`, nRW).
pub const fn is_aarch32(spsr: u64) -> bool {
    spsr & SPSR_M_AARCH32 != 0
}

/// True when `spsr` describes AArch64 EL1 (`M[3:2]` = 1): an exception taken
/// to EL1 from there is taken from the *same* EL (EC 0x21, 0x25).
pub const fn is_el1(spsr: u64) -> bool {
    !is_aarch32(spsr) && (spsr >> 2) & 0b11 == 1
}

/// The PSTATE (the SPSR_EL2 to ERET with) on entry to EL1 for an exception
/// taken from the guest state `spsr` (SPSR_EL2 at the trap), under
/// SCTLR_EL1 `sctlr_el1`. `AArch64.TakeException` with target EL1:
/// - M = EL1h: `PSTATE.EL = EL1; PSTATE.nRW = '0'; PSTATE.SP = '1'`;
/// - D, A, I, F = 1, IL = 0, SS = 0;
/// - PAN: set if SCTLR_EL1.SPAN == 0, otherwise unchanged (FEAT_PAN);
/// - UAO = 0, BTYPE = 0;
/// - SSBS = SCTLR_EL1.DSSBS (FEAT_SSBS);
/// - TCO = 1 (FEAT_MTE);
/// - ALLINT = NOT SCTLR_EL1.SPINTMASK (FEAT_NMI), as QEMU does;
/// - N, Z, C, V and DIT unchanged;
/// - everything else zero: AArch32's Q, GE, IT, E and T (`PSTATE.IT =
///   '00000000'; PSTATE.T = '0'` from AArch32), and the fields of absent
///   features (RES0).
///
/// Not modelled, being off for this guest: FEAT_NV's SPSR rewrite, and
/// IRQ/FIQ/SError routing (the same PSTATE rules apply to those entries).
pub const fn el1_entry_pstate(spsr: u64, sctlr_el1: u64, features: PstateFeatures) -> u64 {
    // Same bit positions in the AArch32 SPSR format.
    let mut pstate = (spsr & (SPSR_NZCV | SPSR_DIT)) | SPSR_DAIF | SPSR_M_EL1H;
    if features.pan {
        pstate |= spsr & SPSR_PAN;
        if sctlr_el1 & SCTLR_SPAN == 0 {
            pstate |= SPSR_PAN;
        }
    }
    if features.ssbs && sctlr_el1 & SCTLR_DSSBS != 0 {
        pstate |= SPSR_SSBS;
    }
    if features.mte {
        pstate |= SPSR_TCO;
    }
    if features.nmi && sctlr_el1 & SCTLR_SPINTMASK == 0 {
        pstate |= SPSR_ALLINT;
    }
    pstate
}

/// The offset from VBAR_EL1 of the synchronous vector for an exception to
/// EL1 taken from `spsr`: `AArch64.TakeException`'s `vect_offset` (add
/// [`VECTOR_IRQ`] and friends for the other kinds):
/// - from EL1 on SP_EL0 (EL1t): 0x000; on SP_EL1 (EL1h): 0x200;
/// - from EL0 in AArch64: 0x400; from EL0 in AArch32: 0x600.
///
/// An AArch64 SPSR naming EL2 or EL3 (never a guest's) is treated as a
/// lower EL in AArch64.
pub const fn vector_offset(spsr: u64) -> u64 {
    if is_aarch32(spsr) {
        VECTOR_LOWER_AARCH32
    } else if !is_el1(spsr) {
        VECTOR_LOWER_AARCH64
    } else if spsr & 1 == 1 {
        VECTOR_CURRENT_SPX
    } else {
        VECTOR_CURRENT_SP0
    }
}

/// The ELR_EL2 that enters the vector at `offset` of the table at
/// `vbar_el1`: `VBAR_ELx[]<63:11>:vect_offset<10:0>`.
pub const fn vector_address(vbar_el1: u64, offset: u64) -> u64 {
    (vbar_el1 & !0x7ff) | (offset & 0x7ff)
}

/// ESR_EL1 for an undefined instruction: EC 0x00 (unknown reason), IL = 1
/// (RES1 for EC 0x00), ISS 0.
pub const fn undefined_syndrome() -> u64 {
    (EC_UNKNOWN << ESR_EC_SHIFT) | ESR_IL
}

/// ESR_EL1 for a synchronous external abort on a data access: EC 0x25
/// from EL1 (same EL), 0x24 from EL0; DFSC 0x10; WnR for a write; CM for a
/// cache maintenance or address translation instruction (which also sets
/// WnR).
///
/// ISV = 0 (no instruction syndrome: the guest is told of a fault, not
/// asked to emulate), hence IL = 1 (RES1 when ISV is 0). FnV = 0: FAR_EL1
/// holds the faulting address. EA (bit 9) = 0, SET (bits 12:11, FEAT_RAS)
/// = 0b00, "recoverable"; S1PTW (bit 7) = 0, as it is RES0 for any fault
/// but a stage-2 one. Linux sends any SEA to `do_sea` (SIGBUS in user
/// space, an oops in the kernel) whatever EA and SET say.
pub const fn data_abort_syndrome(from_el1: bool, write: bool, cache_maintenance: bool) -> u64 {
    let ec = if from_el1 {
        EC_DABT_CURRENT
    } else {
        EC_DABT_LOWER
    };
    let mut esr = (ec << ESR_EC_SHIFT) | ESR_IL | FSC_SYNC_EXTERNAL_ABORT;
    if write || cache_maintenance {
        esr |= ISS_WNR;
    }
    if cache_maintenance {
        esr |= ISS_CM;
    }
    esr
}

/// ESR_EL1 for a synchronous external abort on an instruction fetch: EC
/// 0x21 from EL1, 0x20 from EL0; IFSC 0x10; IL = 1 (RES1 for instruction
/// aborts). FnV, EA, SET and S1PTW are 0, as for
/// [`data_abort_syndrome`].
pub const fn instruction_abort_syndrome(from_el1: bool) -> u64 {
    let ec = if from_el1 {
        EC_IABT_CURRENT
    } else {
        EC_IABT_LOWER
    };
    (ec << ESR_EC_SHIFT) | ESR_IL | FSC_SYNC_EXTERNAL_ABORT
}

/// What the guest is made to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The instruction does not exist for the guest (a trapped
    /// instruction or register the hypervisor does not emulate).
    Undefined,
    /// A data access to an address the guest has nothing at, taken as a
    /// synchronous external abort, as a bus error on a real board is.
    /// `trap_esr` is the data abort's ESR_EL2, whose WnR and CM carry over
    /// (the same access, the same instruction); nothing else of it does:
    /// its DFSC, S1PTW and ISV/SAS/SRT describe the stage-2 fault, which
    /// the guest does not see. A stage-2 fault on the guest's own
    /// translation table walk (S1PTW = 1) is still reported as DFSC 0x10,
    /// not 0b0101xx "on a walk", since the walk level is not known. `far`
    /// is FAR_EL2, the faulting virtual address.
    DataAbort { trap_esr: u64, far: u64 },
    /// An instruction fetch from an address the guest has nothing at, as
    /// a synchronous external abort. `far` is FAR_EL2.
    InstructionAbort { far: u64 },
    /// A guest BRK that MDCR_EL2.TDE routed to EL2 (while the guest is
    /// single-stepped: `replica::step_to_count`), given back as the
    /// exception it is without the hypervisor: ESR_EL1 is the trap's
    /// syndrome (EC 0x3C, IL, the immediate), and FAR_EL1, which a BRK
    /// does not write, keeps the guest's `far_el1`.
    Breakpoint { trap_esr: u64, far_el1: u64 },
}

/// An exception to inject: what the runtime writes to the guest's EL1
/// registers, and where it ERETs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    pub esr_el1: u64,
    /// FAR_EL1: the faulting address for an abort. For an undefined
    /// instruction FAR_EL1 is UNKNOWN (Arm ARM: written only by aborts,
    /// PC alignment faults and watchpoints): 0, the same on both boards.
    pub far_el1: u64,
    /// ELR_EL1: the preferred return address, the faulting instruction
    /// (the trap's ELR_EL2).
    pub elr_el1: u64,
    /// SPSR_EL1: the guest's PSTATE at the trap (SPSR_EL2), unchanged. The
    /// architecture forms both with `GetPSRFromPSTATE`; keeping BTYPE is
    /// required for an instruction abort and allowed otherwise
    /// (`Unpredictable_ZEROBTYPE`).
    pub spsr_el1: u64,
    /// The vector's offset from VBAR_EL1 ([`vector_offset`]).
    pub vector_offset: u64,
    /// The SPSR_EL2 to ERET with: the PSTATE at the vector
    /// ([`el1_entry_pstate`]).
    pub new_spsr: u64,
}

impl Injection {
    /// The injection of `fault` into a guest that trapped with ELR_EL2
    /// `elr` and SPSR_EL2 `spsr`, whose SCTLR_EL1 is `sctlr_el1`, on a core
    /// with `features`.
    pub const fn new(
        fault: Fault,
        elr: u64,
        spsr: u64,
        sctlr_el1: u64,
        features: PstateFeatures,
    ) -> Self {
        let from_el1 = is_el1(spsr);
        let (esr_el1, far_el1) = match fault {
            Fault::Undefined => (undefined_syndrome(), 0),
            Fault::DataAbort { trap_esr, far } => (
                data_abort_syndrome(from_el1, trap_esr & ISS_WNR != 0, trap_esr & ISS_CM != 0),
                far,
            ),
            Fault::InstructionAbort { far } => (instruction_abort_syndrome(from_el1), far),
            Fault::Breakpoint { trap_esr, far_el1 } => (trap_esr & 0xffff_ffff, far_el1),
        };
        Injection {
            esr_el1,
            far_el1,
            elr_el1: elr,
            // The guest never steps itself (its debug registers trap), so
            // an SS bit is the hypervisor's stepping (`replica::step_to_count`):
            // an injected exception leaves no trace of it.
            spsr_el1: spsr & !SPSR_SS,
            // The synchronous entry: VECTOR_SYNC is 0.
            vector_offset: vector_offset(spsr),
            new_spsr: el1_entry_pstate(spsr, sctlr_el1, features),
        }
    }

    /// The ELR_EL2 to ERET with, given the guest's VBAR_EL1.
    pub const fn new_elr(&self, vbar_el1: u64) -> u64 {
        vector_address(vbar_el1, self.vector_offset)
    }
}

/// Completes a trapped instruction the hypervisor emulated: returns the
/// new (ELR_EL2, SPSR_EL2).
///
/// - The PC advances by the instruction's length, ESR_EL2.IL: 4, or 2 for
///   a 16-bit T32 instruction (IL = 0). AArch32 PCs wrap at 32 bits.
/// - SS is cleared: the instruction has executed, so a software step in
///   progress moves to active-pending and the step exception is taken
///   right after the ERET, as after any stepped instruction (KVM's
///   `kvm_skip_instr` does the same).
/// - AArch64: BTYPE is cleared, as executing any instruction but a branch
///   leaves it.
/// - AArch32: the IT state advances (`ITAdvance`: IT<4:0> shifts left, and
///   the block ends when IT<2:0> was 0), as KVM's `kvm_adjust_itstate`
///   does; bits 11:10 are IT bits there, not BTYPE.
pub const fn skip_instruction(elr: u64, spsr: u64, esr: u64) -> (u64, u64) {
    let len = if esr & ESR_IL != 0 { 4 } else { 2 };
    if is_aarch32(spsr) {
        let elr = elr.wrapping_add(len) & 0xffff_ffff;
        (elr, it_advance(spsr) & !SPSR_SS)
    } else {
        (elr.wrapping_add(len), spsr & !(SPSR_SS | SPSR_BTYPE))
    }
}

/// `ITAdvance()` on an AArch32-format SPSR: `IT[1:0]` at 26:25, `IT[7:2]` at
/// 15:10.
const fn it_advance(spsr: u64) -> u64 {
    let it = ((spsr >> 25) & 0b11) | (((spsr >> 10) & 0x3f) << 2);
    let it = if it & 0b111 == 0 {
        0
    } else {
        (it & 0xe0) | ((it << 1) & 0x1f)
    };
    (spsr & !(SPSR32_IT_LOW | SPSR32_IT_HIGH)) | ((it & 0b11) << 25) | ((it >> 2) << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-cpu max`: PAN, SSBS, MTE (instructions only, MTE = 1) and NMI.
    const MAX: PstateFeatures = PstateFeatures {
        pan: true,
        ssbs: true,
        mte: true,
        nmi: true,
    };
    /// Neither PAN nor SSBS nor MTE nor NMI: the Cortex-A72.
    const A72: PstateFeatures = PstateFeatures::NONE;
    /// SCTLR_EL1 as Linux runs with PAN: SPAN = 0, DSSBS = 0, SPINTMASK = 0.
    const SCTLR_LINUX: u64 = 0x0000_0000_3450_d91d;
    /// An AArch32 User-mode SPSR (M = 0b10000).
    const USR32: u64 = 0b1_0000;

    #[test]
    fn field_positions() {
        assert_eq!(SPSR_NZCV, 0xf000_0000);
        assert_eq!(SPSR_TCO, 0x0200_0000);
        assert_eq!(SPSR_DIT, 0x0100_0000);
        assert_eq!(SPSR_UAO, 0x0080_0000);
        assert_eq!(SPSR_PAN, 0x0040_0000);
        assert_eq!(SPSR_SS, 0x0020_0000);
        assert_eq!(SPSR_IL, 0x0010_0000);
        assert_eq!(SPSR_ALLINT, 0x2000);
        assert_eq!(SPSR_SSBS, 0x1000);
        assert_eq!(SPSR_BTYPE, 0x0c00);
        assert_eq!(SPSR_DAIF | SPSR_M_EL1H, 0x3c5);
        assert_eq!(SCTLR_SPAN, 0x80_0000);
        assert_eq!(SCTLR_DSSBS, 0x1000_0000_0000);
        assert_eq!(SCTLR_SPINTMASK, 0x4000_0000_0000_0000);
    }

    #[test]
    fn entry_is_el1h_with_daif_masked() {
        // From EL0t, EL1t and EL1h, all unmasked: EL1h, DAIF set.
        for m in [SPSR_M_EL0T, SPSR_M_EL1T, SPSR_M_EL1H, USR32] {
            assert_eq!(el1_entry_pstate(m, SCTLR_SPAN, A72), 0x3c5, "M={m:#x}");
        }
    }

    #[test]
    fn nzcv_and_dit_are_kept() {
        let spsr = SPSR_N | SPSR_C | SPSR_DIT;
        assert_eq!(el1_entry_pstate(spsr, SCTLR_SPAN, A72), spsr | 0x3c5);
        assert_eq!(
            el1_entry_pstate(SPSR_Z | SPSR_V, SCTLR_SPAN, MAX) & (SPSR_NZCV | SPSR_DIT),
            SPSR_Z | SPSR_V
        );
        // The same bits in the AArch32 format.
        assert_eq!(
            el1_entry_pstate(USR32 | SPSR_NZCV | SPSR_DIT, SCTLR_SPAN, A72),
            SPSR_NZCV | SPSR_DIT | 0x3c5
        );
    }

    #[test]
    fn a_brk_from_a_step_is_given_back_as_it_was() {
        // BRK #0x800 (Linux's BUG) at EL1h, trapped while stepped: EC 0x3C, IL.
        let trap_esr = 0x3c << 26 | 1 << 25 | 0x800;
        let spsr = SPSR_M_EL1H | SPSR_SS;
        let f = Fault::Breakpoint {
            trap_esr,
            far_el1: 0xdead,
        };
        let inj = Injection::new(f, 0xffff_8000_1000, spsr, SCTLR_SPAN, A72);
        assert_eq!(inj.esr_el1, trap_esr);
        assert_eq!(inj.far_el1, 0xdead);
        assert_eq!(inj.elr_el1, 0xffff_8000_1000);
        assert_eq!(inj.spsr_el1, SPSR_M_EL1H);
        assert_eq!(inj.new_spsr, 0x3c5);
        // The current-EL, SP_ELx synchronous vector.
        assert_eq!(inj.new_elr(0x1000_0000), 0x1000_0200);
    }

    #[test]
    fn ss_il_btype_uao_cleared() {
        let spsr = SPSR_SS | SPSR_IL | SPSR_BTYPE | SPSR_UAO | SPSR_M_EL0T;
        assert_eq!(el1_entry_pstate(spsr, SCTLR_SPAN, MAX) & spsr, 0);
        assert_eq!(el1_entry_pstate(spsr, SCTLR_SPAN, A72), 0x3c5);
    }

    #[test]
    fn pan_set_only_when_span_is_zero_and_pan_exists() {
        // SPAN = 0 with FEAT_PAN: set, from either PAN value.
        assert_ne!(el1_entry_pstate(0, 0, MAX) & SPSR_PAN, 0);
        assert_ne!(el1_entry_pstate(SPSR_PAN, 0, MAX) & SPSR_PAN, 0);
        // SPAN = 1: unchanged.
        assert_eq!(el1_entry_pstate(0, SCTLR_SPAN, MAX) & SPSR_PAN, 0);
        assert_ne!(el1_entry_pstate(SPSR_PAN, SCTLR_SPAN, MAX) & SPSR_PAN, 0);
        // Without FEAT_PAN there is no PAN bit.
        assert_eq!(el1_entry_pstate(0, 0, A72) & SPSR_PAN, 0);
        assert_eq!(el1_entry_pstate(SPSR_PAN, 0, A72) & SPSR_PAN, 0);
        // Linux with PAN: SPAN = 0.
        assert_ne!(el1_entry_pstate(0, SCTLR_LINUX, MAX) & SPSR_PAN, 0);
    }

    #[test]
    fn ssbs_copied_from_dssbs() {
        assert_ne!(el1_entry_pstate(0, SCTLR_DSSBS, MAX) & SPSR_SSBS, 0);
        assert_eq!(el1_entry_pstate(SPSR_SSBS, 0, MAX) & SPSR_SSBS, 0);
        // No FEAT_SSBS: no SSBS bit, whatever DSSBS says.
        assert_eq!(el1_entry_pstate(SPSR_SSBS, SCTLR_DSSBS, A72) & SPSR_SSBS, 0);
        // AArch32 SSBS is bit 23; it lands nowhere (entry sets SSBS anew).
        assert_eq!(
            el1_entry_pstate(USR32 | (1 << 23), SCTLR_SPAN, MAX),
            0x3c5 | SPSR_TCO | SPSR_ALLINT
        );
    }

    #[test]
    fn tco_set_with_mte_only() {
        assert_ne!(el1_entry_pstate(0, SCTLR_SPAN, MAX) & SPSR_TCO, 0);
        let no_mte = PstateFeatures { mte: false, ..MAX };
        assert_eq!(el1_entry_pstate(SPSR_TCO, SCTLR_SPAN, no_mte) & SPSR_TCO, 0);
    }

    #[test]
    fn allint_is_not_spintmask_with_nmi() {
        assert_ne!(el1_entry_pstate(0, 0, MAX) & SPSR_ALLINT, 0);
        assert_eq!(
            el1_entry_pstate(SPSR_ALLINT, SCTLR_SPINTMASK, MAX) & SPSR_ALLINT,
            0
        );
        assert_eq!(el1_entry_pstate(SPSR_ALLINT, 0, A72) & SPSR_ALLINT, 0);
    }

    #[test]
    fn aarch32_bits_cleared() {
        // Q (27), IT (26:25, 15:10), GE (19:16), E (9), T (5).
        let aarch32 = (1 << 27) | (0b11 << 25) | (0xf << 16) | (0x3f << 10) | (1 << 9) | (1 << 5);
        assert_eq!(el1_entry_pstate(USR32 | aarch32, SCTLR_SPAN, A72), 0x3c5);
    }

    #[test]
    fn linux_user_to_kernel_on_max() {
        // EL0t with Z and C set, PAN clear: EL1h, DAIF, PAN (SPAN = 0),
        // TCO, ALLINT (SPINTMASK = 0); SSBS stays 0 (DSSBS = 0).
        let pstate = el1_entry_pstate(0x6000_0000, SCTLR_LINUX, MAX);
        assert_eq!(
            pstate,
            0x6000_0000 | SPSR_TCO | SPSR_PAN | SPSR_ALLINT | 0x3c5
        );
    }

    #[test]
    fn state_decoding() {
        assert!(is_el1(SPSR_M_EL1T) && is_el1(SPSR_M_EL1H) && is_el1(0xf000_03c5));
        assert!(!is_el1(SPSR_M_EL0T) && !is_el1(USR32));
        // AArch32 Abort mode (0b10111) has M[3:2] = 0b01 but is not EL1 in
        // AArch64: a guest reaches AArch32 only at EL0.
        assert!(!is_el1(0b1_0111));
        assert!(is_aarch32(USR32) && is_aarch32(0b1_0111) && !is_aarch32(SPSR_M_EL1H));
    }

    #[test]
    fn vector_offsets() {
        assert_eq!(vector_offset(SPSR_M_EL1T), 0x000);
        assert_eq!(vector_offset(SPSR_M_EL1H), 0x200);
        assert_eq!(vector_offset(SPSR_M_EL0T), 0x400);
        assert_eq!(vector_offset(USR32), 0x600);
        // Flags and masks do not move it.
        assert_eq!(vector_offset(0xf000_03c5), 0x200);
        assert_eq!(vector_offset(0xf000_03c0), 0x400);
        // An AArch32 mode whose M[3:2] = 0b01 and M[0] = 1 (Abort, 0b10111)
        // is still a lower EL in AArch32.
        assert_eq!(vector_offset(0b1_0111), 0x600);
        assert_eq!(VECTOR_IRQ, 0x80);
        assert_eq!(
            vector_address(0xffff_8000_1001_0000, 0x280),
            0xffff_8000_1001_0280
        );
        assert_eq!(vector_address(0x4000_07ff, 0x400), 0x4000_0400);
    }

    #[test]
    fn syndromes() {
        assert_eq!(undefined_syndrome(), 0x0200_0000);
        assert_eq!(instruction_abort_syndrome(true), 0x8600_0010);
        assert_eq!(instruction_abort_syndrome(false), 0x8200_0010);
        assert_eq!(data_abort_syndrome(true, false, false), 0x9600_0010);
        assert_eq!(data_abort_syndrome(false, false, false), 0x9200_0010);
        assert_eq!(data_abort_syndrome(true, true, false), 0x9600_0050);
        assert_eq!(data_abort_syndrome(false, false, true), 0x9200_0150);
    }

    #[test]
    fn data_abort_carries_wnr_and_cm_only() {
        // A stage-2 translation fault (DFSC 7) on a store from EL1, with
        // ISV, SAS, SRT, S1PTW, FnV-position and EA-position bits set.
        let trap = (0x24 << 26)
            | ESR_IL
            | (1 << 24)
            | (2 << 22)
            | (3 << 16)
            | (1 << 10)
            | (1 << 9)
            | (1 << 7)
            | ISS_WNR
            | 0x07;
        let far = 0xffff_0000_0900_0000;
        let inj = Injection::new(
            Fault::DataAbort {
                trap_esr: trap,
                far,
            },
            0x1000,
            SPSR_M_EL1H,
            SCTLR_LINUX,
            MAX,
        );
        assert_eq!(inj.esr_el1, 0x9600_0050);
        assert_eq!(inj.far_el1, far);
        let read = Injection::new(
            Fault::DataAbort {
                trap_esr: trap & !ISS_WNR,
                far,
            },
            0x1000,
            SPSR_M_EL0T,
            SCTLR_LINUX,
            MAX,
        );
        assert_eq!(read.esr_el1, 0x9200_0010);
        let dc = Injection::new(
            Fault::DataAbort {
                trap_esr: (0x24 << 26) | ISS_CM | ISS_WNR | 0x06,
                far,
            },
            0x1000,
            SPSR_M_EL1H,
            SCTLR_LINUX,
            MAX,
        );
        assert_eq!(dc.esr_el1, 0x9600_0150);
    }

    #[test]
    fn injection_from_el1h_undefined() {
        let spsr = 0x2000_0345 | SPSR_BTYPE; // C, EL1h, D A I F partly.
        let inj = Injection::new(
            Fault::Undefined,
            0xffff_8000_0801_2340,
            spsr,
            SCTLR_LINUX,
            MAX,
        );
        assert_eq!(inj.esr_el1, 0x0200_0000);
        assert_eq!(inj.far_el1, 0);
        assert_eq!(inj.elr_el1, 0xffff_8000_0801_2340);
        assert_eq!(inj.spsr_el1, spsr);
        assert_eq!(inj.vector_offset, 0x200);
        assert_eq!(
            inj.new_spsr,
            SPSR_C | SPSR_TCO | SPSR_PAN | SPSR_ALLINT | 0x3c5
        );
        assert_eq!(inj.new_elr(0xffff_8000_0801_0800), 0xffff_8000_0801_0a00);
    }

    #[test]
    fn injection_from_el0_and_el1t_instruction_abort() {
        let user = Injection::new(
            Fault::InstructionAbort { far: 0x40_0000 },
            0x40_0000,
            SPSR_M_EL0T,
            SCTLR_SPAN,
            A72,
        );
        assert_eq!(user.esr_el1, 0x8200_0010);
        assert_eq!((user.far_el1, user.vector_offset), (0x40_0000, 0x400));
        assert_eq!(user.new_spsr, 0x3c5);
        let el1t = Injection::new(
            Fault::InstructionAbort { far: 0x8000 },
            0x8000,
            SPSR_M_EL1T,
            SCTLR_SPAN,
            A72,
        );
        assert_eq!(el1t.esr_el1, 0x8600_0010);
        assert_eq!(el1t.vector_offset, 0x000);
        assert_eq!(el1t.new_elr(0x4008_0000), 0x4008_0000);
    }

    #[test]
    fn injection_from_aarch32_user() {
        let spsr = USR32 | SPSR_Z | (1 << 5); // Z, Thumb.
        let inj = Injection::new(Fault::Undefined, 0x1_0002, spsr, SCTLR_SPAN, A72);
        assert_eq!(inj.vector_offset, 0x600);
        assert_eq!(inj.esr_el1, 0x0200_0000);
        assert_eq!(inj.new_spsr, SPSR_Z | 0x3c5);
        let abort = Injection::new(
            Fault::DataAbort {
                trap_esr: (0x24 << 26) | ISS_WNR | 0x07,
                far: 0x2000,
            },
            0x1_0002,
            spsr,
            SCTLR_SPAN,
            A72,
        );
        // A lower EL: EC 0x24.
        assert_eq!(abort.esr_el1, 0x9200_0050);
    }

    #[test]
    fn skip_by_four_or_two() {
        let esr32 = (0x18 << 26) | ESR_IL;
        assert_eq!(
            skip_instruction(0x1000, SPSR_M_EL1H, esr32),
            (0x1004, SPSR_M_EL1H)
        );
        // A 16-bit T32 instruction (IL = 0), e.g. a WFI from AArch32 EL0.
        let esr16 = 0x01 << 26;
        assert_eq!(skip_instruction(0x1000, USR32, esr16), (0x1002, USR32));
        assert_eq!(skip_instruction(0x1000, USR32, esr16 | ESR_IL).0, 0x1004);
        // AArch32 PCs wrap at 32 bits.
        assert_eq!(skip_instruction(0xffff_fffe, USR32, esr16).0, 0);
    }

    #[test]
    fn skip_clears_ss_and_btype_keeps_the_rest() {
        let esr = (0x18 << 26) | ESR_IL;
        let keep = SPSR_NZCV | SPSR_DIT | SPSR_PAN | SPSR_SSBS | SPSR_DAIF | SPSR_M_EL1H;
        let (_, spsr) = skip_instruction(0, keep | SPSR_SS | SPSR_BTYPE, esr);
        assert_eq!(spsr, keep);
    }

    #[test]
    fn skip_advances_the_it_block_in_aarch32() {
        let esr16 = 0x01 << 26;
        // ITTE EQ-like: IT = 0b000_0_0110 (cond 000, mask 0110): IT<4:0>
        // shifts to 0b01100.
        let it = 0b0000_0110u64;
        let spsr = USR32 | ((it & 3) << 25) | ((it >> 2) << 10) | SPSR_SS;
        let (_, next) = skip_instruction(0, spsr, esr16);
        let it_next = ((next >> 25) & 3) | (((next >> 10) & 0x3f) << 2);
        assert_eq!(it_next, 0b0000_1100);
        assert_eq!(next & SPSR_SS, 0);
        // The last instruction of the block (IT<2:0> = 0b000, mask 0b01000)
        // ends it.
        let last = USR32 | (0b10 << 10) | SPSR_Z;
        assert_eq!(skip_instruction(0, last, esr16).1, USR32 | SPSR_Z);
        // Outside an IT block nothing changes.
        assert_eq!(skip_instruction(0, USR32 | SPSR_N, esr16).1, USR32 | SPSR_N);
    }

    #[test]
    fn features_from_id_registers() {
        // -cpu max-like: PFR1 NMI=1, MTE=1, SSBS=2, BT=1; MMFR1 PAN=3.
        let f = PstateFeatures::from_id_registers((1 << 36) | (1 << 8) | (2 << 4) | 1, 3 << 20);
        assert_eq!(f, MAX);
        // Cortex-A72: none.
        assert_eq!(PstateFeatures::from_id_registers(0, 0x0000_1122), A72);
        let pan_only = PstateFeatures::from_id_registers(0, 1 << 20);
        assert!(pan_only.pan && !pan_only.ssbs && !pan_only.mte && !pan_only.nmi);
    }
}
