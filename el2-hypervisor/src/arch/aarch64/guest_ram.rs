//! AArch64, EL2 with the MMU off: the hypervisor's writes to guest RAM
//! after entry (a block zeroed on the guest's first touch) and the barrier
//! that publishes a new stage-2 mapping.
//!
//! With the MMU off, EL2 data accesses are to identity (physical)
//! addresses and do not allocate in the caches; under QEMU TCG, which has
//! no caches, that is all. On a real core a zeroed block must also be
//! cleaned and invalidated to the point of coherency before the guest
//! maps it cacheable (as the copies before entry must; docs/design.md,
//! "Boot").

use el2_hypervisor::mem::FreshBlock;

/// Zeroes a block of guest RAM the guest touches for the first time.
pub fn zero(block: &FreshBlock) {
    let r = block.region();
    // SAFETY: a `FreshBlock` is made only by `LazyRam::first_touch`, for a
    // block inside guest RAM (checked against the board's RAM at boot)
    // that is not yet mapped at stage 2: nothing else uses it, the guest
    // cannot see it, and the hypervisor's own memory is below guest RAM.
    unsafe { core::ptr::write_bytes(r.base as *mut u8, 0, r.size as usize) };
}

/// Makes stage-2 table writes visible to the table walker before the guest
/// runs again. Only invalid entries were filled (`Stage2::map`), so no TLB
/// entry can hold them: no invalidation is needed.
pub fn publish_stage2() {
    // SAFETY: a barrier; no memory or register is changed.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}
