//! What the library needs of the hardware, as traits the board's arch
//! layer implements (`arch/aarch64/hw.rs`) and host tests fake.
//!
//! Only what library code uses is here: the list registers, which
//! [`crate::vgic::ExitListRegisters`] reads and writes at every exit, and
//! the physical counter and the EL2 timer, over which
//! [`crate::vm_core::clock`] keeps guest time, the board's clock in µs
//! and sleeps, and guest RAM, which the fingerprint reads only where
//! [`crate::mem::LazyRam`] says it is touched (so that a fingerprint never
//! commits host memory) ([`Hw`]); the epoch counter ([`EpochCounter`]);
//! the console ([`Console`]); and, for the replica session
//! ([`crate::replica::session`]), all of these with the link's transport
//! ([`ReplicaHw`]).

use core::fmt;
use replication_link::transport::PacketTransport;

use crate::mem::TouchedSpan;
use crate::replica::step_to_count::Landed;

/// The hardware one core's trap handling touches.
pub trait Hw {
    /// List register `n` of the virtual CPU interface (`ICH_LR<n>_EL2`;
    /// `n` is below the count the hardware reports).
    fn read_lr(&self, n: usize) -> u64;

    /// Writes list register `n`.
    fn write_lr(&mut self, n: usize, value: u64);

    /// Turns underflow maintenance on or off (ICH_HCR_EL2.UIE, GICH_HCR.UIE:
    /// the maintenance interrupt while at most one LR is valid), the
    /// virtual CPU interface staying enabled ([`crate::vgic::maintenance`]).
    fn set_underflow(&mut self, on: bool);

    /// The physical counter (CNTPCT_EL0), read in program order.
    fn counter(&self) -> u64;

    /// The counter's frequency in Hz (CNTFRQ_EL0).
    fn frequency(&self) -> u64;

    /// Arms the EL2 timer to fire when the counter reaches `deadline`, or
    /// stops it (`None`).
    fn arm_timer(&mut self, deadline: Option<u64>);

    /// Waits for an interrupt (taken, at EL2, when the guest resumes).
    fn wait_for_interrupt(&mut self);

    /// Reads `out.len()` words of guest RAM from `span.base()` (`out` is
    /// never longer than `span.words()`). A [`TouchedSpan`] is made only
    /// by [`crate::mem::LazyRam`], for guest RAM it has mapped.
    fn read_ram(&self, span: TouchedSpan, out: &mut [u64]);
}

/// Counts guest instructions (EL0 and EL1 only) for one epoch at a time
/// and raises an interrupt at the epoch's end (its length, or a timer
/// deadline's instruction: [`EpochCounter::end_at`]).
pub trait EpochCounter {
    /// Guest instructions per epoch.
    fn length(&self) -> u64;

    /// Starts an epoch: the overflow comes after `length` guest
    /// instructions.
    fn start(&mut self);

    /// Where the epoch in progress ends, in guest instructions: `length`,
    /// or earlier after [`Self::end_at`].
    fn end(&self) -> u64;

    /// Moves the end of the epoch in progress to `count` guest
    /// instructions (more than [`Self::elapsed`]: a timer deadline's
    /// instruction, `replica::epoch_time`).
    fn end_at(&mut self, count: u64);

    /// Whether the epoch in progress ends before its full length.
    fn ends_early(&self) -> bool {
        self.end() < self.length()
    }

    /// Guest instructions retired since `start`.
    fn elapsed(&self) -> u64;

    /// Whether the counter overflowed (the epoch is over).
    fn overflowed(&self) -> bool;

    /// Lowers the overflow interrupt (the count goes on, and
    /// [`Self::elapsed`] stays right until the next `start`).
    fn clear_overflow(&self);

    /// The counter's overflow interrupt (after [`Self::clear_overflow`])
    /// or a software step landed: [`Landed::End`] at the epoch's end. A
    /// counter that overflows early (`replica::step_to_count`) arms what
    /// comes next, the overflow again or a single step, and says
    /// [`Landed::Short`]; or the count went past the end. An exact
    /// counter is always at the end.
    fn landed(&mut self) -> Landed {
        Landed::End
    }

    /// A software step that ran no instruction
    /// (`replica::step_to_count::stepped_nothing`) landed: a counter that
    /// counts one for it (QEMU's cycle counter under icount) takes it back.
    fn uncount_empty_step(&mut self) {}

    /// Takes back `n` counted instructions, which the guest runs again
    /// (`replica::exclusive`: a window rewound to its load-exclusive).
    fn uncount(&mut self, _n: u64) {}

    /// Whether epochs end by an early overflow and steps (and so exits
    /// land where the two boards differ: `replica::exclusive`).
    fn lands_by_steps(&self) -> bool {
        false
    }

    /// Software steps taken in the epoch in progress.
    fn steps(&self) -> crate::replica::step_to_count::StepTally {
        Default::default()
    }
}

/// The board's console: the guest's output and the hypervisor's lines.
pub trait Console {
    /// The guest's console output, as the outside world sees it.
    fn write_guest(&mut self, bytes: &[u8]);

    /// One line of the hypervisor's (a newline follows it).
    fn line(&mut self, line: fmt::Arguments<'_>);
}

/// What the replica session ([`crate::replica::session`]) needs of the
/// board: the counter, timer and clock ([`Hw`]), the console, and the
/// types of its epoch counter and of the link's transport.
pub trait ReplicaHw: Hw + Console {
    /// The epoch counter.
    type Counter: EpochCounter;
    /// What carries the replication link's packets.
    type Transport: PacketTransport;
}
