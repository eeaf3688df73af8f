//! Parking the secondary cores (AArch64 layer): their spin-table release
//! words written, an event sent, and each core's report awaited. Which
//! cores, and whether their release words may be written, is decided in
//! the library (`el2_hypervisor::secondaries`).

use board_support::SpinTableCpu;
use core::sync::atomic::Ordering;

/// The image's bounds (bootstub/link.ld).
pub fn image_region() -> board_support::Region {
    unsafe extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    let start = core::ptr::addr_of!(__image_start) as u64;
    let end = core::ptr::addr_of!(__image_end) as u64;
    board_support::Region::new(start, end - start)
}

/// The boot core's MPIDR_EL1.
pub fn boot_mpidr() -> u64 {
    let v: u64;
    // SAFETY: reads MPIDR_EL1, which has no side effects.
    unsafe { core::arch::asm!("mrs {}, MPIDR_EL1", out(reg) v, options(nomem, nostack)) };
    v
}

/// Sends each core to `secondary_park`.
///
/// # Safety
/// Each `release_addr` must be a word of the board's spin table that the
/// library checked (`secondaries::to_release`): hypervisor RAM, outside
/// the image, read by nothing but that waiting core.
pub unsafe fn release(cpus: &[SpinTableCpu]) {
    let entry = bootstub::secondary_park as *const () as u64;
    for c in cpus {
        let word = c.release_addr as *mut u64;
        // SAFETY: the caller vouches for the address (above). The write is
        // cleaned to the point of coherency (`dc civac`) for a core that
        // reads it with its caches off.
        unsafe {
            core::ptr::write_volatile(word, entry);
            core::arch::asm!("dc civac, {}", in(reg) word, options(nostack));
        }
    }
    // SAFETY: barriers and an event: the writes reach memory before the
    // waiting cores (in WFE) are woken to read them.
    unsafe { core::arch::asm!("dsb sy", "sev", options(nostack)) };
}

/// Waits up to `timeout_ticks` of the physical counter for every core in
/// `cpus` to report itself parked; returns the affinities of those that
/// did not.
pub fn wait_parked(
    cpus: &[SpinTableCpu],
    timeout_ticks: u64,
) -> heapless::Vec<u64, { board_support::MAX_CPUS }> {
    let parked = |c: &SpinTableCpu| {
        bootstub::SECONDARY_PARKED
            .get(c.mpidr as usize)
            .is_some_and(|s| {
                // SAFETY: cache maintenance of the flag's own line. The
                // parked core stores it with its MMU and caches off (to
                // memory); this core has its caches on (`mmu::enable`), so
                // a stale line must not hide the store: clean and
                // invalidate it to the point of coherency first.
                unsafe {
                    core::arch::asm!("dc civac, {}", "dsb sy", in(reg) s.as_ptr(), options(nostack));
                }
                s.load(Ordering::Acquire) != 0
            })
    };
    let start = super::timer::counter();
    while !cpus.iter().all(parked) && super::timer::counter() - start < timeout_ticks {
        core::hint::spin_loop();
    }
    cpus.iter()
        .filter(|c| !parked(c))
        .map(|c| c.mpidr)
        .collect()
}
