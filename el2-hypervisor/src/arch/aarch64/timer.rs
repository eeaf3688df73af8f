//! The EL2 physical timer (CNTHP_*), which wakes the hypervisor when the
//! guest's emulated timer is due, and the physical counter.

use super::sysreg::read_sysreg;

/// The physical counter (CNTPCT_EL0), read at EL2 (never trapped here).
pub fn counter() -> u64 {
    // SAFETY: barrier only; an ISB keeps the read from being hoisted.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
    read_sysreg!("CNTPCT_EL0")
}

/// Counter frequency in Hz (CNTFRQ_EL0).
pub fn frequency() -> u64 {
    read_sysreg!("CNTFRQ_EL0")
}

/// Arms the EL2 physical timer to fire when the counter reaches `deadline`,
/// or stops it (`None`). CNTHP_CTL_EL2: ENABLE bit 0, IMASK bit 1.
pub fn arm(deadline: Option<u64>) {
    let (cval, ctl) = match deadline {
        Some(d) => (d, 1u64),
        None => (u64::MAX, 0u64),
    };
    // SAFETY: the EL2 timer belongs to the hypervisor alone.
    unsafe {
        core::arch::asm!(
            "msr CNTHP_CVAL_EL2, {}", "msr CNTHP_CTL_EL2, {}", "isb",
            in(reg) cval, in(reg) ctl, options(nostack, preserves_flags)
        )
    };
}

/// Waits for an interrupt (exceptions stay masked at EL2: WFI still wakes
/// on a pending one, which is then taken when the guest resumes).
pub fn wait_for_interrupt() {
    // SAFETY: WFI has no effect but waiting.
    unsafe { core::arch::asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}
