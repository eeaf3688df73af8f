//! The epoch counter: the PMU cycle counter (PMCCNTR_EL0), which under
//! `-icount shift=0` advances exactly once per instruction and whose
//! overflow interrupt lands at the exact instruction (QEMU 10,
//! target/arm/helper.c; INST_RETIRED's overflow is delivered late there),
//! and, for cores whose overflow comes with skid, an overflow programmed
//! early and single steps to the exact count: on the same counter
//! (`tandem.epoch-counter=steps`, to prove the path on QEMU) or on an
//! event counter counting INST_RETIRED (`inst-retired`, real cores). The
//! decisions are `el2_hypervisor::replica::step_to_count`'s, the register
//! writes here.
//!
//! The guest cannot see or touch the PMU: MDCR_EL2.TPM traps all its PMU
//! accesses and the ID registers hide it (see el2_regs.rs); nor the debug
//! hardware that steps it (MDCR_EL2.TDA/TDOSA/TDRA). The counter is
//! filtered to count EL0 and EL1 only (PMCCFILTR_EL0.P = U = NSH = 0), so
//! the hypervisor's own instructions and ERETs are not counted. The values
//! are in `el2_hypervisor::regs`; the overflow interrupt's INTID is the
//! board's (`board_support::Board::interrupts`).

use super::el2_regs;
use super::sysreg::{read_sysreg, write_sysreg};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use el2_hypervisor::hw::EpochCounter;
use el2_hypervisor::options::EpochCounterKind;
use el2_hypervisor::regs::{
    MDCR_STEPPING, MDSCR_STEPPING, PMCCFILTR_EPOCHS, PMCR_EPOCHS, PMEVTYPER_INST_RETIRED,
    PMU_CYCLE_COUNTER as CYCLE,
};
use el2_hypervisor::replica::step_to_count::{
    self, Arm, Exit, Landed, NARROW_PERIOD, STEP_MARGIN, StepTally, narrow_elapsed, narrow_load,
};

/// Whether the guest is being single-stepped: read at every return to
/// the guest ([`before_return`]), which is why it is not in the counter.
static STEPPING: AtomicBool = AtomicBool::new(false);

/// The event counter the hypervisor keeps for INST_RETIRED (MDCR_EL2.HPMN
/// is set to it: `el2_regs::mdcr_guest`), or [`NO_COUNTER`].
static KEPT_COUNTER: AtomicU64 = AtomicU64::new(NO_COUNTER);
const NO_COUNTER: u64 = u64::MAX;

/// The event counter the hypervisor keeps for itself, if any.
pub fn kept_counter() -> Option<u64> {
    match KEPT_COUNTER.load(Ordering::Relaxed) {
        NO_COUNTER => None,
        n => Some(n),
    }
}

/// Where the count comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// PMCCNTR_EL0, 64 bits (PMCR_EL0.LC): one per instruction under
    /// QEMU `-icount shift=0`.
    Cycles,
    /// Event counter `n` (the last one) counting INST_RETIRED, 32 bits.
    InstRetired { n: u64 },
}

impl Source {
    /// Its bit in PMCNTENSET/PMINTENSET/PMOVSCLR/PMOVSSET.
    const fn bit(self) -> u64 {
        match self {
            Source::Cycles => CYCLE,
            Source::InstRetired { n } => 1 << n,
        }
    }

    /// How far it can be armed (`step_to_count::arm`'s period).
    const fn period(self) -> u64 {
        match self {
            Source::Cycles => u64::MAX,
            Source::InstRetired { .. } => NARROW_PERIOD,
        }
    }

    /// A target so far ahead that it does not overflow while the guest is
    /// stepped.
    const fn never(self) -> u64 {
        match self {
            Source::Cycles => 1 << 63,
            Source::InstRetired { .. } => NARROW_PERIOD / 2,
        }
    }

    /// Loads it to wrap when the count reaches `zero`, `elapsed` counted now.
    fn write(self, elapsed: u64, zero: u64) {
        match self {
            // SAFETY: the hypervisor's cycle counter (the guest's PMU
            // accesses trap); the barrier puts it in place.
            Source::Cycles => unsafe {
                write_sysreg!("PMCCNTR_EL0", elapsed.wrapping_sub(zero));
                core::arch::asm!("isb", options(nostack, preserves_flags));
            },
            // SAFETY: PMSELR_EL0 selects the hypervisor's event counter n,
            // PMXEVCNTR_EL0 is that counter (the guest's accesses trap).
            Source::InstRetired { n } => unsafe {
                write_sysreg!("PMSELR_EL0", n);
                core::arch::asm!("isb", options(nostack, preserves_flags));
                write_sysreg!("PMXEVCNTR_EL0", u64::from(narrow_load(elapsed, zero)));
                core::arch::asm!("isb", options(nostack, preserves_flags));
            },
        }
    }

