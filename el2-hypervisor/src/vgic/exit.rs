//! The list registers at one guest exit: read once at its start and
//! synced into the model, then filled from it and written back, every one,
//! zeros included (the protocol the module doc of [`super`] lays down).

use super::{MAX_LIST_REGISTERS, Vgic};
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

    /// Lets `vgic` fill the list registers and writes every one of them.
    /// Only at a synchronous exit (or the exact epoch boundary).
    pub fn fill(&mut self, vgic: &mut Vgic, hw: &mut impl Hw) {
        let n = self.count;
        vgic.fill_list_registers(&mut self.values[..n]);
        for (i, lr) in self.values().iter().enumerate() {
            hw.write_lr(i, *lr);
        }
    }
}
