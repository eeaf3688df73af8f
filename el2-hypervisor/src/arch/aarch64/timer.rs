//! The EL2 physical timer (CNTHP_*), which wakes the hypervisor when the
//! guest's emulated timer is due, and the physical counter.

use super::sysreg::{read_sysreg, write_sysreg};
use el2_hypervisor::regs::{CNTHP_ARMED, CNTHP_STOPPED};
use spin::Mutex;

/// What the timer was last armed for (`None`: not since boot). Without
/// epochs the timer is armed before every guest entry, nearly always for
/// the deadline it already has; under QEMU TCG each CNTHP_* write
/// re-evaluates the timer and re-schedules one of QEMU's own timers
/// (target/arm/helper.c, gt_recalc_timer), so an unchanged deadline is not
/// written again: the registers already hold what the write would put
/// there.
static ARMED: Mutex<Option<Option<u64>>> = Mutex::new(None);

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
/// or stops it (`None`).
pub fn arm(deadline: Option<u64>) {
    let mut armed = ARMED.lock();
    if *armed == Some(deadline) {
        return;
    }
    *armed = Some(deadline);
    let (cval, ctl) = match deadline {
        Some(d) => (d, CNTHP_ARMED),
        None => (u64::MAX, CNTHP_STOPPED),
    };
    // SAFETY: CNTHP_CVAL_EL2 and CNTHP_CTL_EL2 (ENABLE, IMASK) belong to the
    // hypervisor alone (EL1 has no access to the EL2 timer); any deadline
    // only decides when EL2 is woken. The ISB makes them take effect.
    unsafe {
        write_sysreg!("CNTHP_CVAL_EL2", cval);
        write_sysreg!("CNTHP_CTL_EL2", ctl);
        core::arch::asm!("isb", options(nostack, preserves_flags));
    }
}

/// Waits for an interrupt (exceptions stay masked at EL2: WFI still wakes
/// on a pending one, which is then taken when the guest resumes).
pub fn wait_for_interrupt() {
    // SAFETY: WFI has no effect but waiting.
    unsafe { core::arch::asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}