    /// The count, the counter having been loaded for `zero`.
    fn elapsed(self, zero: u64) -> u64 {
        match self {
            Source::Cycles => read_sysreg!("PMCCNTR_EL0").wrapping_add(zero),
            Source::InstRetired { n } => {
                // SAFETY: PMSELR_EL0 selects the hypervisor's event counter
                // for the read below; nothing else uses the selector.
                unsafe {
                    write_sysreg!("PMSELR_EL0", n);
                    core::arch::asm!("isb", options(nostack, preserves_flags));
                }
                narrow_elapsed(zero, read_sysreg!("PMXEVCNTR_EL0") as u32)
            }
        }
    }
}

/// Counts guest instructions for one epoch at a time: the library's
/// [`EpochCounter`] on the PMU.
pub struct CycleCounter {
    /// What counts.
    source: Source,
    /// Instructions in a full epoch.
    length: u64,
    /// Where the epoch in progress ends: `length`, or earlier when
    /// [`EpochCounter::end_at`] moved it to a timer deadline.
    end: u64,
    /// Instructions before `end` at which the counter overflows: 0 for
    /// the exact counter, [`STEP_MARGIN`] on the step path.
    margin: u64,
    /// The count at which the counter wraps (it holds `elapsed - zero`).
    zero: u64,
    /// Software steps in the epoch in progress.
    steps: StepTally,
    /// The most simulated skid of an early overflow (`tandem.step-skid`).
    skid: u64,
}

impl CycleCounter {
    /// Sets the PMU up for epochs of `length` instructions counted as
    /// `kind` says; `start` begins counting.
    ///
    /// # Errors
    /// INST_RETIRED on a PMU with fewer than two event counters (one is
    /// kept from the guest's partition, which must not be empty: HPMN = 0
    /// needs FEAT_HPMN0).
    pub fn new(length: u64, kind: EpochCounterKind, skid: u64) -> Result<Self, &'static str> {
        if skid > 0 && kind != EpochCounterKind::Steps {
            return Err(
                "tandem.step-skid simulates skid on the forced step path: it needs tandem.epoch-counter=steps",
            );
        }
        let (source, margin) = match kind {
            EpochCounterKind::Cycles => (Source::Cycles, 0),
            EpochCounterKind::Steps => (Source::Cycles, STEP_MARGIN),
            EpochCounterKind::InstRetired => {
                let counters = el2_regs::pmu_counters();
                if counters < 2 {
                    return Err(
                        "tandem.epoch-counter=inst-retired needs a PMU with at least two event counters",
                    );
                }
                (Source::InstRetired { n: counters - 1 }, STEP_MARGIN)
            }
        };
        let bit = source.bit();
        // SAFETY: the PMU is the hypervisor's (MDCR_EL2.TPM/TPMCR trap the
        // guest's accesses): PMCR_EL0 enables counting with a 64-bit cycle
        // counter (E, LC), PMCCFILTR_EL0 counts EL0/EL1 only, and
        // PMINTENSET_EL1/PMCNTENSET_EL0 enable the chosen counter and its
        // overflow interrupt, which only the hypervisor takes.
        unsafe {
            write_sysreg!("PMCR_EL0", PMCR_EPOCHS);
            write_sysreg!("PMCCFILTR_EL0", PMCCFILTR_EPOCHS);
        }
        if let Source::InstRetired { n } = source {
            KEPT_COUNTER.store(n, Ordering::Relaxed);
            // SAFETY: event counter n, the last, is the hypervisor's:
            // MDCR_EL2.HPMN = n keeps it out of the guest's partition and
            // HPME enables it (`el2_regs::mdcr_guest`, written here and at
            // guest set-up); it counts INST_RETIRED at EL0/EL1 only.
            unsafe {
                write_sysreg!("MDCR_EL2", el2_regs::mdcr_guest());
                write_sysreg!("PMSELR_EL0", n);
                core::arch::asm!("isb", options(nostack, preserves_flags));
                write_sysreg!("PMXEVTYPER_EL0", PMEVTYPER_INST_RETIRED);
            }
        }
        // SAFETY: as above: the chosen counter and its interrupt on.
        unsafe {
            write_sysreg!("PMINTENSET_EL1", bit);
            write_sysreg!("PMCNTENSET_EL0", bit);
        }
        Ok(Self {
            source,
            length,
            end: length,
            margin,
            zero: length,
            steps: StepTally::default(),
            skid,
        })
    }

    /// Loads the counter to wrap when the count reaches `zero`, `elapsed`
    /// counted now.
    fn load(&mut self, elapsed: u64, zero: u64) {
        self.zero = zero;
        // SAFETY: the hypervisor's PMU, which does not count at EL2 (the
        // filter above), so nothing is lost between the read of `elapsed`
        // and this write; PMOVSCLR_EL0 drops an overflow of the old target.
        unsafe { write_sysreg!("PMOVSCLR_EL0", self.source.bit()) };
        self.source.write(elapsed, zero);
    }

    /// Arms the counter to overflow `after` instructions from now, for a
    /// window run whole (`replica::exclusive::BUDGET`): control comes back
    /// at a breakpoint, or at the latest there.
    pub fn arm_backstop(&mut self, after: u64) {
        let elapsed = self.elapsed();
        self.load(elapsed, elapsed + after);
    }

    /// Programs what takes the epoch from `elapsed` to `end`: the
    /// overflow, or single steps.
    fn arm(&mut self, elapsed: u64) {
        match step_to_count::arm(elapsed, self.end, self.margin, self.source.period()) {
            Arm::Overflow { after } => {
                stop_stepping();
                // A simulated skid lands it late by up to `skid`, wherever
                // this board's clock says (0 unless asked).
                let late = match self.skid {
                    0 => 0,
                    max => step_to_count::simulated_skid(read_sysreg!("CNTPCT_EL0"), max),
                };
                self.load(elapsed, elapsed + after + late);
            }
            Arm::Step => {
                self.load(elapsed, elapsed.wrapping_add(self.source.never()));
                start_stepping();
            }
        }
    }
}

