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
    ack_delay_us: 0,
    window_bytes: replication_link::DEFAULT_WINDOW_BYTES,
};

/// Link timing for a live pair: heartbeats every `heartbeat_ms`, the peer
/// suspected after half the timeout and declared dead after `fail_ms`
/// (board options, `options::PairTiming`).
///
/// On serial, three things differ, all for QEMU's PL011 (docs/design.md,
/// "The live pair"): retransmission waits long enough for a full packet
/// to cross a ~15-25 KB/s link; packets are kept small so that an ack is
/// not stuck behind a long one; and the receiver sends little of its own
/// (acks at most every [`SERIAL_ACK_DELAY_US`], heartbeats at least
/// [`SERIAL_MIN_HEARTBEAT_MS`] apart), because QEMU writes each byte of a
/// PL011 under its global lock, blocking, into a socket that holds only a
/// few hundred such writes: two boards that both fill their side block
/// each other for good (seen: both vCPUs in `qemu_chr_write`).
pub const fn pair(heartbeat_ms: u64, fail_ms: u64, serial: bool) -> Config {
    let heartbeat_ms = if serial && heartbeat_ms < SERIAL_MIN_HEARTBEAT_MS {
        SERIAL_MIN_HEARTBEAT_MS
    } else {
        heartbeat_ms
    };
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
        ack_delay_us: if serial { SERIAL_ACK_DELAY_US } else { 0 },
        window_bytes: if serial {
            SERIAL_WINDOW_BYTES
        } else {
            replication_link::DEFAULT_WINDOW_BYTES
        },
    }
}

/// On serial, the most bytes in flight: about what crosses QEMU's PL011
/// (some 15 KB/s) in the 300 ms retransmission timeout, so that a
/// go-back-N resend is over before the next one is due.
pub const SERIAL_WINDOW_BYTES: usize = 4 * 1024;

/// On serial, the least time between two acknowledgements.
pub const SERIAL_ACK_DELAY_US: u64 = 50_000;
/// On serial, the least heartbeat interval (the default timeout, 2 s,
/// still spans eight).
pub const SERIAL_MIN_HEARTBEAT_MS: u64 = 250;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_timing_follows_the_options() {
        let c = pair(20, 2_000, false);
        assert_eq!(c.heartbeat_interval_us, 20_000);
        assert_eq!(c.timeouts.fail_after_us, 2_000_000);
        assert!(c.timeouts.suspect_after_us < c.timeouts.fail_after_us);
        let s = pair(20, 2_000, true);
        assert!(s.batch_limit < c.batch_limit);
        assert_eq!(c.ack_delay_us, 0);
        assert_eq!(s.ack_delay_us, SERIAL_ACK_DELAY_US);
        assert_eq!(s.window_bytes, SERIAL_WINDOW_BYTES);
        assert!(c.window_bytes > s.window_bytes);
        assert_eq!(s.heartbeat_interval_us, SERIAL_MIN_HEARTBEAT_MS * 1_000);
        assert!(s.timeouts.fail_after_us >= 4 * s.heartbeat_interval_us);
    }
}
