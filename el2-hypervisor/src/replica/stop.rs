//! What a board does when the replica engine cannot go on ([`Stop`]): its
//! exit status and the lines it says first. The board acts on a `Stop` in
//! one place (`TrapOutcome::Replica`, `runtime/vm/traps.rs`); a gone peer
//! has its own status, never the divergence one.

use super::engine::Stop;
use crate::exit::ExitStatus;
use core::fmt;

impl Stop {
    /// The board's exit status.
    pub const fn status(self) -> ExitStatus {
        match self {
            Stop::Diverged(_) => ExitStatus::Divergence,
            Stop::PeerGone => ExitStatus::PeerGone,
        }
    }

    /// What the console says, the engine being at `epoch` (xtask's tests
    /// match these lines).
    pub const fn report(self, epoch: u64) -> StopReport {
        StopReport { stop: self, epoch }
    }
}

/// The console lines of a [`Stop`], without the last newline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopReport {
    stop: Stop,
    epoch: u64,
}

impl fmt::Display for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stop {
            Stop::Diverged(d) => write!(
                f,
                "replay: {d}\nreplay: stopped: the replayed guest is not the recorded one"
            ),
            Stop::PeerGone => write!(
                f,
                "hypervisor: link: the peer is gone (epoch {})",
                self.epoch
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::replay::{At, Divergence};
    use alloc::format;

    const DIVERGED: Stop = Stop::Diverged(Divergence::Boundary {
        at: At {
            epoch: 3,
            count: 10,
        },
        field: "fingerprint",
        expected: 1,
        got: 2,
    });

    #[test]
    fn a_divergence_and_a_gone_peer_have_their_own_statuses() {
        assert_eq!(DIVERGED.status(), ExitStatus::Divergence);
        assert_eq!(DIVERGED.status().code(), 6);
        assert_eq!(Stop::PeerGone.status(), ExitStatus::PeerGone);
        assert_eq!(Stop::PeerGone.status().code(), 7);
    }

    #[test]
    fn the_lines_are_the_ones_the_host_matches() {
        let Stop::Diverged(d) = DIVERGED else {
            unreachable!()
        };
        assert_eq!(
            format!("{}", DIVERGED.report(3)),
            format!("replay: {d}\nreplay: stopped: the replayed guest is not the recorded one")
        );
        assert!(
            format!("{}", DIVERGED.report(3)).starts_with("replay: divergence at epoch 3 count 10")
        );
        assert_eq!(
            format!("{}", Stop::PeerGone.report(41)),
            "hypervisor: link: the peer is gone (epoch 41)"
        );
    }
}
