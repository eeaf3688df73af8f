//! The list registers at one guest exit: read once at its start and
//! synced into the model, then filled from it and written back (the
//! protocol the module doc of [`super`] lays down). When the model has not
//! changed since the last fill and the guest has not touched the registers
//! ([`Vgic::needs_fill`]), the fill is skipped. A list register whose
//! new value is the one read at this exit is not written again: nothing
//! but the guest's own CPU interface changes a list register, and it does
//! not run during the exit, so the write would change nothing (under QEMU
//! TCG each ICH_LR<n>_EL2 write is a helper call that re-evaluates the
//! virtual CPU interface). The skipped fill was most of the hypervisor's
//! instructions in a free-mode boot: some 9,000 per exit, scanning every
//! INTID three times (docs/measurements.md).

use super::maintenance::{self, Maintenance};
use super::{LrFormat, MAX_LIST_REGISTERS, Vgic};
use crate::hw::Hw;

/// The list registers as read at an exit: the guest changes them only
/// while it runs, so one read serves the sync, the idle check and the
/// fill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitListRegisters {
    values: [u64; MAX_LIST_REGISTERS],
    count: usize,
}

impl ExitListRegisters {
    /// Reads the first `count` list registers (at most
    /// [`MAX_LIST_REGISTERS`]) and folds what the guest did to them into
    /// `vgic`. Call it first at every exit, before anything is emulated.
    pub fn sync(vgic: &mut Vgic, hw: &impl Hw, count: usize) -> Self {
        let count = count.min(MAX_LIST_REGISTERS);
        let mut values = [0; MAX_LIST_REGISTERS];
        for (i, lr) in values.iter_mut().enumerate().take(count) {
            *lr = hw.read_lr(i);
        }
        vgic.sync_from_list_registers(&values[..count]);
        ExitListRegisters { values, count }
    }

    /// The values read (or, after [`Self::fill`], written).
    pub fn values(&self) -> &[u64] {
        &self.values[..self.count]
    }

    /// One of them holds a pending interrupt the guest has yet to take.
    pub fn any_pending(&self, vgic: &Vgic) -> bool {
        let format = vgic.lr_format();
        self.values().iter().any(|&lr| format.state(lr).pending())
    }

    /// Lets `vgic` fill the list registers (marked for the maintenance
    /// interrupt while interrupts wait: [`Maintenance::after_fill`]),
    /// writes each one whose value changed (zeros included: a register
    /// emptied is written) and sets underflow maintenance on or off. Only
    /// at a synchronous exit, the exact epoch boundary, or the exit that
    /// takes the maintenance interrupt. Returns the request made, or
    /// `None` when the fill was skipped (nothing changed since the last
    /// one, whose request stands).
    pub fn fill(&mut self, vgic: &mut Vgic, hw: &mut impl Hw) -> Option<Maintenance> {
        if !vgic.needs_fill() {
            // Nothing changed since the last fill, which wrote what the
            // registers hold: a fill would scan every INTID to write the
            // same values. The host tests check that claim at every skip.
            #[cfg(debug_assertions)]
            {
                let mut model = vgic.clone();
                let mut values = self.values;
                model.fill_list_registers(&mut values[..self.count]);
                debug_assert_eq!(
                    values, self.values,
                    "a skipped fill would have changed the LRs"
                );
                debug_assert_eq!(&model, vgic, "a skipped fill would have changed the model");
            }
            return None;
        }
        let n = self.count;
        let read = self.values;
        let waiting = vgic.fill_list_registers(&mut self.values[..n]);
        for (i, (lr, old)) in self.values().iter().zip(read.iter()).enumerate() {
            if lr != old {
                hw.write_lr(i, *lr);
            }
        }
        let request = Maintenance::after_fill(vgic.lr_format(), self.values(), waiting);
        hw.set_underflow(request.underflow);
        Some(request)
    }
}

/// At the exit that takes the maintenance interrupt, before it is ended:
/// lowers its level without changing anything the guest sees (zeroes the
/// invalid LRs that still carry an EOI bit, turns underflow off:
/// [`maintenance::quiet`]). The fill that follows asks again if need be.
pub fn quiet_maintenance(hw: &mut impl Hw, format: LrFormat, count: usize) {
    let count = count.min(MAX_LIST_REGISTERS);
    let mut values = [0; MAX_LIST_REGISTERS];
    for (i, lr) in values.iter_mut().enumerate().take(count) {
        *lr = hw.read_lr(i);
    }
    let zero = maintenance::quiet(format, &values[..count]);
    for i in 0..count {
        if zero >> i & 1 != 0 {
            hw.write_lr(i, 0);
        }
    }
    hw.set_underflow(false);
}
