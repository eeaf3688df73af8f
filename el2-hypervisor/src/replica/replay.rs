//! Checking a replayed execution against the log, one step at a time.

use core::fmt;
use replication_link::message::{EpochEnd, InputKind, LogEntry};

/// Where the replay stood when it diverged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub epoch: u64,
    pub count: u64,
}

/// What differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// The guest made an environment access the log does not have next.
    Input {
        at: At,
        expected: Expect,
        got: Expect,
    },
    /// The guest reached an epoch boundary where the log has an input.
    BoundaryInsteadOfInput { at: At, expected: Expect },
    /// The guest made an access where the log has the epoch's end.
    InputInsteadOfBoundary { at: At, got: Expect, logged_end: At },
    /// The boundary is at another count or PC, or the state differs.
    Boundary {
        at: At,
        field: &'static str,
        expected: u64,
        got: u64,
    },
    /// The log starts the next epoch at a guest time before the one this
    /// epoch ended at: guest time would go back (a corrupt log).
    TimeWentBack { at: At, end: u64, logged: u64 },
}

/// An access as the log or the guest describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub epoch: u64,
    pub count: u64,
    pub kind: InputKind,
    /// The entry's detail: an MMIO read's width in bytes (a 4-byte read
    /// replayed as an 8-byte one is another access), 0 for other kinds.
    pub detail: u8,
    pub source: u64,
}

impl Expect {
    pub fn of(e: &LogEntry) -> Self {
        Self {
            epoch: e.epoch,
            count: e.count,
            kind: e.kind,
            detail: e.detail,
            source: e.source,
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} of {:#x}", self.kind, self.source)?;
        if self.detail != 0 {
            write!(f, " ({} bytes)", self.detail)?;
        }
        write!(f, " at epoch {} count {}", self.epoch, self.count)
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Divergence::Input { at, expected, got } => write!(
                f,
                "divergence at epoch {} count {}: the log has {expected}, the guest made {got}",
                at.epoch, at.count
            ),
            Divergence::BoundaryInsteadOfInput { at, expected } => write!(
                f,
                "divergence at epoch {} count {}: the guest reached the epoch's end, the log has {expected}",
                at.epoch, at.count
            ),
            Divergence::InputInsteadOfBoundary {
                at,
                got,
                logged_end,
            } => write!(
                f,
                "divergence at epoch {} count {}: the guest made {got}, the log ends the epoch at count {}",
                at.epoch, at.count, logged_end.count
            ),
            Divergence::Boundary {
                at,
                field,
                expected,
                got,
            } => write!(
                f,
                "divergence at epoch {} count {}: {field} differs at the boundary (log {expected:#x}, replay {got:#x})",
                at.epoch, at.count
            ),
            Divergence::TimeWentBack { at, end, logged } => write!(
                f,
                "divergence at epoch {} count {}: the log starts the next epoch at guest time {logged:#x}, before this one's end ({end:#x})",
                at.epoch, at.count
            ),
        }
    }
}

/// Checks an access against the next logged entry; returns the value the
/// guest must observe.
///
/// # Errors
/// The [`Divergence`] when the access is not the one logged.
pub fn check_input(logged: &LogEntry, got: Expect) -> Result<u64, Divergence> {
    let expected = Expect::of(logged);
    if expected != got {
        return Err(Divergence::Input {
            at: At {
                epoch: got.epoch,
                count: got.count,
            },
            expected,
            got,
        });
    }
    Ok(logged.value)
}

/// Checks that the logged next base does not take guest time back from
/// `end`, where the epoch that ends got to.
///
/// # Errors
/// [`Divergence::TimeWentBack`].
pub fn check_time(logged: &EpochEnd, end: u64) -> Result<(), Divergence> {
    if logged.time < end {
        return Err(Divergence::TimeWentBack {
            at: At {
                epoch: logged.epoch,
                count: logged.count,
            },
            end,
            logged: logged.time,
        });
    }
    Ok(())
}

/// Checks a boundary against the logged `EpochEnd`.
///
/// # Errors
/// The first field that differs (epoch, count, PC, fingerprint).
pub fn check_boundary(
    logged: &EpochEnd,
    epoch: u64,
    count: u64,
    pc: u64,
    fingerprint: u64,
) -> Result<(), Divergence> {
    let at = At { epoch, count };
    for (field, expected, got) in [
        ("epoch", logged.epoch, epoch),
        ("instruction count", logged.count, count),
        ("PC", logged.pc, pc),
        ("state fingerprint", logged.fingerprint, fingerprint),
    ] {
        if expected != got {
            return Err(Divergence::Boundary {
                at,
                field,
                expected,
                got,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn entry(count: u64) -> LogEntry {
        LogEntry {
            epoch: 3,
            count,
            kind: InputKind::CounterRead,
            detail: 0,
            source: 0xdf02,
            value: 42,
        }
    }

    #[test]
    fn matching_input_gives_the_logged_value() {
        let e = entry(100);
        assert_eq!(check_input(&e, Expect::of(&e)), Ok(42));
    }

    #[test]
    fn mismatch_names_epoch_count_and_both_accesses() {
        let e = entry(100);
        let got = Expect {
            count: 101,
            ..Expect::of(&e)
        };
        let err = check_input(&e, got).unwrap_err();
        let s = err.to_string();
        assert!(s.starts_with("divergence at epoch 3 count 101"), "{s}");
        assert!(
            s.contains("CounterRead of 0xdf02 at epoch 3 count 100"),
            "{s}"
        );
    }

    #[test]
    fn a_different_access_width_is_a_divergence() {
        let e = LogEntry {
            kind: InputKind::MmioRead,
            detail: 4,
            source: 0x0900_0018,
            ..entry(7)
        };
        assert_eq!(check_input(&e, Expect::of(&e)), Ok(42));
        let got = Expect {
            detail: 8,
            ..Expect::of(&e)
        };
        let s = check_input(&e, got).unwrap_err().to_string();
        assert!(
            s.contains("the log has MmioRead of 0x9000018 (4 bytes) at epoch 3 count 7, the guest made MmioRead of 0x9000018 (8 bytes)"),
            "{s}"
        );
    }

    #[test]
    fn boundary_fields_are_checked_in_order() {
        let end = EpochEnd {
            epoch: 3,
            count: 1000,
            pc: 0x4000,
            fingerprint: 7,
            time: 5_000,
            interrupts: heapless::Vec::new(),
        };
        assert_eq!(check_boundary(&end, 3, 1000, 0x4000, 7), Ok(()));
        assert_eq!(check_time(&end, 5_000), Ok(()));
        let err = check_time(&end, 5_001).unwrap_err();
        assert!(
            err.to_string().contains(
                "the log starts the next epoch at guest time 0x1388, before this one's end (0x1389)"
            ),
            "{err}"
        );
        let err = check_boundary(&end, 3, 1000, 0x4004, 9).unwrap_err();
        assert!(matches!(err, Divergence::Boundary { field: "PC", .. }));
        assert!(
            err.to_string()
                .contains("PC differs at the boundary (log 0x4000, replay 0x4004)")
        );
        let err = check_boundary(&end, 3, 1000, 0x4000, 9).unwrap_err();
        assert!(matches!(
            err,
            Divergence::Boundary {
                field: "state fingerprint",
                ..
            }
        ));
    }
}
