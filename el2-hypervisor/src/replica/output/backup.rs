//! The backup's half: its own guest's output, kept until the primary says
//! it released it, emitted at takeover.

use super::{drop_front, emit_front};
use heapless::Deque;

/// A backup's guest output at or past the primary's released mark, at most
/// `BYTES` bytes (see the module documentation for how big it must be).
///
/// Positions count bytes of guest output from the start of the run: the
/// bytes kept are those at `position() - kept() .. position()`, all at or
/// past the mark. After [`take_unreleased`](Self::take_unreleased) the
/// board writes its guest's output itself (it is the primary now, or alone);
/// pushing more afterwards only keeps it again, to no purpose.
pub struct BackupOutput<const BYTES: usize> {
    kept: Deque<u8, BYTES>,
    /// Bytes this backup's guest has produced.
    position: u64,
    /// Bytes the primary has released (the largest `Released` seen).
    mark: u64,
    lost: u64,
    max_kept: usize,
}

impl<const BYTES: usize> BackupOutput<BYTES> {
    /// An empty buffer (`BYTES` must not be 0).
    pub const fn new() -> Self {
        Self {
            kept: Deque::new(),
            position: 0,
            mark: 0,
            lost: 0,
            max_kept: 0,
        }
    }

    /// This backup's guest produced `bytes`: its position advances by
    /// their length. Bytes below the primary's mark are already out and
    /// are not kept; if the rest does not fit, the oldest kept bytes go
    /// and are counted in [`lost`](Self::lost).
    pub fn push(&mut self, bytes: &[u8]) {
        let start = self.position;
        self.position = start.saturating_add(bytes.len() as u64);
        let out = usize::try_from(self.mark.saturating_sub(start)).unwrap_or(usize::MAX);
        let keep = bytes.get(out..).unwrap_or(&[]);
        // Longer than the whole buffer: only its last BYTES bytes can stay.
        let keep = keep.get(keep.len().saturating_sub(BYTES)..).unwrap_or(&[]);
        let over = (self.kept.len() + keep.len()).saturating_sub(BYTES);
        let cut = bytes.len().saturating_sub(out).saturating_sub(keep.len());
        self.lost += (over + cut) as u64;
        drop_front(&mut self.kept, over);
        for &b in keep {
            // Room made above.
            let _ = self.kept.push_back(b);
        }
        self.max_kept = self.max_kept.max(self.kept.len());
    }

    /// The primary has released `released` bytes in total: kept bytes
    /// below that are dropped. A mark lower than one seen before changes
    /// nothing (marks never go down); a mark past this backup's own
    /// position (it lags) means its next bytes up to there are not kept.
    pub fn mark(&mut self, released: u64) {
        if released <= self.mark {
            return;
        }
        self.mark = released;
        let oldest = self.position.saturating_sub(self.kept.len() as u64);
        let below = usize::try_from(released.saturating_sub(oldest)).unwrap_or(usize::MAX);
        drop_front(&mut self.kept, below);
    }

    /// At takeover: emits every kept byte, in order (from the mark, or the
    /// oldest kept byte, to this backup's position), through `out`; returns
    /// how many. The buffer is empty afterwards.
    pub fn take_unreleased(&mut self, mut out: impl FnMut(&[u8])) -> u64 {
        let n = self.kept.len();
        emit_front(&self.kept, n, &mut out);
        self.kept.clear();
        n as u64
    }

    /// Bytes this backup's guest has produced.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The primary's released total, as far as this backup knows.
    pub fn released_mark(&self) -> u64 {
        self.mark
    }

    /// Bytes kept now.
    pub fn kept(&self) -> usize {
        self.kept.len()
    }

    /// The most bytes ever kept at once.
    pub fn max_kept(&self) -> usize {
        self.max_kept
    }

    /// Bytes dropped before the mark covered them: a takeover would miss
    /// them unless the primary had in fact released them. Never nonzero
    /// when `BYTES` is sized as the module documentation says; the board
    /// reports it loudly if it is.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

impl<const BYTES: usize> Default for BackupOutput<BYTES> {
    fn default() -> Self {
        Self::new()
    }
}
