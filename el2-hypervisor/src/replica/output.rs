//! The output rule (DESIGN.md §5 and §10, as VMware FT has it): guest
//! output leaves a pair only once the backup could reproduce it, and a
//! backup that takes over emits what the primary may not have let out.
//! Pure bookkeeping over fixed buffers (no heap, sizes are const
//! generics), so the board and the host tests run the same code.
//!
//! | board | type | keeps | lets go |
//! | --- | --- | --- | --- |
//! | primary | [`OutputHold`] | every byte since it was produced | once the backup acknowledged every log message sent before the byte |
//! | backup | [`BackupOutput`] | its own guest's bytes at or past the primary's released mark | below the mark: dropped; at takeover: all emitted |
//!
//! The primary tells the backup how far it released with a sequenced
//! `Released { output }` message (the board sends it at epoch boundaries,
//! [`Engine::released`](super::engine::Engine::released)); positions count
//! bytes of guest output from the start of the run, and both boards'
//! guests produce the same bytes at the same positions (that is what
//! replication means). An output may so appear twice (released by the
//! primary, whose `Released` had not reached the backup yet, then emitted
//! by the backup at takeover), never not at all.
//!
//! # How big the backup's buffer must be
//!
//! The backup applies a mark when it consumes the `Released` from its log,
//! in log order, so the bound below holds whatever the link's delay. Let
//! `H` be the primary's hold capacity and `P(e)` the output the guest
//! produced by the end of epoch `e`. The `Released` sent at that boundary
//! carries at least `P(e) − H` (the primary never holds more than `H`).
//! The backup consumes it at the first log message it needs in epoch
//! `e + 1`, and the next one in epoch `e + 2`; meanwhile its own position
//! is at most `P(e + 1)` plus what its guest writes in epoch `e + 2`
//! before that first message (its guest runs on without the log only
//! until the next input or boundary). So it keeps at most `H` plus the
//! output of two consecutive epochs, and a buffer of that size, with a
//! margin, never overflows (the simulator checks this bound on every run).
//! If it does overflow (a primary that does not send `Released`, a guest
//! that prints more per epoch than assumed), the oldest bytes go and
//! [`BackupOutput::lost`] counts them, for the board to report loudly.

mod backup;
mod histogram;
pub(crate) use histogram::Histogram;
mod hold;

pub use backup::BackupOutput;
pub use hold::{HoldFull, HoldStats, OutputHold};

use heapless::Deque;

/// Calls `out` with the first `n` bytes of `q` (at most two slices: the
/// deque may wrap), in order, without removing them.
fn emit_front<const N: usize>(q: &Deque<u8, N>, n: usize, out: &mut impl FnMut(&[u8])) {
    let (a, b) = q.as_slices();
    let first = n.min(a.len());
    let rest = (n - first).min(b.len());
    for part in [a.get(..first), b.get(..rest)].into_iter().flatten() {
        if !part.is_empty() {
            out(part);
        }
    }
}

/// Removes the first `n` bytes of `q` (all of them if it holds fewer).
fn drop_front<const N: usize>(q: &mut Deque<u8, N>, n: usize) {
    q.retain_back(q.len().saturating_sub(n));
}

#[cfg(test)]
mod tests;
