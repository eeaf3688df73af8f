//! The replication link's timing for each use, shared by the board and the
//! host tools (which must agree on it): one place.

use replication_link::failure_detector::Timeouts;
use replication_link::link::Config;

/// Link timing for record and replay, the same on both ends: the board's
/// clock is icount virtual time and the host can be slow (a loaded CI
/// machine, QEMU translating a new kernel path), so failure detection is
/// lenient and is not what these runs test.
pub const RECORD_REPLAY: Config = Config {
    heartbeat_interval_us: 100_000,
    retransmit_after_us: 200_000,
    hello_interval_us: 100_000,
    timeouts: Timeouts {
        suspect_after_us: 30_000_000,
        fail_after_us: 60_000_000,
    },
    batch_limit: 512,
};

/// Link timing for a live pair: heartbeats every `heartbeat_ms`, the peer
/// suspected after half the timeout and declared dead after `fail_ms`
/// (board options, `options::PairTiming`). Retransmission waits long
/// enough for a full packet to cross a QEMU serial link (~15 KB/s: DESIGN
/// section 9), and packets are kept small on serial so that an ack is not
/// stuck behind a long one.
pub const fn pair(heartbeat_ms: u64, fail_ms: u64, serial: bool) -> Config {
    Config {
        heartbeat_interval_us: heartbeat_ms * 1_000,
        retransmit_after_us: if serial { 300_000 } else { 30_000 },
        hello_interval_us: 100_000,
        timeouts: Timeouts {
            suspect_after_us: fail_ms * 500,
            fail_after_us: fail_ms * 1_000,
        },
        batch_limit: if serial {
            512
        } else {
            replication_link::MAX_PACKET
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_timing_follows_the_options() {
        let c = pair(20, 2_000, false);
        assert_eq!(c.heartbeat_interval_us, 20_000);
        assert_eq!(c.timeouts.fail_after_us, 2_000_000);
        assert!(c.timeouts.suspect_after_us < c.timeouts.fail_after_us);
        assert!(pair(20, 2_000, true).batch_limit < c.batch_limit);
    }
}
