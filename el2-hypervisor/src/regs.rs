//! The values the hypervisor writes to system registers, built from named
//! fields: aarch64-cpu's where it has them, and beside them, in the same
//! tock-registers `register_bitfields!` style, the few fields it lacks
//! (design card, section 7).
//!
//! Pure data, no register access: the arch layer writes these values
//! (`arch/aarch64/el2_regs.rs`, `gicv3.rs`, `timer.rs`, `pmu.rs`). Each is
//! pinned by a `const` assertion to the number the hardware was given when
//! the bits were still shifted by hand, so a wrong field name cannot
//! quietly change what traps. EL2 layouts are those for HCR_EL2.E2H = 0 (no
//! VHE), the only way the hypervisor runs.

use aarch64_cpu::registers::{
    CNTHCTL_EL2, CNTHP_CTL_EL2, CPTR_EL2, HCR_EL2, ICC_SRE_EL2, ICH_HCR_EL2, MDCR_EL2, MDSCR_EL1,
    VMPIDR_EL2,
};
use tock_registers::fields::FieldValue;
use tock_registers::{RegisterLongName, register_bitfields};

/// The bits of `fields` together, as tock-registers' `a + b + ...` gives
/// them, but in a `const`. Meant for `const` items: called at run time it
/// is a loop over the slice.
pub const fn bits<R: RegisterLongName>(fields: &[FieldValue<u64, R>]) -> u64 {
    let mut v = 0;
    let mut i = 0;
    while i < fields.len() {
        v |= fields[i].value;
        i += 1;
    }
    v
}

register_bitfields! {u64,
    /// CNTHCTL_EL2 (Arm ARM D23.2.26): the fields aarch64-cpu 11 lacks (it has
    /// EL1PCTEN and EL1PCEN only).
    pub CNTHCTL_EL2_EXT [
        /// FEAT_ECV: traps EL0/EL1 reads of the virtual counter (CNTVCT_EL0).
        EL1TVCT OFFSET(14) NUMBITS(1) [],
        /// FEAT_ECV: traps EL0/EL1 accesses to the virtual timer (CNTV_*_EL0).
        EL1TVT OFFSET(13) NUMBITS(1) [],
        /// FEAT_ECV: enables the physical counter offset (CNTPOFF_EL2).
        ECV OFFSET(12) NUMBITS(1) [],
        /// Enables the counter's event stream.
        EVNTEN OFFSET(2) NUMBITS(1) []
    ],
    /// CPTR_EL2 (Arm ARM D23.2.33): the fields aarch64-cpu 11 lacks (it has
    /// TAM only).
    pub CPTR_EL2_EXT [
        /// RES1.
        RES1_13 OFFSET(13) NUMBITS(1) [],
        /// Traps SME and streaming SVE (FEAT_SME; RES1 without it).
        TSM OFFSET(12) NUMBITS(1) [],
        /// Traps FP/SIMD, at EL2 too.
        TFP OFFSET(10) NUMBITS(1) [],
        /// RES1.
        RES1_9 OFFSET(9) NUMBITS(1) [],
        /// Traps SVE (FEAT_SVE; RES1 without it).
        TZ OFFSET(8) NUMBITS(1) [],
        /// RES1.
        RES1_7_0 OFFSET(0) NUMBITS(8) []
    ],
    /// PMCR_EL0, the PMU's control (aarch64-cpu 11 has no PMU register).
    pub PMCR_EL0 [
        /// Number of event counters implemented (read only).
        N OFFSET(11) NUMBITS(5) [],
        /// Long cycle counter: PMCCNTR_EL0 overflows at 64 bits, not 32.
        LC OFFSET(6) NUMBITS(1) [],
        /// Enables the counters that PMCNTENSET_EL0 enables.
        E OFFSET(0) NUMBITS(1) []
    ],
    /// PMCCFILTR_EL0: where the cycle counter counts.
    pub PMCCFILTR_EL0 [
        /// Set: does not count at EL1.
        P OFFSET(31) NUMBITS(1) [],
        /// Set: does not count at EL0.
        U OFFSET(30) NUMBITS(1) [],
        /// Set: counts at EL2.
        NSH OFFSET(27) NUMBITS(1) []
    ],
    /// PMEVTYPER<n>_EL0 (through PMXEVTYPER_EL0): what event counter n
    /// counts, and where (the filter bits as PMCCFILTR_EL0's).
    pub PMEVTYPER_EL0 [
        /// Set: does not count at EL1.
        P OFFSET(31) NUMBITS(1) [],
        /// Set: does not count at EL0.
        U OFFSET(30) NUMBITS(1) [],
        /// Set: counts at EL2.
        NSH OFFSET(27) NUMBITS(1) [],
        /// The event number (PMUv3 common events: 0x08 INST_RETIRED).
        EVTCOUNT OFFSET(0) NUMBITS(16) []
    ],
    /// One bit per counter, the layout of PMCNTENSET_EL0, PMINTENSET_EL1,
    /// PMOVSCLR_EL0 and PMOVSSET_EL0.
    pub PMU_COUNTERS [
        /// The cycle counter, PMCCNTR_EL0.
        C OFFSET(31) NUMBITS(1) []
    ]
}

