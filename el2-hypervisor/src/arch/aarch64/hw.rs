//! The AArch64 implementation of the library's hardware trait
//! (`el2_hypervisor::hw::Hw`): one core's GICv3 virtual CPU interface,
//! the physical counter and the EL2 timer.

use super::{gicv3, timer};
use el2_hypervisor::hw::Hw;

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
}
