//! The epoch counter on QEMU: the PMU cycle counter (PMCCNTR_EL0), which
//! under `-icount shift=0` advances exactly once per instruction and whose
//! overflow interrupt lands at the exact instruction (QEMU 10,
//! target/arm/helper.c; INST_RETIRED's overflow is delivered late there).
//! On real cores the same interface is to be backed by INST_RETIRED with
//! skid handling (overflow early, then step to the exact count).
//!
//! The guest cannot see or touch the PMU: MDCR_EL2.TPM traps all its PMU
//! accesses and the ID registers hide it (see el2_regs.rs). The counter is
//! filtered to count EL0 and EL1 only (PMCCFILTR_EL0.P = U = NSH = 0), so
//! the hypervisor's own instructions and ERETs are not counted. The values
//! are in `el2_hypervisor::regs`; the overflow interrupt's INTID is the
//! board's (`board_support::Board::interrupts`).

use super::sysreg::{read_sysreg, write_sysreg};
use el2_hypervisor::hw::EpochCounter;
use el2_hypervisor::regs::{PMCCFILTR_EPOCHS, PMCR_EPOCHS, PMU_CYCLE_COUNTER as CYCLE};

/// Counts guest instructions for one epoch at a time: the library's
/// [`EpochCounter`] on the PMU cycle counter.
pub struct CycleCounter {
    /// Instructions in a full epoch.
    length: u64,
    /// Where the epoch in progress ends: `length`, or earlier when
    /// [`EpochCounter::end_at`] moved it to a timer deadline.
    end: u64,
}

impl CycleCounter {
    /// Sets the PMU up; `start` begins counting.
    pub fn new(length: u64) -> Self {
        // SAFETY: the PMU is the hypervisor's (MDCR_EL2.TPM/TPMCR trap the
        // guest's accesses): PMCR_EL0 enables counting with a 64-bit cycle
        // counter (E, LC), PMCCFILTR_EL0 counts EL0/EL1 only, and
        // PMINTENSET_EL1/PMCNTENSET_EL0 (C) enable the cycle counter and
        // its overflow interrupt, which only the hypervisor takes.
        unsafe {
            write_sysreg!("PMCR_EL0", PMCR_EPOCHS);
            write_sysreg!("PMCCFILTR_EL0", PMCCFILTR_EPOCHS);
            write_sysreg!("PMINTENSET_EL1", CYCLE);
            write_sysreg!("PMCNTENSET_EL0", CYCLE);
        }
        Self {
            length,
            end: length,
        }
    }
}

impl EpochCounter for CycleCounter {
    fn length(&self) -> u64 {
        self.length
    }

    fn start(&mut self) {
        self.end = self.length;
        // SAFETY: the hypervisor's PMU: PMOVSCLR_EL0 (C) lowers a stale
        // overflow, PMCCNTR_EL0 is loaded `length` counts short of
        // wrapping; the barrier puts both in place before the guest runs.
        unsafe {
            write_sysreg!("PMOVSCLR_EL0", CYCLE);
            write_sysreg!("PMCCNTR_EL0", 0u64.wrapping_sub(self.length));
            core::arch::asm!("isb", options(nostack, preserves_flags));
        }
    }

    fn end(&self) -> u64 {
        self.end
    }

    fn end_at(&mut self, count: u64) {
        let elapsed = self.elapsed();
        self.end = count;
        // SAFETY: the hypervisor's PMU, which does not count at EL2 (the
        // filter above), so nothing is lost between the read and this
        // write: PMCCNTR_EL0 is loaded `count - elapsed` short of wrapping,
        // and `elapsed` stays right against the new end.
        unsafe {
            write_sysreg!("PMCCNTR_EL0", elapsed.wrapping_sub(count));
            core::arch::asm!("isb", options(nostack, preserves_flags));
        }
    }

    fn elapsed(&self) -> u64 {
        read_sysreg!("PMCCNTR_EL0").wrapping_add(self.end)
    }

    fn clear_overflow(&self) {
        // SAFETY: PMOVSCLR_EL0 (C): clears the cycle counter's overflow flag
        // of the hypervisor's PMU, and with it the interrupt; the count runs on.
        unsafe { write_sysreg!("PMOVSCLR_EL0", CYCLE) };
    }

    fn overflowed(&self) -> bool {
        read_sysreg!("PMOVSSET_EL0") & CYCLE != 0
    }
}
