//! The list registers at one guest exit: read once at its start and
//! synced into the model, then filled from it and written back, every one,
//! zeros included (the protocol the module doc of [`super`] lays down).

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

    /// Lets `vgic` fill the list registers, marks them for the maintenance
    /// interrupt if interrupts still wait ([`Maintenance::after_fill`]),
    /// writes every one of them and sets underflow maintenance on or off.
    /// Only at a synchronous exit, the exact epoch boundary, or the exit
    /// that takes the maintenance interrupt. Returns the request made.
    pub fn fill(&mut self, vgic: &mut Vgic, hw: &mut impl Hw) -> Maintenance {
        let n = self.count;
        let format = vgic.lr_format();
        let waiting = vgic.fill_list_registers(&mut self.values[..n]);
        let request = Maintenance::after_fill(format, &self.values[..n], waiting);
        request.apply(format, &mut self.values[..n]);
        for (i, lr) in self.values().iter().enumerate() {
            hw.write_lr(i, *lr);
        }
        hw.set_underflow(request.underflow);
        request
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