/// HCR_EL2 for the guest (Arm ARM D23.2.48).
pub const HCR_GUEST: u64 = bits(&[
    // Stage-2 translation on.
    HCR_EL2::VM::Enable,
    // Set/way invalidation is clean+invalidate.
    HCR_EL2::SWIO::SET,
    // FIQs and IRQs to EL2, virtual ones (ICH_LR) to EL1; SErrors to EL2.
    HCR_EL2::FMO::EnableVirtualFIQ,
    HCR_EL2::IMO::EnableVirtualIRQ,
    HCR_EL2::AMO::SET,
    // WFI traps (ends an epoch later; idles here), and so does WFE.
    HCR_EL2::TWI::SET,
    HCR_EL2::TWE::SET,
    // ID register reads trap (to hide RNG, PMU, SVE, SME, ...).
    HCR_EL2::TID3::SET,
    // SMC traps: firmware calls are ours.
    HCR_EL2::TSC::EnableTrapEl1SmcToEl2,
    HCR_EL2::RW::EL1IsAarch64,
    // Pointer authentication: neither its keys nor its instructions trap.
    HCR_EL2::APK::DisableTrapPointerAuthKeyRegsToEl2,
    HCR_EL2::API::DisableTrapPointerAuthInstToEl2,
]);
const _: () = assert!(HCR_GUEST == 0x0000_0300_800c_603b);

/// CPTR_EL2 for the guest (Arm ARM D23.2.33): FP/SIMD allowed; SVE, SME and the
/// activity monitors trapped.
pub const CPTR_GUEST: u64 = bits(&[CPTR_EL2::TAM::SET])
    | bits(&[
        CPTR_EL2_EXT::TFP::CLEAR,
        CPTR_EL2_EXT::TZ::SET,
        CPTR_EL2_EXT::TSM::SET,
        CPTR_EL2_EXT::RES1_13::SET,
        CPTR_EL2_EXT::RES1_9::SET,
        CPTR_EL2_EXT::RES1_7_0::SET,
    ]);
const _: () = assert!(CPTR_GUEST == 0x4000_33ff);

