//! The primary's half: guest output held until the backup has every log
//! message that precedes it.

use super::histogram::Histogram;
use super::{drop_front, emit_front};
use heapless::Deque;

/// The hold has no room for these bytes; nothing was stored. The caller
/// services the link (acknowledgements release bytes) and tries again:
/// the guest waits only here, when the hold is full. Bytes longer than the
/// whole hold never fit: a caller pushes a console write at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldFull;

/// Bytes that wait for the same acknowledgement, and since when.
#[derive(Clone, Copy, Debug)]
struct Segment {
    len: usize,
    /// Sequenced messages sent before these bytes: they may go once this
    /// many are acknowledged.
    sent: u64,
    /// When the segment's first byte was pushed.
    pushed_us: u64,
}

/// Guest output on the primary: at most `BYTES` bytes in at most
/// `SEGMENTS` runs that wait for different acknowledgements.
///
/// The caller counts the sequenced messages it sends (`sent`) and the ones
/// the backup has acknowledged (`acked`, cumulative); a byte produced after
/// `sent` messages leaves once `acked ≥ sent`. Bytes leave in the order
/// they came, whole segments at a time.
pub struct OutputHold<const BYTES: usize, const SEGMENTS: usize> {
    bytes: Deque<u8, BYTES>,
    segments: Deque<Segment, SEGMENTS>,
    released: u64,
    max_held: usize,
    full_waits: u64,
    /// The last push was refused: the guest is waiting (a wait is counted
    /// once, however often it retries).
    waiting: bool,
    hold_us: Histogram,
}

/// What a hold did since it was made.
///
/// The percentiles weigh every byte the same (what a reader of the console
/// waits), each byte with its segment's hold time, measured from the
/// segment's first push: a byte merged into a segment later waited less,
/// by at most the time the guest ran without sending a log message. They
/// come from a histogram exact below 4 µs and within 25 % above (never
/// below) the true value beyond; `max_us` is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldStats {
    /// `BYTES`.
    pub capacity: usize,
    /// `SEGMENTS`.
    pub segment_capacity: usize,
    /// Bytes held now.
    pub held: usize,
    /// The most bytes ever held at once.
    pub max_held: usize,
    /// Bytes released in total.
    pub released: u64,
    /// Times the guest had to wait for room: a run of refused pushes
    /// (retries) counts once.
    pub full_waits: u64,
    /// Half the released bytes were held at most this long (µs).
    pub p50_us: u64,
    /// 99 % of the released bytes were held at most this long (µs).
    pub p99_us: u64,
    /// The longest hold (µs).
    pub max_us: u64,
}

impl<const BYTES: usize, const SEGMENTS: usize> OutputHold<BYTES, SEGMENTS> {
    /// An empty hold (`BYTES` and `SEGMENTS` must not be 0).
    pub const fn new() -> Self {
        Self {
            bytes: Deque::new(),
            segments: Deque::new(),
            released: 0,
            max_held: 0,
            full_waits: 0,
            waiting: false,
            hold_us: Histogram::new(),
        }
    }

    /// Holds `bytes`, produced after `sent` sequenced log messages had been
    /// sent (the caller's counter, which never goes down). Pushes with the
    /// same `sent` in a row share a segment.
    ///
    /// # Errors
    ///
    /// [`HoldFull`] when the bytes or a new segment do not fit: nothing is
    /// stored (all or nothing), and the refusal is counted.
    pub fn push(&mut self, bytes: &[u8], sent: u64, now_us: u64) -> Result<(), HoldFull> {
        if bytes.is_empty() {
            return Ok(());
        }
        let merge = self.segments.back().is_some_and(|s| s.sent == sent);
        let room = BYTES.saturating_sub(self.bytes.len());
        if bytes.len() > room || (!merge && self.segments.is_full()) {
            if !self.waiting {
                self.full_waits += 1;
                self.waiting = true;
            }
            return Err(HoldFull);
        }
        self.waiting = false;
        for &b in bytes {
            // Room checked above.
            let _ = self.bytes.push_back(b);
        }
        match self.segments.back_mut() {
            Some(s) if merge => s.len += bytes.len(),
            _ => {
                // Room checked above.
                let _ = self.segments.push_back(Segment {
                    len: bytes.len(),
                    sent,
                    pushed_us: now_us,
                });
            }
        }
        self.max_held = self.max_held.max(self.bytes.len());
        Ok(())
    }

    /// Releases, in order, every held byte whose `sent ≤ acked` (`acked`:
    /// sequenced messages the backup has acknowledged, cumulative), through
    /// `out`; returns how many bytes went.
    pub fn release(&mut self, acked: u64, now_us: u64, mut out: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(seg) = self.segments.pop_front_if(|s| s.sent <= acked) {
            emit_front(&self.bytes, seg.len, &mut out);
            drop_front(&mut self.bytes, seg.len);
            self.released += seg.len as u64;
            self.hold_us
                .record(now_us.saturating_sub(seg.pushed_us), seg.len as u64);
            n += seg.len;
        }
        n
    }

    /// Releases everything: the backup is gone, there is nothing to wait
    /// for (the board runs on unprotected).
    pub fn release_all(&mut self, now_us: u64, out: impl FnMut(&[u8])) -> usize {
        self.release(u64::MAX, now_us, out)
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes released since the start: what the primary reports in
    /// `Released`.
    pub fn released_total(&self) -> u64 {
        self.released
    }

    /// The figures since the start.
    pub fn stats(&self) -> HoldStats {
        HoldStats {
            capacity: BYTES,
            segment_capacity: SEGMENTS,
            held: self.bytes.len(),
            max_held: self.max_held,
            released: self.released,
            full_waits: self.full_waits,
            p50_us: self.hold_us.percentile(50),
            p99_us: self.hold_us.percentile(99),
            max_us: self.hold_us.max(),
        }
    }
}

impl<const BYTES: usize, const SEGMENTS: usize> Default for OutputHold<BYTES, SEGMENTS> {
    fn default() -> Self {
        Self::new()
    }
}