impl EpochCounter for CycleCounter {
    fn length(&self) -> u64 {
        self.length
    }

    fn start(&mut self) {
        self.end = self.length;
        self.steps.reset();
        if self.margin == 0 {
            // The exact counter, as it always was.
            self.load(0, self.length);
        } else {
            self.arm(0);
        }
    }

    fn end(&self) -> u64 {
        self.end
    }

    fn end_at(&mut self, count: u64) {
        let elapsed = self.elapsed();
        self.end = count;
        if self.margin == 0 {
            // As in `load`, without dropping an overflow that is already
            // raised (the exact counter's behaviour since it was written):
            // loaded `count - elapsed` short of wrapping.
            self.zero = count;
            self.source.write(elapsed, count);
        } else {
            self.arm(elapsed);
        }
    }

    fn elapsed(&self) -> u64 {
        self.source.elapsed(self.zero)
    }

    fn clear_overflow(&self) {
        // SAFETY: PMOVSCLR_EL0: clears the counter's overflow flag of the
        // hypervisor's PMU, and with it the interrupt; the count runs on.
        unsafe { write_sysreg!("PMOVSCLR_EL0", self.source.bit()) };
    }

    fn overflowed(&self) -> bool {
        read_sysreg!("PMOVSSET_EL0") & self.source.bit() != 0
    }

    fn landed(&mut self) -> Landed {
        if self.margin == 0 {
            return Landed::End;
        }
        let elapsed = self.elapsed();
        let stepped = stepping();
        // A window run whole lands as a step does (`replica::exclusive`).
        let by_step = stepped || LEFT_WINDOW.swap(false, Ordering::Relaxed);
        self.steps.landed(elapsed, stepped);
        let landed = step_to_count::landed(
            elapsed,
            self.end,
            self.margin,
            self.source.period(),
            by_step,
        );
        match landed {
            Landed::Short(_) => self.arm(elapsed),
            Landed::End | Landed::Overshot { .. } => stop_stepping(),
        }
        landed
    }

    fn uncount(&mut self, n: u64) {
        // The counter holds `elapsed - zero`, and is past its overflow
        // (or loaded never to overflow while stepping).
        self.zero = self.zero.wrapping_sub(n);
    }

    fn lands_by_steps(&self) -> bool {
        self.margin > 0
    }

    fn uncount_empty_step(&mut self) {
        if stepping() && matches!(self.source, Source::Cycles) {
            self.uncount(1);
        }
    }

    fn steps(&self) -> StepTally {
        self.steps
    }
}

/// Whether the guest is being single-stepped.
pub fn stepping() -> bool {
    STEPPING.load(Ordering::Relaxed)
}

/// Whether the guest runs an exclusive window whole under breakpoints
/// (`replica::exclusive`), and whether it has just come out of one (so
/// that the landing that follows counts as a step's: `landed`).
static IN_WINDOW: AtomicBool = AtomicBool::new(false);
static LEFT_WINDOW: AtomicBool = AtomicBool::new(false);

