//! How a board stops, and the status QEMU exits with.
//!
//! PSCI `SYSTEM_OFF` makes QEMU exit with status 0 whatever the reason, so
//! under QEMU (with `-semihosting-config enable=on`, which every config in
//! `qemu-configs/` passes, and `tandem.semihosting=on` on the board's command
//! line) the hypervisor exits through semihosting `SYS_EXIT` with one of
//! these codes instead. On a real board it calls PSCI `SYSTEM_OFF` (or
//! `SYSTEM_RESET` for failures, so that a bench board comes back).

/// Why the board stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The guest powered off (or there was nothing to run).
    Success = 0,
    /// The hypervisor took an exception it did not expect.
    HypervisorException = 2,
    /// A Rust panic in the hypervisor.
    Panic = 3,
    /// The board or guest configuration is unusable (bad DTB, missing guest).
    BadConfiguration = 4,
    /// The guest asked for a reset.
    GuestReset = 5,
    /// Replay found a difference from the recording.
    Divergence = 6,
}

impl ExitStatus {
    pub const fn code(self) -> u8 {
        self as u8
    }
}
