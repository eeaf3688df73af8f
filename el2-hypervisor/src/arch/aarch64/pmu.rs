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
//! the hypervisor's own instructions and ERETs are not counted.

use super::sysreg::read_sysreg;

macro_rules! write_sysreg {
    ($name:expr, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the PMU belongs to the hypervisor (the guest's accesses trap).
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) v, options(nostack, preserves_flags)) };
    }};
}

/// PMCR_EL0: E (bit 0) enables, LC (bit 6) makes the cycle counter
/// overflow at 64 bits.
const PMCR_E: u64 = 1 << 0;
const PMCR_LC: u64 = 1 << 6;
/// The cycle counter's bit in PMCNTENSET/PMINTENSET/PMOVSCLR.
const CYCLE: u64 = 1 << 31;

/// The PMU's overflow interrupt (a PPI) on QEMU virt.
pub const PMU_INTID: u32 = 23;

/// Counts guest instructions for one epoch at a time.
pub struct EpochCounter {
    length: u64,
}

impl EpochCounter {
    /// Sets the PMU up; `start` begins counting.
    pub fn new(length: u64) -> Self {
        write_sysreg!("PMCR_EL0", PMCR_E | PMCR_LC);
        write_sysreg!("PMCCFILTR_EL0", 0);
        write_sysreg!("PMINTENSET_EL1", CYCLE);
        write_sysreg!("PMCNTENSET_EL0", CYCLE);
        Self { length }
    }

    pub const fn length(&self) -> u64 {
        self.length
    }

    /// Starts an epoch: the overflow interrupt comes after `length` guest
    /// instructions.
    pub fn start(&self) {
        write_sysreg!("PMOVSCLR_EL0", CYCLE);
        write_sysreg!("PMCCNTR_EL0", 0u64.wrapping_sub(self.length));
        // SAFETY: barrier only: the counter value is in place before the guest runs.
        unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
    }

    /// Guest instructions retired since `start`.
    pub fn elapsed(&self) -> u64 {
        read_sysreg!("PMCCNTR_EL0").wrapping_add(self.length)
    }

    /// Lowers the overflow interrupt (the count goes on from 0 and
    /// [`Self::elapsed`] stays right until the next `start`).
    pub fn clear_overflow(&self) {
        write_sysreg!("PMOVSCLR_EL0", CYCLE);
    }

    /// Whether the counter overflowed (the epoch is over).
    pub fn overflowed(&self) -> bool {
        read_sysreg!("PMOVSSET_EL0") & CYCLE != 0
    }
}
