//! AArch64, EL2: the hypervisor's writes to guest RAM (the kernel,
//! initramfs and DTB before entry, a block zeroed on the guest's first
//! touch) made visible to the guest, and the barrier that publishes a new
//! stage-2 mapping.
//!
//! The hypervisor writes guest RAM through its own map, Normal Write-Back
//! (`mem::el2_layout`), so its writes may sit in a data cache. The guest
//! starts with its MMU off, and may map any of its memory Non-cacheable
//! later: such accesses read memory, not the caches (Arm ARM DDI 0487,
//! "The effects of disabling an address translation stage", "Mismatched
//! memory attributes"). So every range the hypervisor wrote is cleaned and
//! invalidated to the Point of Coherency before stage 2 lets the guest see
//! it, and the instruction cache is invalidated (the Linux boot protocol:
//! no stale instruction-cache entries for the loaded image). Stage-2
//! attributes alone cannot make this unnecessary on a Cortex-A72: forcing
//! the guest's accesses Write-Back needs FEAT_S2FWB (HCR_EL2.FWB), which
//! it lacks, and HCR_EL2.DC covers only the guest's MMU-off phase.

use super::cache;
use board_support::Region;
use el2_hypervisor::mem::FreshBlock;

/// Hands `r`, just written by the hypervisor, to the guest: memory holds
/// it and no cache line of it is left (data or instruction).
pub fn hand_over(r: Region) {
    cache::clean_invalidate_to_poc(r.base, r.size);
    cache::invalidate_icache();
}

/// Zeroes a block of guest RAM the guest touches for the first time, and
/// hands it over ([`hand_over`]).
pub fn zero(block: &FreshBlock) {
    let r = block.region();
    // SAFETY: a `FreshBlock` is made only by `LazyRam::first_touch`, for a
    // block inside guest RAM (checked against the board's RAM at boot)
    // that is not yet mapped at stage 2: nothing else uses it, the guest
    // cannot see it, and the hypervisor's own memory is below guest RAM.
    unsafe { core::ptr::write_bytes(r.base as *mut u8, 0, r.size as usize) };
    hand_over(r);
}

/// Makes stage-2 table writes visible to the table walker before the guest
/// runs again. Only invalid entries were filled (`Stage2::map`), so no TLB
/// entry can hold them: no invalidation is needed. The walker reads the
/// tables Write-Back (VTCR_EL2.IRGN0/ORGN0), as the hypervisor writes
/// them: no cache maintenance either.
pub fn publish_stage2() {
    // SAFETY: a barrier; no memory or register is changed.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}
