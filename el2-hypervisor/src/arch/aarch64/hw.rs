//! The AArch64 implementation of the library's hardware traits
//! (`el2_hypervisor::hw`): one core's virtual CPU interface (GICv3 or GICv2: `gic`), the
//! physical counter, the EL2 timer and guest RAM as the fingerprint reads
//! it ([`Hw`]), the console ([`Console`]), and for the replica session
//! the PMU epoch counter and the link's medium ([`ReplicaHw`]).

use super::console::{self, println};
use super::link::Medium;
use super::pmu::CycleCounter;
use super::{gic, timer};
use el2_hypervisor::hw::{Console, Hw, ReplicaHw};
use el2_hypervisor::mem::TouchedSpan;

/// This core, as the library sees it.
#[derive(Clone, Copy, Debug)]
pub struct Core;

impl Hw for Core {
    fn read_lr(&self, n: usize) -> u64 {
        gic::read_lr(n)
    }

    fn write_lr(&mut self, n: usize, value: u64) {
        gic::write_lr(n, value);
    }

    fn set_underflow(&mut self, on: bool) {
        gic::set_underflow(on);
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
        // The guest may have written these words through a Non-cacheable
        // mapping of its own, to memory, while a line the hypervisor read
        // at an earlier fingerprint still sits in the cache: clean and
        // invalidate first, so that the read sees what the guest wrote
        // either way (a dirty line of the guest's is written back).
        super::cache::clean_invalidate_to_poc(span.base(), n as u64 * 8);
        // SAFETY: a `TouchedSpan` is made only by `LazyRam`, for 8-byte
        // aligned guest RAM that is touched (zeroed or loaded, and mapped),
        // `n` words of it at most; the EL2 map is the identity, so its IPA
        // is its address at EL2.
        let words = unsafe { core::slice::from_raw_parts(span.base() as *const u64, n) };
        out[..n].copy_from_slice(words);
    }
}

impl Console for Core {
    fn write_guest(&mut self, bytes: &[u8]) {
        console::write_guest(bytes);
    }

    fn line(&mut self, line: core::fmt::Arguments<'_>) {
        println!("{line}");
    }
}

impl ReplicaHw for Core {
    type Counter = CycleCounter;
    type Transport = Medium;
}