/// CNTHCTL_EL2 for the guest (Arm ARM D23.2.26): CNTPCT_EL0 reads and the
/// physical timer registers trap (EL1PCTEN, EL1PCEN clear); with FEAT_ECV
/// the virtual timer registers and CNTVCT_EL0 reads trap too. No event
/// stream, no physical counter offset.
pub const fn cnthctl_guest(ecv: bool) -> u64 {
    // Named constants, so that the `bits` loops run at compile time.
    const ALWAYS: u64 = bits(&[CNTHCTL_EL2::EL1PCTEN::CLEAR, CNTHCTL_EL2::EL1PCEN::CLEAR])
        | bits(&[CNTHCTL_EL2_EXT::EVNTEN::CLEAR, CNTHCTL_EL2_EXT::ECV::CLEAR]);
    const VIRTUAL: u64 = bits(&[CNTHCTL_EL2_EXT::EL1TVT::SET, CNTHCTL_EL2_EXT::EL1TVCT::SET]);
    if ecv { ALWAYS | VIRTUAL } else { ALWAYS }
}
const _: () = assert!(cnthctl_guest(true) == 0x6000 && cnthctl_guest(false) == 0);

/// MDCR_EL2 for the guest (Arm ARM D23.2.100): TPM and TPMCR trap every PMU
/// access, so the guest has no PMU; HPMN gives EL1 the first `counters`
/// counters in name only (HPMN = 0 is CONSTRAINED UNPREDICTABLE without
/// FEAT_HPMN0). `counters` is cut to HPMN's 5 bits. TDA, TDOSA and TDRA
/// trap every debug register access (op0 = 2: MDSCR_EL1, the breakpoint
/// and watchpoint registers, the OS lock, the DCC, MDRAR_EL1): the debug
/// hardware is the hypervisor's, which single-steps the guest to an
/// epoch's exact end (`replica::step_to_count`), so the guest can neither
/// turn the stepping off nor see it, and reads no debug state that a host
/// debugger could make differ between boards. TDE stays clear: debug
/// exceptions go to EL2 only while stepping ([`MDCR_STEPPING`]).
pub const fn mdcr_guest(counters: u64) -> u64 {
    const NO_PMU: u64 = bits(&[MDCR_EL2::TPM::SET, MDCR_EL2::TPMCR::SET]);
    const NO_DEBUG: u64 = bits(&[
        MDCR_EL2::TDA::SET,
        MDCR_EL2::TDOSA::SET,
        MDCR_EL2::TDRA::SET,
    ]);
    NO_PMU | NO_DEBUG | MDCR_EL2::HPMN.val(counters).value
}
const _: () = assert!(mdcr_guest(6) == 0xe66 && mdcr_guest(0x3f) == 0xe7f);

/// MDCR_EL2 for the guest when the hypervisor keeps the last event
/// counter, `hpmn` (counters `hpmn..N`: INST_RETIRED epochs), for itself:
/// [`mdcr_guest`] with HPMN = `hpmn` and HPME, which enables the counters
/// from HPMN up (PMCR_EL0.E enables only those below it).
pub const fn mdcr_guest_keeping_counter(hpmn: u64) -> u64 {
    mdcr_guest(hpmn) | MDCR_EL2::HPME::SET.value
}
const _: () = assert!(mdcr_guest_keeping_counter(5) == 0xee5);

/// PMEVTYPER<n>_EL0 for INST_RETIRED epochs: event 0x08, architecturally
/// executed instructions, at EL0 and EL1 only (P = U = NSH = 0).
pub const PMEVTYPER_INST_RETIRED: u64 = bits(&[
    PMEVTYPER_EL0::P::CLEAR,
    PMEVTYPER_EL0::U::CLEAR,
    PMEVTYPER_EL0::NSH::CLEAR,
    PMEVTYPER_EL0::EVTCOUNT.val(0x08),
]);
const _: () = assert!(PMEVTYPER_INST_RETIRED == 0x08);

/// The MDCR_EL2 bit set on top of [`mdcr_guest`] while the guest is
/// single-stepped: TDE routes the software-step exception (and a guest
/// BRK, which is then given back to the guest) to EL2.
pub const MDCR_STEPPING: u64 = bits(&[MDCR_EL2::TDE::RouteToEL2Or1]);
const _: () = assert!(MDCR_STEPPING == 1 << 8);

