//! The exit protocol over a fake virtual CPU interface: read and sync at
//! the start, fill at the end and write back each LR whose value changed.

use super::boot::linux_boot;
use super::*;
use crate::hw::Hw;
use crate::vgic::ExitListRegisters;
use alloc::vec::Vec;
use core::cell::RefCell;

/// Four list registers, and every access the exit code makes.
#[derive(Default)]
pub(super) struct FakeCpuInterface {
    pub(super) lrs: [u64; 4],
    reads: RefCell<Vec<usize>>,
    pub(super) writes: Vec<(usize, u64)>,
    underflow: bool,
}

impl Hw for FakeCpuInterface {
    fn read_lr(&self, n: usize) -> u64 {
        self.reads.borrow_mut().push(n);
        self.lrs[n]
    }

    fn write_lr(&mut self, n: usize, value: u64) {
        self.writes.push((n, value));
        self.lrs[n] = value;
    }

    fn set_underflow(&mut self, on: bool) {
        self.underflow = on;
    }

    // The exit code touches only the list registers.
    fn counter(&self) -> u64 {
        unreachable!("the exit code reads no counter")
    }

    fn frequency(&self) -> u64 {
        unreachable!("the exit code reads no frequency")
    }

    fn arm_timer(&mut self, _: Option<u64>) {
        unreachable!("the exit code arms no timer")
    }

    fn wait_for_interrupt(&mut self) {
        unreachable!("the exit code does not wait")
    }

    fn read_ram(&self, _: crate::mem::TouchedSpan, _: &mut [u64]) {
        unreachable!("the exit code reads no guest RAM")
    }
}

const PENDING: u64 = 0b01 << 62;
const ACTIVE: u64 = 0b10 << 62;

#[test]
fn an_interrupt_goes_in_is_taken_and_comes_out() {
    let mut g = linux_boot();
    let mut hw = FakeCpuInterface::default();
    g.set_level(VTIMER, true).unwrap();

    // Exit 1: nothing in the LRs yet; the fill injects the timer.
    let mut lrs = ExitListRegisters::sync(&mut g, &hw, 4);
    assert_eq!(*hw.reads.borrow(), [0, 1, 2, 3]);
    assert!(!lrs.any_pending(&g));
    lrs.fill(&mut g, &mut hw);
    assert_eq!(hw.lrs[0] & (0b11 << 62), PENDING);
    assert_eq!(hw.lrs[0] & 0xffff_ffff, u64::from(VTIMER));
    assert!(lrs.any_pending(&g));
    // Only the LR that changed is written; the empty ones read 0 and stay 0.
    assert_eq!(hw.writes.iter().map(|w| w.0).collect::<Vec<_>>(), [0]);
    assert_eq!(&hw.lrs[1..], &[0, 0, 0]);

    // An exit at which nothing changed writes nothing.
    let mut lrs = ExitListRegisters::sync(&mut g, &hw, 4);
    hw.writes.clear();
    lrs.fill(&mut g, &mut hw);
    assert_eq!(hw.writes, []);

    // The guest acknowledges in hardware; exit 2 sees it before anything
    // is emulated: the model has the interrupt active.
    hw.lrs[0] = hw.lrs[0] & !(0b11 << 62) | ACTIVE;
    let lrs = ExitListRegisters::sync(&mut g, &hw, 4);
    assert!(!lrs.any_pending(&g));
    assert!(g.irq(VTIMER).unwrap().active);

    // It quiets the timer and EOIs (the state goes to invalid, the vINTID
    // stays); exit 3 releases the LR and writes 0 over it, and only it.
    hw.lrs[0] &= !(0b11 << 62);
    assert_ne!(hw.lrs[0], 0);
    g.set_level(VTIMER, false).unwrap();
    let mut lrs = ExitListRegisters::sync(&mut g, &hw, 4);
    assert!(!g.irq(VTIMER).unwrap().active);
    hw.writes.clear();
    lrs.fill(&mut g, &mut hw);
    assert_eq!(hw.writes, [(0, 0)]);
    assert_eq!(g.list_register_owner(0), None);
}

#[test]
fn only_the_registers_the_hardware_has_are_touched() {
    let mut g = linux_boot();
    let mut hw = FakeCpuInterface::default();
    let mut lrs = ExitListRegisters::sync(&mut g, &hw, 2);
    assert_eq!(lrs.values().len(), 2);
    g.set_level(VTIMER, true).unwrap();
    lrs.fill(&mut g, &mut hw);
    assert_eq!(*hw.reads.borrow(), [0, 1]);
    assert_eq!(hw.writes.iter().map(|w| w.0).collect::<Vec<_>>(), [0]);
}

#[test]
fn a_register_the_guest_changed_is_written_even_to_the_value_the_model_had() {
    // The comparison is against what this exit read, not against the
    // last fill: the guest took and EOId the timer while its line stayed
    // high, and the model offers it pending again, the value of the
    // first fill, which the hardware no longer holds.
    let mut g = linux_boot();
    let mut hw = FakeCpuInterface::default();
    g.set_level(VTIMER, true).unwrap();
    let mut lrs = ExitListRegisters::sync(&mut g, &hw, 4);
    lrs.fill(&mut g, &mut hw);
    let filled = hw.lrs[0];
    // The guest acknowledges and EOIs while the line stays high: the model
    // offers it pending again, the very value of the first fill.
    hw.lrs[0] = filled & !(0b11 << 62);
    let mut lrs = ExitListRegisters::sync(&mut g, &hw, 4);
    hw.writes.clear();
    lrs.fill(&mut g, &mut hw);
    assert_eq!(hw.writes, [(0, filled)]);
}
