//! Replica bookkeeping: what a recording board writes and what a replaying
//! board checks, as pure logic.
//!
//! The hypervisor cuts the guest's execution into epochs of a fixed number
//! of guest instructions (a WFI ends one early, and so does a timer
//! deadline: [`epoch_time`]). Within an epoch every environment input
//! becomes a `LogEntry` (epoch, instruction count, kind, source, value);
//! guest time is not one, it follows the instruction count from the
//! epoch's base. At the boundary an `EpochEnd` carries the count, the PC,
//! a fingerprint of the guest state, the interrupt lines that are high
//! from then on and the next epoch's base time. A replaying board takes every value from the log and
//! checks everything else against it: [`replay`] says what differs.
//! The contract with the host tools is `docs/record-replay.md`. The
//! output rule of a live pair (the primary holds output until the backup
//! has the log before it) is [`output`]; the roles' decisions are the
//! [`engine`]'s, and what a board does around it (the link, the console,
//! epochs, status lines, a takeover) is the [`session`], over the
//! hardware traits of [`crate::hw`].

pub mod digest;
pub mod engine;
pub mod epoch_stats;
pub mod epoch_time;
pub mod exclusive;
pub mod fingerprint;
pub mod link_timing;
pub mod output;
pub mod pair_lines;
pub mod replay;
pub mod session;
#[cfg(test)]
mod sim;
pub mod step_to_count;
pub mod stop;
