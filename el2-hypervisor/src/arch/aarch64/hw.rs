//! The AArch64 implementation of the library's hardware trait
//! (`el2_hypervisor::hw::Hw`): one core's GICv3 virtual CPU interface,
//! the physical counter and the EL2 timer, and guest RAM as the
//! fingerprint reads it.

use super::{gicv3, timer};
use el2_hypervisor::hw::Hw;
use el2_hypervisor::mem::TouchedSpan;

/// This core, as the library's exit code sees it.
pub struct Core;

impl Hw for Core {
    fn read_lr(&self, n: usize) -> u64 {
        gicv3::read_lr(n)
    }

    fn write_lr(&mut self, n: usize, value: u64) {
        gicv3::write_lr(n, value);
    }

    fn counter(&self) -> u64 {
        timer::counter()
    }

    fn frequency(&self) -> u64 {
        timer::frequency()
    }

    fn arm_timer(&mut self, deadline: Option<u64>) {
        timer::arm(deadline);
    }

    fn wait_for_interrupt(&mut self) {
        timer::wait_for_interrupt();
    }

    fn read_ram(&self, span: TouchedSpan, out: &mut [u64]) {
        let n = out.len().min(span.words());
        // SAFETY: a `TouchedSpan` is made only by `LazyRam`, for 8-byte
        // aligned guest RAM that is touched (zeroed or loaded, and mapped),
        // `n` words of it at most; with the MMU off its IPA is its address.
        let words = unsafe { core::slice::from_raw_parts(span.base() as *const u64, n) };
        out[..n].copy_from_slice(words);
    }
}
