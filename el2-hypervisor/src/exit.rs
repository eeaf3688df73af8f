//! How a board stops, and the status it reports: the one table of exit
//! statuses (the README's table, xtask's messages and the hypervisor's
//! own exits all come from here).
//!
//! The hypervisor writes the status as an exit record on its console
//! ([`crate::console_stream`]), which guest output cannot forge, and then
//! calls PSCI `SYSTEM_OFF`. Under QEMU, `SYSTEM_OFF` makes QEMU exit 0
//! whatever the reason; `cargo xtask` reads the record and exits with the
//! board's status. A board that stops without a record (killed, hung, or
//! a QEMU error) has no status.

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
    /// The board or guest configuration is unusable (bad DTB, missing or
    /// damaged guest, bad option, a board the guest cannot run on), or a
    /// peer refused to pair.
    BadConfiguration = 4,
    /// The guest asked for a reset.
    GuestReset = 5,
    /// Replay found a difference from the recording.
    Divergence = 6,
    /// The link's peer went away (it failed, restarted, or closed the link).
    PeerGone = 7,
}

impl ExitStatus {
    /// Every status, in table order.
    pub const ALL: [ExitStatus; 7] = [
        Self::Success,
        Self::HypervisorException,
        Self::Panic,
        Self::BadConfiguration,
        Self::GuestReset,
        Self::Divergence,
        Self::PeerGone,
    ];

    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The status with this code, if there is one.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// What the status means, in a few words.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Success => "finished",
            Self::HypervisorException => "hypervisor exception",
            Self::Panic => "hypervisor panic",
            Self::BadConfiguration => "bad configuration or refused pairing",
            Self::GuestReset => "guest reset",
            Self::Divergence => "replay divergence",
            Self::PeerGone => "the peer is gone",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for s in ExitStatus::ALL {
            assert_eq!(ExitStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(ExitStatus::from_code(1), None);
        assert_eq!(ExitStatus::from_code(8), None);
    }
}
