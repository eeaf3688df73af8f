//! AArch64, EL2: data- and instruction-cache maintenance by address, for
//! memory the hypervisor writes through its cacheable map and something
//! else then reads without the cache (the guest with its MMU off, a
//! device), and for stale lines before the caches go on.
//!
//! The rules (Arm ARM DDI 0487, "Data and unified caches" and
//! "Mismatched memory attributes"): a cacheable write may sit in a
//! cache, dirty, while memory holds the old value; an observer that reads
//! Non-cacheable (the guest before it turns its MMU on: with stage 1 off
//! its data accesses are Device-nGnRnE and its fetches Non-cacheable,
//! "The effects of disabling an address translation stage") sees memory.
//! `DC CIVAC` writes a dirty line back to the Point of Coherency and
//! drops it; the `DSB` completes the maintenance before what follows.
//! Under QEMU TCG, which has no caches, all of this costs only the loop.

use super::sysreg::read_sysreg;
use el2_hypervisor::mem::cache_lines::{dcache_line, lines};

fn line() -> u64 {
    dcache_line(read_sysreg!("CTR_EL0"))
}

/// Cleans and invalidates `base..base + size` to the Point of Coherency:
/// memory then holds what the hypervisor wrote, and no line of it stays
/// in a data cache.
pub fn clean_invalidate_to_poc(base: u64, size: u64) {
    for a in lines(base, size, line()) {
        // SAFETY: data-cache maintenance by VA: writes a dirty line back
        // and invalidates it; what the memory holds does not change for any
        // observer. An address outside the EL2 map would fault, and every
        // caller passes RAM, which the map holds.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) a, options(nostack, preserves_flags)) };
    }
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Invalidates `base..base + size` in the data caches without cleaning:
/// drops lines that predate what was written there with the caches off.
///
/// # Safety
/// Only with the data cache off (SCTLR_EL2.C = 0), when no line of the
/// range holds anything newer than memory: an invalidated dirty line loses
/// its data.
pub unsafe fn invalidate_to_poc(base: u64, size: u64) {
    for a in lines(base, size, line()) {
        // SAFETY: the caller's contract: nothing in these lines is newer
        // than memory, so dropping them loses nothing.
        unsafe { core::arch::asm!("dc ivac, {}", in(reg) a, options(nostack, preserves_flags)) };
    }
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Invalidates the whole instruction cache (to the Point of Unification)
/// on this core, so that code written as data is fetched afresh.
pub fn invalidate_icache() {
    // SAFETY: instruction-cache invalidation and barriers; no data changes.
    unsafe {
        core::arch::asm!(
            "ic iallu",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
