//! Data-cache maintenance by address: the line size from CTR_EL0 and the
//! line addresses that cover a range. The arch layer issues the `DC`
//! instructions (`arch/aarch64/cache.rs`).

/// The smallest data-cache line of the core, in bytes: CTR_EL0.DminLine
/// \[19:16\] is log2 of the number of 4-byte words (Arm ARM D23.2
/// "CTR_EL0"). Maintenance by VA must step by this, never more.
pub const fn dcache_line(ctr_el0: u64) -> u64 {
    4 << ((ctr_el0 >> 16) & 0xf)
}

/// The line-aligned addresses whose lines cover `base..base + size`
/// (`line` a power of two).
pub fn lines(base: u64, size: u64, line: u64) -> impl Iterator<Item = u64> {
    let first = base & !(line - 1);
    let end = base.saturating_add(size);
    (0..)
        .map(move |i: u64| first + i * line)
        .take_while(move |&a| a < end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn line_size_from_ctr() {
        // Cortex-A72 CTR_EL0 0x8444_c004: DminLine 4, 64-byte lines.
        assert_eq!(dcache_line(0x8444_c004), 64);
        // QEMU max (0x8444_c004 as well), and a 32-byte-line core.
        assert_eq!(dcache_line(3 << 16), 32);
    }

    #[test]
    fn lines_cover_the_range() {
        let v: Vec<u64> = lines(0x1030, 0x50, 64).collect();
        assert_eq!(v, [0x1000, 0x1040]);
        assert_eq!(lines(0x1000, 0x40, 64).count(), 1);
        assert_eq!(lines(0x1000, 0, 64).count(), 0);
        assert_eq!(lines(0x20_0000, 0x20_0000, 64).count(), 32768);
    }
}
