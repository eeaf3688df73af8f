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
