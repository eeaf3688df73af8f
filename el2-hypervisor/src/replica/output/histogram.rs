//! A fixed histogram of durations (output hold times, timer lateness) for
//! percentiles without a heap: exact
//! below 4 µs, then each power of two split into four buckets, so a
//! reported percentile is the upper edge of its bucket: never below the
//! true value, at most 25 % above it.

/// Buckets: 4 exact ones (0 to 3 µs), then 4 per power of two from 2² to
/// 2⁶³.
const BUCKETS: usize = 4 + 4 * 62;

/// Weighted counts per bucket, their total and the exact maximum.
pub(crate) struct Histogram {
    counts: [u64; BUCKETS],
    total: u64,
    max: u64,
}

/// The bucket `v` falls in.
fn bucket(v: u64) -> usize {
    if v < 4 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // 2 ..= 63
    let sub = (v >> (e - 2)) & 3;
    (4 * (e as usize - 1)) + sub as usize
}

/// The largest value in bucket `i`.
fn upper(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let e = (i / 4 + 1) as u32;
    let sub = (i % 4) as u64;
    let width = 1u64 << (e - 2);
    ((4 + sub) << (e - 2)) + (width - 1)
}

impl Histogram {
    pub(crate) const fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Counts `value` `weight` times.
    pub(crate) fn record(&mut self, value: u64, weight: u64) {
        if let Some(c) = self.counts.get_mut(bucket(value)) {
            *c = c.saturating_add(weight);
        }
        self.total = self.total.saturating_add(weight);
        self.max = self.max.max(value);
    }

    /// The smallest value that at least `per_cent` % of the weight is at
    /// or below, to the bucket's precision (0 when empty).
    pub(crate) fn percentile(&self, per_cent: u64) -> u64 {
        let want = u128::from(self.total) * u128::from(per_cent.min(100));
        let mut seen = 0u128;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u128::from(c);
            if c > 0 && seen * 100 >= want {
                return upper(i).min(self.max);
            }
        }
        0
    }

    /// The largest value recorded, exactly.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The weight recorded.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(upper(BUCKETS - 1), u64::MAX);
        for i in 0..BUCKETS - 1 {
            let edge = upper(i);
            assert_eq!(bucket(edge), i, "upper edge of {i}");
            assert_eq!(bucket(edge + 1), i + 1, "past the edge of {i}");
        }
    }

    #[test]
    fn precision_is_a_quarter_at_worst() {
        for v in (4..100_000u64).chain([u64::MAX / 3, 1 << 40]) {
            let up = upper(bucket(v));
            assert!(up >= v && up - v <= v / 4, "{v} reported as {up}");
        }
    }

    #[test]
    fn empty_is_zero() {
        let h = Histogram::new();
        assert_eq!((h.percentile(50), h.percentile(99), h.max()), (0, 0, 0));
    }
}