/// MDSCR_EL1 while the guest is single-stepped: SS only (no breakpoints,
/// watchpoints or kernel debug: MDE = KDE = 0). With MDCR_EL2.TDE the debug
/// target is EL2, so EL1 and EL0 are stepped whatever the guest's
/// PSTATE.D. Zero otherwise: the register is the hypervisor's (the guest's
/// accesses trap, [`mdcr_guest`]).
pub const MDSCR_STEPPING: u64 = bits(&[MDSCR_EL1::SS::SET]);
const _: () = assert!(MDSCR_STEPPING == 1);

/// The MPIDR_EL1 the guest reads (VMPIDR_EL2): affinity 0.0.0.0, to match
/// the guest DTB's single cpu@0, and the RES1 bit.
pub const GUEST_MPIDR: u64 = bits(&[
    VMPIDR_EL2::RES1::SET,
    VMPIDR_EL2::Aff3.val(0),
    VMPIDR_EL2::Aff2.val(0),
    VMPIDR_EL2::Aff1.val(0),
    VMPIDR_EL2::Aff0.val(0),
]);
const _: () = assert!(GUEST_MPIDR == 1 << 31);

/// ICC_SRE_EL2 (IHI 0069H §12.2): the system-register interface at EL2
/// (SRE), IRQ and FIQ bypass off (DIB, DFB), and EL1 may use ICC_SRE_EL1
/// (Enable).
pub const ICC_SRE_HYP: u64 = bits(&[
    ICC_SRE_EL2::SRE::SET,
    ICC_SRE_EL2::DFB::SET,
    ICC_SRE_EL2::DIB::SET,
    ICC_SRE_EL2::ENABLE::SET,
]);
const _: () = assert!(ICC_SRE_HYP == 0xf);

/// ICH_HCR_EL2 (IHI 0069H §12.4): the virtual CPU interface on, and no
/// underflow maintenance (nothing waits for an LR; EOI maintenance is per
/// LR, `vgic::maintenance`).
pub const ICH_HCR_GUEST: u64 = bits(&[
    ICH_HCR_EL2::En::SET,
    ICH_HCR_EL2::UIE::CLEAR,
    ICH_HCR_EL2::LRENPIE::CLEAR,
    ICH_HCR_EL2::NPIE::CLEAR,
]);
const _: () = assert!(ICH_HCR_GUEST == 1);

/// ICH_HCR_EL2 with underflow maintenance (UIE: the maintenance interrupt
/// while at most one LR is valid), while interrupts wait for an LR
/// (`vgic::maintenance`). GICH_HCR has En `[0]` and UIE `[1]` too (IHI
/// 0048B §5.3.2), so the value serves both GIC versions.
pub const ICH_HCR_UNDERFLOW: u64 = bits(&[ICH_HCR_EL2::En::SET, ICH_HCR_EL2::UIE::SET]);
const _: () = assert!(ICH_HCR_UNDERFLOW == 0b11);

/// CNTHP_CTL_EL2 for an armed EL2 timer: enabled, its interrupt not masked.
pub const CNTHP_ARMED: u64 = bits(&[CNTHP_CTL_EL2::ENABLE::SET, CNTHP_CTL_EL2::IMASK::CLEAR]);
/// CNTHP_CTL_EL2 for a stopped EL2 timer.
pub const CNTHP_STOPPED: u64 = bits(&[CNTHP_CTL_EL2::ENABLE::CLEAR]);
const _: () = assert!(CNTHP_ARMED == 1 && CNTHP_STOPPED == 0);

/// PMCR_EL0 for the epoch counter: counters enabled, the cycle counter
/// 64 bits wide.
pub const PMCR_EPOCHS: u64 = bits(&[PMCR_EL0::E::SET, PMCR_EL0::LC::SET]);
const _: () = assert!(PMCR_EPOCHS == 0x41);

