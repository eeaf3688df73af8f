//! Failure detection from silence: a peer that has sent nothing valid for
//! a while is first suspected, then declared failed.
//!
//! Time is injected (`now` in microseconds from any monotonic clock), so
//! tests control it and the board can use its physical counter. The
//! detector counts any valid packet as a sign of life, not only heartbeats:
//! a busy link needs no extra traffic.

/// Timeouts, in microseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Silence after which the peer is suspected (reported, nothing done).
    pub suspect_after_us: u64,
    /// Silence after which the peer is declared failed (final).
    pub fail_after_us: u64,
}

/// What the detector believes about the peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// Heard from recently.
    Alive,
    /// Quiet for longer than `suspect_after_us`.
    Suspected,
    /// Quiet for longer than `fail_after_us`. Final: a later packet does not
    /// bring the peer back (the backup may already have taken over).
    Failed,
}

/// Tracks when the peer was last heard from.
#[derive(Copy, Clone, Debug)]
pub struct FailureDetector {
    timeouts: Timeouts,
    last_heard: u64,
    failed: bool,
}

impl FailureDetector {
    /// A detector that has just heard from the peer at `now`.
    pub const fn new(timeouts: Timeouts, now: u64) -> Self {
        Self {
            timeouts,
            last_heard: now,
            failed: false,
        }
    }

    /// The peer showed a sign of life at `now`. Ignored once failed.
    pub fn heard(&mut self, now: u64) {
        if !self.failed {
            self.last_heard = self.last_heard.max(now);
        }
    }

    /// The verdict at `now`, without recording it.
    pub const fn liveness(&self, now: u64) -> Liveness {
        let quiet = now.saturating_sub(self.last_heard);
        if self.failed || quiet >= self.timeouts.fail_after_us {
            Liveness::Failed
        } else if quiet >= self.timeouts.suspect_after_us {
            Liveness::Suspected
        } else {
            Liveness::Alive
        }
    }

    /// The verdict at `now`. Once it has said `Failed` it always will.
    pub fn check(&mut self, now: u64) -> Liveness {
        let verdict = self.liveness(now);
        self.failed = verdict == Liveness::Failed;
        verdict
    }

    /// When the peer was last heard from.
    pub const fn last_heard(&self) -> u64 {
        self.last_heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        suspect_after_us: 30,
        fail_after_us: 100,
    };

    #[test]
    fn alive_suspected_failed_and_final() {
        let mut d = FailureDetector::new(T, 1000);
        assert_eq!(d.check(1029), Liveness::Alive);
        assert_eq!(d.check(1030), Liveness::Suspected);
        d.heard(1050);
        assert_eq!(d.check(1079), Liveness::Alive);
        assert_eq!(d.check(1149), Liveness::Suspected);
        assert_eq!(d.check(1150), Liveness::Failed);
        d.heard(1151);
        assert_eq!(d.check(1152), Liveness::Failed);
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let mut d = FailureDetector::new(T, 1000);
        d.heard(900);
        assert_eq!(d.last_heard(), 1000);
        assert_eq!(d.check(500), Liveness::Alive);
    }
}
