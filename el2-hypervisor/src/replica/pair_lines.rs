//! The lines a board of a live pair writes on its console for the host
//! (`cargo xtask pair`): one place for their words, written by the board
//! and parsed by xtask.
//!
//! Each is one line of the hypervisor's text, `pair: KIND key=value ...`,
//! values decimal:
//!
//! | kind | when | fields |
//! | --- | --- | --- |
//! | `status` | every [`STATUS_EVERY_US`] of guest time, at a boundary | [`Status`] |
//! | `takeover` | a backup found its primary gone and went live | `epoch`, `count`, `silent_ms` (the timeout that declared it), `released` (bytes of output it emitted then) |
//! | `backup-lost` | a primary found its backup gone | `epoch` |
//! | `summary` | the guest stopped | [`Summary`] |

use core::fmt;

/// Every pair line starts with this.
pub const PREFIX: &str = "pair: ";
/// How often a board writes its status, in microseconds of guest time.
pub const STATUS_EVERY_US: u64 = 20_000;

/// A board's progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The epoch in progress.
    pub epoch: u64,
    /// Guest time at the boundary, microseconds (the epochs' time, a
    /// function of the instruction count: `replica::epoch_time`).
    pub guest_us: u64,
    /// Log messages sent (primary) or consumed (backup).
    pub msgs: u64,
    /// Encoded bytes of those messages.
    pub log_bytes: u64,
    /// Messages the peer acknowledged (primary).
    pub acked: u64,
    /// Guest output bytes held for the output rule (primary) or kept for
    /// a takeover (backup).
    pub held: u64,
    /// The link's health: retransmission timeouts, and packets dropped as
    /// damaged (both wrap at 2^32).
    pub retransmits: u64,
    pub rejected: u64,
}

/// What a board says when its guest stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Epochs run.
    pub epochs: u64,
    pub msgs: u64,
    pub log_bytes: u64,
    pub acked: u64,
    /// The output hold: capacity, most bytes held, bytes released, how
    /// often the guest waited for room, and hold times (microseconds).
    pub hold_capacity: u64,
    pub hold_max: u64,
    pub released: u64,
    pub full_waits: u64,
    pub hold_p50_us: u64,
    pub hold_p99_us: u64,
    /// Sends that found the send window full, and how long they waited
    /// for room in all (board µs).
    pub window_waits: u64,
    pub window_wait_us: u64,
}

macro_rules! fields {
    ($ty:ident, $kind:literal, $($f:ident),*) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PREFIX)?;
                f.write_str($kind)?;
                $( write!(f, concat!(" ", stringify!($f), "={}"), self.$f)?; )*
                Ok(())
            }
        }
        impl $ty {
            /// Reads the line back; `None` if it is not one (every field
            /// must be there).
            pub fn parse(line: &str) -> Option<Self> {
                let rest = line.trim().strip_prefix(PREFIX)?.strip_prefix($kind)?;
                let mut out = Self::default();
                $( out.$f = field(rest, stringify!($f))?; )*
                Some(out)
            }
        }
    };
}

fields!(
    Status,
    "status",
    epoch,
    guest_us,
    msgs,
    log_bytes,
    acked,
    held,
    retransmits,
    rejected
);
fields!(
    Summary,
    "summary",
    epochs,
    msgs,
    log_bytes,
    acked,
    hold_capacity,
    hold_max,
    released,
    full_waits,
    hold_p50_us,
    hold_p99_us,
    window_waits,
    window_wait_us
);

/// A takeover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Takeover {
    pub epoch: u64,
    pub count: u64,
    /// Guest time where the backup went live, microseconds: the guest's
    /// clock goes on from here (`Engine::time_offset`).
    pub guest_us: u64,
    pub silent_ms: u64,
    pub released: u64,
}
fields!(
    Takeover, "takeover", epoch, count, guest_us, silent_ms, released
);

/// A primary lost its backup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupLost {
    pub epoch: u64,
}
fields!(BackupLost, "backup-lost", epoch);

/// The value of `name=` among the words of `rest`.
pub fn field(rest: &str, name: &str) -> Option<u64> {
    rest.split_ascii_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn lines_round_trip() {
        let s = Status {
            epoch: 12,
            guest_us: 3_400_000,
            msgs: 99,
            log_bytes: 4_000,
            acked: 98,
            held: 7,
            retransmits: 1,
            rejected: 2,
        };
        let line = s.to_string();
        assert_eq!(
            line,
            "pair: status epoch=12 guest_us=3400000 msgs=99 log_bytes=4000 acked=98 held=7 retransmits=1 rejected=2"
        );
        assert_eq!(Status::parse(&line), Some(s));
        let t = Takeover {
            epoch: 5,
            count: 77,
            guest_us: 2_431_000,
            silent_ms: 2_000,
            released: 120,
        };
        assert_eq!(Takeover::parse(&t.to_string()), Some(t));
        let b = BackupLost { epoch: 3 };
        assert_eq!(BackupLost::parse(&b.to_string()), Some(b));
        let m = Summary {
            epochs: 1,
            hold_p99_us: 9,
            ..Summary::default()
        };
        assert_eq!(Summary::parse(&m.to_string()), Some(m));
    }

    #[test]
    fn other_lines_are_not_pair_lines() {
        assert_eq!(Status::parse("tandem-guest: pair: status epoch=1"), None);
        assert_eq!(Status::parse("pair: summary epochs=1"), None);
        // A field missing or malformed: not a line of that kind.
        assert_eq!(Takeover::parse("pair: takeover epoch=1 count=2"), None);
        assert_eq!(BackupLost::parse("pair: backup-lost epoch=x"), None);
    }
}