/// PMCCFILTR_EL0 for the epoch counter: counts at EL0 and EL1, not at EL2,
/// so the hypervisor's own instructions and ERETs are not counted.
pub const PMCCFILTR_EPOCHS: u64 = bits(&[
    PMCCFILTR_EL0::P::CLEAR,
    PMCCFILTR_EL0::U::CLEAR,
    PMCCFILTR_EL0::NSH::CLEAR,
]);
const _: () = assert!(PMCCFILTR_EPOCHS == 0);

/// The cycle counter's bit in PMCNTENSET/PMINTENSET/PMOVSCLR/PMOVSSET.
pub const PMU_CYCLE_COUNTER: u64 = bits(&[PMU_COUNTERS::C::SET]);
const _: () = assert!(PMU_CYCLE_COUNTER == 1 << 31);

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed values against the expressions they replace, written as
    /// they were (bit shifts with the Arm ARM's bit numbers).
    #[test]
    fn typed_values_equal_the_hand_built_ones() {
        let hcr = (1 << 0)
            | (1 << 1)
            | (1 << 3)
            | (1 << 4)
            | (1 << 5)
            | (1 << 13)
            | (1 << 14)
            | (1 << 18)
            | (1 << 19)
            | (1 << 31)
            | (1 << 40)
            | (1 << 41);
        assert_eq!(HCR_GUEST, hcr);
        assert_eq!(
            CPTR_GUEST,
            0xff | (1 << 8) | (1 << 9) | (1 << 12) | (1 << 13) | (1 << 30)
        );
        assert_eq!(cnthctl_guest(true), (1 << 13) | (1 << 14));
        assert_eq!(cnthctl_guest(false), 0);
        for counters in 0..64 {
            assert_eq!(
                mdcr_guest(counters),
                (1 << 11) | (1 << 10) | (1 << 9) | (1 << 6) | (1 << 5) | (counters & 0x1f)
            );
        }
        assert_eq!(MDCR_STEPPING, 1 << 8);
        assert_eq!(mdcr_guest_keeping_counter(5), mdcr_guest(5) | (1 << 7));
        assert_eq!(PMEVTYPER_INST_RETIRED, 0x08);
        assert_eq!(MDSCR_STEPPING, 1);
        assert_eq!(GUEST_MPIDR, 1 << 31);
        assert_eq!(ICC_SRE_HYP, 0xf);
        assert_eq!(ICH_HCR_GUEST, 1);
        assert_eq!((CNTHP_ARMED, CNTHP_STOPPED), (1, 0));
        assert_eq!(PMCR_EPOCHS, (1 << 0) | (1 << 6));
        assert_eq!(PMCCFILTR_EPOCHS, 0);
        assert_eq!(PMU_CYCLE_COUNTER, 1 << 31);
    }

    /// The hand-written fields sit where the Arm ARM puts them, read back
    /// through tock-registers.
    #[test]
    fn hand_written_fields_read_back() {
        use tock_registers::LocalRegisterCopy;
        let c = LocalRegisterCopy::<u64, CNTHCTL_EL2_EXT::Register>::new(cnthctl_guest(true));
        assert!(c.is_set(CNTHCTL_EL2_EXT::EL1TVT) && c.is_set(CNTHCTL_EL2_EXT::EL1TVCT));
        assert!(!c.is_set(CNTHCTL_EL2_EXT::ECV) && !c.is_set(CNTHCTL_EL2_EXT::EVNTEN));
        let p = LocalRegisterCopy::<u64, CPTR_EL2_EXT::Register>::new(CPTR_GUEST);
        assert!(p.is_set(CPTR_EL2_EXT::TZ) && p.is_set(CPTR_EL2_EXT::TSM));
        assert!(!p.is_set(CPTR_EL2_EXT::TFP));
        // PMCR_EL0.N of a Cortex-A72 (6 counters) with E and LC set.
        let pmcr = LocalRegisterCopy::<u64, PMCR_EL0::Register>::new(0x4103_3041);
        assert_eq!(pmcr.read(PMCR_EL0::N), 6);
    }
}