/// DBGBCR<n>_EL1 for an instruction address match at EL1 and EL0: E
/// (bit 0), PMC = 0b11 (bits 2:1), BAS = 0b1111 (bits 8:5); HMC, SSC
/// and BT zero (an unlinked address match, Arm ARM D13.3.2).
const DBGBCR_EL1_EL0_MATCH: u64 = 1 | (0b11 << 1) | (0b1111 << 5);
/// MDSCR_EL1.MDE (bit 15): breakpoints enabled.
const MDSCR_MDE: u64 = 1 << 15;

/// Whether an exclusive window is being run under breakpoints.
pub fn in_window() -> bool {
    IN_WINDOW.load(Ordering::Relaxed)
}

/// Runs the guest to one of `exits` with no step and no exit on the way:
/// stepping off, a hardware breakpoint on each way out of the window.
pub fn run_window(exits: &[Option<u64>; 3]) {
    STEPPING.store(false, Ordering::Relaxed);
    IN_WINDOW.store(true, Ordering::Relaxed);
    let [a, b, c] = exits.map(|e| e.map_or((0, 0), |va| (va & !3, DBGBCR_EL1_EL0_MATCH)));
    // SAFETY: the debug registers are the hypervisor's (the guest's
    // accesses trap: `regs::mdcr_guest`); MDCR_EL2.TDE routes the
    // breakpoint exceptions (EC 0x30) to EL2; MDSCR_EL1.MDE enables them,
    // SS off; the ERET that follows synchronises the context.
    unsafe {
        write_sysreg!("DBGBVR0_EL1", a.0);
        write_sysreg!("DBGBCR0_EL1", a.1);
        write_sysreg!("DBGBVR1_EL1", b.0);
        write_sysreg!("DBGBCR1_EL1", b.1);
        write_sysreg!("DBGBVR2_EL1", c.0);
        write_sysreg!("DBGBCR2_EL1", c.1);
        write_sysreg!("MDSCR_EL1", MDSCR_MDE);
        write_sysreg!("MDCR_EL2", el2_regs::mdcr_guest() | MDCR_STEPPING);
    }
}

/// A breakpoint of [`run_window`] was hit: the breakpoints off, the
/// debug registers back to the guest's running values; the landing that
/// follows decides what next (`CycleCounter::landed`).
pub fn end_window() {
    IN_WINDOW.store(false, Ordering::Relaxed);
    LEFT_WINDOW.store(true, Ordering::Relaxed);
    // SAFETY: as in `run_window`: the breakpoints disabled, then as
    // `stop_stepping` leaves them.
    unsafe {
        write_sysreg!("DBGBCR0_EL1", 0);
        write_sysreg!("DBGBCR1_EL1", 0);
        write_sysreg!("DBGBCR2_EL1", 0);
        write_sysreg!("MDSCR_EL1", 0);
        write_sysreg!("MDCR_EL2", el2_regs::mdcr_guest());
    }
}

/// Run before every return to the guest from `exit`, taken with the
/// guest stepped or not (`was`): SPSR_EL2.SS as
/// `replica::step_to_count::spsr_on_return` decides. An emulated
/// instruction cleared SS (`emul::exception::skip_instruction`): it was
/// the step, and this return then steps the next one.
pub fn before_return(spsr: &mut u64, exit: Exit, was: bool) {
    *spsr = step_to_count::spsr_on_return(*spsr, exit, was, stepping());
}

fn start_stepping() {
    if stepping() {
        return;
    }
    STEPPING.store(true, Ordering::Relaxed);
    // SAFETY: MDSCR_EL1.SS and MDCR_EL2.TDE: software step on, its
    // exception (and a guest BRK) to EL2; the debug registers are the
    // hypervisor's (the guest's accesses trap: `regs::mdcr_guest`), and
    // the ERET that follows synchronises the context.
    unsafe {
        write_sysreg!("MDSCR_EL1", MDSCR_STEPPING);
        write_sysreg!("MDCR_EL2", el2_regs::mdcr_guest() | MDCR_STEPPING);
    }
}

fn stop_stepping() {
    if !stepping() {
        return;
    }
    STEPPING.store(false, Ordering::Relaxed);
    // SAFETY: the two registers of `start_stepping` back to the guest's
    // running values: no software step, debug exceptions to EL1 (none
    // can be raised there: MDSCR_EL1.MDE = KDE = 0).
    unsafe {
        write_sysreg!("MDSCR_EL1", 0);
        write_sysreg!("MDCR_EL2", el2_regs::mdcr_guest());
    }
}
