//! The host end of the replication link (docs/record-replay.md): a
//! [`replication_link::Link`] over a Unix socket that QEMU connects the
//! board's second PL011 to, the recorder (`cargo xtask record`) that stores
//! what a recording board sends, and the feeder (`cargo xtask replay`) that
//! sends a stored log to a replaying board.
//!
//! This module only gathers the parts:
//! - `socket`: the Unix-socket transport and socket paths;
//! - `link`: the host's [`Link`](replication_link::Link), its timing and
//!   the wait for the board's Hello;
//! - `session`: the poll loop the recorder and the feeder share;
//! - `recorder` and `feeder`: the two ends run in that loop;
//! - `board`: starting the QEMU board and waiting for it;
//! - `report`: outcomes, refusals and link counters in words;
//! - `commands`: the record and replay runs and their commands.

mod board;
mod commands;
mod feeder;
mod link;
mod recorder;
mod report;
mod session;
pub(crate) mod socket;
#[cfg(test)]
mod testing;

pub use crate::board_options::BoardOptions;
pub use board::with_board;
pub use commands::{
    RecordReport, ReplayReport, beside, record, record_command, record_vanishing, replay,
    replay_command, replay_verdict, replay_with,
};
pub use feeder::{Fed, Vanish, replay_over};
pub use link::{HostLink, RECORD_REPLAY, wait_for_hello};
pub use recorder::{Recorded, record_over};
pub use report::{board_report, describe_outcome, describe_refusal, describe_stats, finished};
pub use session::LinkEnd;
pub use socket::{SocketIo, SocketTransport, socket_transport};
