//! What the library's exit code needs of the hardware, as a trait the
//! board's arch layer implements (`arch/aarch64/hw.rs`) and host tests fake.
//!
//! Only what library code uses is here: so far the list registers, which
//! [`crate::vgic::ExitListRegisters`] reads and writes at every exit. The
//! counter, the EL2 timer and the epoch counter join it as the code that
//! uses them moves out of the board (the replica engine's board side,
//! `runtime/replica.rs`, holds the epoch counter today).

/// The hardware one core's trap handling touches.
pub trait Hw {
    /// List register `n` of the virtual CPU interface (`ICH_LR<n>_EL2`;
    /// `n` is below the count the hardware reports).
    fn read_lr(&self, n: usize) -> u64;

    /// Writes list register `n`.
    fn write_lr(&mut self, n: usize, value: u64);
}
