//! Trap counts by kind: printed when the guest powers off, and the raw
//! material for choosing epoch lengths later.

use core::fmt;

/// What a trap was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum TrapKind {
    CounterRead,
    TimerRegister,
    IdRegister,
    MmioRead,
    MmioWrite,
    /// A read of the memory-mapped timer's counter (CNTPCT/CNTVCT in its
    /// frame, a 32-bit half or whole): the guest's time on a core without
    /// FEAT_ECV (`emul::timer_mem`). Not counted as an `MmioRead` too.
    MmioCounter,
    Hvc,
    Smc,
    Wfi,
    Wfe,
    Irq,
    /// A trapped SGI register write (ICC_SGI1R_EL1 and friends): the
    /// guest sending itself an interrupt (Linux's irq_work).
    Sgi,
    /// An exception the hypervisor injected into the guest (undefined
    /// instruction, external abort).
    Injected,
    /// The guest's first touch of a block of its RAM (`mem::lazy_ram`):
    /// the block zeroed and mapped at stage 2, the access retried.
    FirstTouch,
    /// A maintenance interrupt (`vgic::maintenance`): the guest freed a
    /// list register while interrupts waited for one; refilled.
    Maintenance,
    /// A debug register access (`trap::sysreg::SysRegRoute::Debug`).
    DebugRegister,
    /// A software step to an epoch's exact end (`replica::step_to_count`).
    Step,
    /// An exit inside one of the guest's exclusive windows, rewound to
    /// its load-exclusive and run again whole (`replica::exclusive`).
    ExclusiveWindow,
}

const KINDS: usize = 18;
const NAMES: [&str; KINDS] = [
    "counter-read",
    "timer-register",
    "id-register",
    "mmio-read",
    "mmio-write",
    "mmio-counter",
    "hvc",
    "smc",
    "wfi",
    "wfe",
    "irq",
    "sgi",
    "injected",
    "first-touch",
    "maintenance",
    "debug-register",
    "step",
    "exclusive-window",
];

/// Counters, one per [`TrapKind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapCounts([u64; KINDS]);

impl TrapCounts {
    pub const fn new() -> Self {
        Self([0; KINDS])
    }
    pub fn count(&mut self, kind: TrapKind) {
        let c = &mut self.0[kind as usize];
        *c = c.wrapping_add(1);
    }
    pub fn get(&self, kind: TrapKind) -> u64 {
        self.0[kind as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl fmt::Display for TrapCounts {
    /// `traps: counter-read=12 timer-register=3 ... total=N`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("traps:")?;
        for (name, n) in NAMES.iter().zip(self.0.iter()) {
            write!(f, " {name}={n}")?;
        }
        write!(f, " total={}", self.total())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn counts_and_prints() {
        let mut t = TrapCounts::new();
        t.count(TrapKind::CounterRead);
        t.count(TrapKind::CounterRead);
        t.count(TrapKind::Injected);
        assert_eq!(t.get(TrapKind::CounterRead), 2);
        let s = t.to_string();
        assert!(
            s.starts_with("traps: counter-read=2 timer-register=0"),
            "{s}"
        );
        assert!(
            s.ends_with("injected=1 first-touch=0 maintenance=0 debug-register=0 step=0 exclusive-window=0 total=3"),
            "{s}"
        );
    }
}
