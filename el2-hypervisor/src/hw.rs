//! What the library's exit code needs of the hardware, as a trait the
//! board's arch layer implements (`arch/aarch64/hw.rs`) and host tests fake.
//!
//! Only what library code uses is here: the list registers, which
//! [`crate::vgic::ExitListRegisters`] reads and writes at every exit, and
//! the physical counter and the EL2 timer, over which
//! [`crate::vm_core::clock`] keeps guest time and sleeps, and guest RAM,
//! which the fingerprint reads only where [`crate::mem::LazyRam`] says it
//! is touched (so that a fingerprint never commits host memory). The epoch
//! counter joins it when the code that uses it moves out of the board
//! (the replica engine's board side, `runtime/replica.rs`, holds it
//! today).

use crate::mem::TouchedSpan;

/// The hardware one core's trap handling touches.
pub trait Hw {
    /// List register `n` of the virtual CPU interface (`ICH_LR<n>_EL2`;
    /// `n` is below the count the hardware reports).
    fn read_lr(&self, n: usize) -> u64;

    /// Writes list register `n`.
    fn write_lr(&mut self, n: usize, value: u64);

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
