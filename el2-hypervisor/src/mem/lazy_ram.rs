//! Guest RAM zeroed on first touch: which blocks the guest has touched,
//! what a stage-2 fault in its RAM means, and what the fingerprint reads.
//!
//! Zeroing all of guest RAM before entry made QEMU commit every page of
//! it (about 1.1 GiB of host memory for a 1 GiB board, against 210 MiB for
//! the same guest booted bare) and cost seconds of boot. Instead, stage 2
//! maps only the blocks the hypervisor writes before entry (kernel,
//! initramfs, guest DTB: [`LazyRam::touch`]); every other block is
//! unmapped until the guest's first access to it faults, when it is zeroed
//! and mapped ([`LazyRam::first_touch`]) and the access is retried.
//!
//! # Why 2 MiB blocks
//! - A 2 MiB block is one level-2 descriptor: guest RAM needs no level-3
//!   tables (the pool stays at a root and one level-2 table per GiB), and
//!   a mapped block is one TLB entry, as all of RAM was before.
//! - At most 512 faults per GiB of guest RAM (a boot of the default guest
//!   takes a few hundred), where 4 KiB pages would take one per page the
//!   guest touches, tens of thousands, each a trip to EL2.
//! - The price: a touched block commits all of its 2 MiB in the host
//!   (QEMU), where the guest may use only some of it.
//!
//! # Determinism
//! A first touch is a function of the guest's own execution (its accesses,
//! in order): both boards of a pair fault at the same instruction, start
//! from the same touched set (the same plan of kernel, initramfs and DTB),
//! and the guest sees zeros either way. So a fault is not an environment
//! input and is not logged. The faulting instruction is retried, not
//! emulated, and it retires once. The fingerprint reads an untouched block
//! as the zeros the guest would see there, without reading (and so
//! without committing) its memory: [`LazyRam::hash_words`].
//!
//! # Hostile guests
//! Only IPAs inside guest RAM are ever mapped; a fault anywhere else is
//! not a first touch, and goes on to device emulation or the abort it got
//! before.

use crate::hw::Hw;
use board_support::Region;
use core::fmt;

/// The granule of lazy mapping (a level-2 block of the 4 KiB granule).
pub const BLOCK_SIZE: u64 = 2 << 20;
/// Most guest RAM tracked: 16 GiB (the Pi 4 has 8 at most).
pub const MAX_BLOCKS: usize = 8192;
const WORDS: usize = MAX_BLOCKS / 64;
/// Words read from the hardware at a time when hashing.
const CHUNK_WORDS: usize = 64;

/// Why guest RAM cannot be tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LazyRamError {
    /// Guest RAM must start on a block boundary and end on a page one.
    Misaligned { base: u64, size: u64 },
    /// More guest RAM than [`MAX_BLOCKS`] blocks.
    TooLarge { size: u64 },
}

impl fmt::Display for LazyRamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Misaligned { base, size } => write!(
                f,
                "guest RAM {base:#x} + {size:#x} must start 2 MiB-aligned and end 4 KiB-aligned"
            ),
            Self::TooLarge { size } => write!(
                f,
                "guest RAM of {} MiB is more than the {} MiB tracked",
                size >> 20,
                (MAX_BLOCKS as u64 * BLOCK_SIZE) >> 20
            ),
        }
    }
}

/// A stretch of guest RAM that is mapped and holds what the guest put
/// there (or the hypervisor before entry), 8-byte aligned: the only memory
/// [`Hw::read_ram`] is asked to read. Made only by [`LazyRam`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TouchedSpan {
    base: u64,
    words: usize,
}

impl TouchedSpan {
    /// Its first byte (an identity address: the IPA is the PA).
    pub const fn base(&self) -> u64 {
        self.base
    }
    /// Its length in 64-bit words.
    pub const fn words(&self) -> usize {
        self.words
    }
}

/// A block of guest RAM touched for the first time: not mapped at stage 2
/// yet, so the guest cannot see it, and holding leftovers until the board
/// zeroes it ([`LazyRam::first_touch`]). Made only by [`LazyRam`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreshBlock(Region);

impl FreshBlock {
    /// The block (2 MiB-aligned; cut at the end of guest RAM).
    pub const fn region(&self) -> Region {
        self.0
    }
}

/// Guest RAM and the blocks of it that are touched (zeroed or loaded, and
/// mapped at stage 2).
#[derive(Clone, Debug)]
pub struct LazyRam {
    ram: Region,
    touched: [u64; WORDS],
}

impl LazyRam {
    /// Tracks `ram`, with nothing touched yet.
    ///
    /// # Errors
    /// [`LazyRamError`] if `ram` is misaligned or too large.
    pub fn new(ram: Region) -> Result<Self, LazyRamError> {
        if !ram.base.is_multiple_of(BLOCK_SIZE) || !ram.size.is_multiple_of(4096) || ram.size == 0 {
            return Err(LazyRamError::Misaligned {
                base: ram.base,
                size: ram.size,
            });
        }
        if ram.size.div_ceil(BLOCK_SIZE) > MAX_BLOCKS as u64 {
            return Err(LazyRamError::TooLarge { size: ram.size });
        }
        Ok(Self {
            ram,
            touched: [0; WORDS],
        })
    }

    /// The guest RAM tracked.
    pub const fn region(&self) -> Region {
        self.ram
    }

    fn blocks(&self) -> usize {
        self.ram.size.div_ceil(BLOCK_SIZE) as usize
    }

    fn index_of(&self, ipa: u64) -> Option<usize> {
        self.ram
            .contains(ipa)
            .then(|| ((ipa - self.ram.base) / BLOCK_SIZE) as usize)
    }

    /// Block `i`, cut at the end of guest RAM.
    fn block(&self, i: usize) -> Region {
        let base = self.ram.base + i as u64 * BLOCK_SIZE;
        Region::new(base, BLOCK_SIZE.min(self.ram.end() - base))
    }

    fn is_touched_block(&self, i: usize) -> bool {
        self.touched[i / 64] & (1 << (i % 64)) != 0
    }

    fn set_touched(&mut self, i: usize) {
        self.touched[i / 64] |= 1 << (i % 64);
    }

    /// Whether the block holding `ipa` is touched (`false` outside RAM).
    pub fn is_touched(&self, ipa: u64) -> bool {
        self.index_of(ipa).is_some_and(|i| self.is_touched_block(i))
    }

    /// How many blocks are touched.
    pub fn touched_blocks(&self) -> usize {
        self.touched.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Marks the blocks that `area` overlaps as touched: what the
    /// hypervisor writes before entry. The part of guest RAM outside RAM
    /// is ignored.
    pub fn touch(&mut self, area: Region) {
        if area.size == 0 {
            return;
        }
        let (Some(first), Some(last)) = (
            self.index_of(area.base.max(self.ram.base)),
            self.index_of(area.end().min(self.ram.end()).saturating_sub(1)),
        ) else {
            return;
        };
        for i in first..=last {
            self.set_touched(i);
        }
    }

    /// The touched blocks as maximal runs, in address order: what stage 2
    /// maps before entry.
    pub fn touched_runs(&self) -> impl Iterator<Item = Region> + '_ {
        let n = self.blocks();
        let mut i = 0;
        core::iter::from_fn(move || {
            while i < n && !self.is_touched_block(i) {
                i += 1;
            }
            if i == n {
                return None;
            }
            let start = self.block(i).base;
            while i < n && self.is_touched_block(i) {
                i += 1;
            }
            Some(Region::new(start, self.block(i - 1).end() - start))
        })
    }

    /// A stage-2 translation fault at `ipa`: if it is the first touch of a
    /// block of guest RAM, marks the block touched and returns it, for the
    /// caller to zero and map before the guest retries. `None` for an IPA
    /// outside guest RAM or in a block already touched: not ours to
    /// handle (a device access, or a fault the guest gets).
    pub fn first_touch(&mut self, ipa: u64) -> Option<FreshBlock> {
        let i = self.index_of(ipa)?;
        if self.is_touched_block(i) {
            return None;
        }
        self.set_touched(i);
        Some(FreshBlock(self.block(i)))
    }

    /// Hands the 64-bit words of guest RAM `[offset, offset + len)`
    /// (offsets from its base; cut at its end; whole words only) to
    /// `each`, in order: read from the hardware where a block is touched,
    /// zeros where it is not, without reading there.
    pub fn hash_words(&self, hw: &impl Hw, offset: u64, len: u64, mut each: impl FnMut(u64)) {
        let start = self.ram.base.saturating_add(offset).min(self.ram.end());
        let end = start.saturating_add(len).min(self.ram.end());
        let (start, end) = (start.next_multiple_of(8), end - end % 8);
        let mut at = start;
        let mut buf = [0u64; CHUNK_WORDS];
        while at < end {
            let Some(i) = self.index_of(at) else { break };
            let upto = self.block(i).end().min(end);
            if self.is_touched_block(i) {
                while at < upto {
                    let words = (((upto - at) / 8) as usize).min(CHUNK_WORDS);
                    let span = TouchedSpan { base: at, words };
                    hw.read_ram(span, &mut buf[..words]);
                    buf[..words].iter().for_each(|&w| each(w));
                    at += words as u64 * 8;
                }
            } else {
                (0..(upto - at) / 8).for_each(|_| each(0));
                at = upto;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::fingerprint::{Fingerprint, memory_slice};
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    const MIB: u64 = 1 << 20;
    /// The default board's guest RAM: 1 GiB less the hypervisor's 32 MiB.
    const RAM: Region = Region::new(0x4200_0000, 992 * MIB);

    /// Guest RAM as the hardware holds it (every word nonzero: leftovers
    /// a guest must never see, unless a touched block holds them), and
    /// every read asked of it.
    #[derive(Default)]
    struct FakeRam {
        reads: RefCell<Vec<TouchedSpan>>,
    }

    /// What the fake RAM holds at `addr`.
    fn held(addr: u64) -> u64 {
        addr | 1 << 63
    }

    fn held_from(addr: u64, words: usize) -> Vec<u64> {
        (0..words as u64).map(|i| held(addr + i * 8)).collect()
    }

    impl Hw for FakeRam {
        fn read_lr(&self, _: usize) -> u64 {
            0
        }
        fn write_lr(&mut self, _: usize, _: u64) {}
        fn set_underflow(&mut self, _: bool) {}
        fn counter(&self) -> u64 {
            0
        }
        fn frequency(&self) -> u64 {
            1
        }
        fn arm_timer(&mut self, _: Option<u64>) {}
        fn wait_for_interrupt(&mut self) {}
        fn read_ram(&self, span: TouchedSpan, out: &mut [u64]) {
            self.reads.borrow_mut().push(span);
            assert!(out.len() <= span.words());
            for (i, w) in out.iter_mut().enumerate() {
                *w = held(span.base() + i as u64 * 8);
            }
        }
    }

    fn words_of(ram: &LazyRam, hw: &FakeRam, offset: u64, len: u64) -> Vec<u64> {
        let mut v = Vec::new();
        ram.hash_words(hw, offset, len, |w| v.push(w));
        v
    }

    #[test]
    fn the_first_touch_of_a_block_maps_it_once() {
        let mut ram = LazyRam::new(RAM).unwrap();
        assert_eq!(ram.touched_blocks(), 0);
        let ipa = RAM.base + 5 * BLOCK_SIZE + 0x1234;
        assert_eq!(
            ram.first_touch(ipa).map(|b| b.region()),
            Some(Region::new(RAM.base + 5 * BLOCK_SIZE, BLOCK_SIZE))
        );
        assert!(ram.is_touched(ipa));
        assert!(ram.is_touched(RAM.base + 5 * BLOCK_SIZE));
        assert!(!ram.is_touched(RAM.base + 6 * BLOCK_SIZE));
        // The same block again: not a first touch (already mapped).
        assert_eq!(ram.first_touch(ipa + 8), None);
        assert_eq!(ram.touched_blocks(), 1);
        // The last block, and the last byte of RAM.
        let last = RAM.end() - 1;
        assert_eq!(
            ram.first_touch(last).map(|b| b.region()),
            Some(Region::new(RAM.end() - BLOCK_SIZE, BLOCK_SIZE))
        );
    }

    /// A hostile guest: nothing outside its RAM is ever a first touch.
    #[test]
    fn faults_outside_guest_ram_are_not_first_touches() {
        let mut ram = LazyRam::new(RAM).unwrap();
        for ipa in [
            0,
            0x0900_0000,          // the console UART
            RAM.base - 1,         // the hypervisor's own RAM
            0x4000_0000,          // the hypervisor's image
            RAM.end(),            // just past the top
            u64::MAX,             // nowhere
            (1 << 40) + RAM.base, // guest RAM's address past the 40-bit IPA
        ] {
            assert_eq!(ram.first_touch(ipa), None, "{ipa:#x}");
            assert!(!ram.is_touched(ipa));
        }
        assert_eq!(ram.touched_blocks(), 0);
    }

    #[test]
    fn a_partial_last_block_is_cut_at_the_end_of_ram() {
        let ram_region = Region::new(0x4200_0000, 3 * MIB);
        let mut ram = LazyRam::new(ram_region).unwrap();
        assert_eq!(
            ram.first_touch(0x4200_0000 + 2 * MIB + 5)
                .map(|b| b.region()),
            Some(Region::new(0x4200_0000 + 2 * MIB, MIB))
        );
        assert_eq!(ram.first_touch(0x4200_0000 + 3 * MIB), None);
    }

    #[test]
    fn what_is_loaded_before_entry_is_touched_in_runs() {
        let mut ram = LazyRam::new(RAM).unwrap();
        // A kernel over three blocks (not block-aligned at its end), the
        // initramfs and the DTB at the top; an area partly outside RAM.
        ram.touch(Region::new(RAM.base, 2 * BLOCK_SIZE + 0x10));
        ram.touch(Region::new(RAM.end() - 3 * BLOCK_SIZE + 0x1000, 0x2000));
        ram.touch(Region::new(RAM.end() - BLOCK_SIZE, BLOCK_SIZE));
        ram.touch(Region::new(RAM.end() - 0x1000, 0x10_0000));
        ram.touch(Region::new(0x1000, 0x1000));
        ram.touch(Region::new(RAM.base + 100 * BLOCK_SIZE, 0));
        let runs: Vec<Region> = ram.touched_runs().collect();
        assert_eq!(
            runs,
            vec![
                Region::new(RAM.base, 3 * BLOCK_SIZE),
                Region::new(RAM.end() - 3 * BLOCK_SIZE, BLOCK_SIZE),
                Region::new(RAM.end() - BLOCK_SIZE, BLOCK_SIZE),
            ]
        );
        assert_eq!(ram.touched_blocks(), 5);
        assert_eq!(ram.first_touch(RAM.base + 0x10), None);
        assert!(ram.first_touch(RAM.base + 3 * BLOCK_SIZE).is_some());
    }

    #[test]
    fn untouched_blocks_hash_as_zeros_without_being_read() {
        let mut ram = LazyRam::new(RAM).unwrap();
        let hw = FakeRam::default();
        // Block 0 untouched: zeros, and no read at all.
        assert_eq!(words_of(&ram, &hw, 0, 4096), vec![0; 512]);
        assert!(hw.reads.borrow().is_empty());
        // Touched: what the hardware holds, read in chunks inside it.
        ram.touch(Region::new(RAM.base, 1));
        let words = words_of(&ram, &hw, 4096, 4096);
        assert_eq!(words, held_from(RAM.base + 4096, 512));
        for span in hw.reads.borrow().iter() {
            assert!(ram.is_touched(span.base()));
            assert!(ram.is_touched(span.base() + span.words() as u64 * 8 - 1));
        }
    }

    #[test]
    fn a_span_across_blocks_reads_only_the_touched_one() {
        let mut ram = LazyRam::new(RAM).unwrap();
        let hw = FakeRam::default();
        ram.touch(Region::new(RAM.base + BLOCK_SIZE, 1));
        let words = words_of(&ram, &hw, BLOCK_SIZE - 64, 128);
        assert_eq!(&words[..8], &[0; 8]);
        assert_eq!(&words[8..], &held_from(RAM.base + BLOCK_SIZE, 8)[..]);
        assert_eq!(
            *hw.reads.borrow(),
            vec![TouchedSpan {
                base: RAM.base + BLOCK_SIZE,
                words: 8
            }]
        );
        // Past the end of RAM: cut, never read outside.
        let tail = words_of(&ram, &hw, RAM.size - 16, 4096);
        assert_eq!(tail, vec![0, 0]);
        assert!(words_of(&ram, &hw, RAM.size + 8, 64).is_empty());
    }

    /// The fingerprint of a boundary over lazily mapped RAM equals the one
    /// over RAM zeroed before entry, for every slice.
    #[test]
    fn the_fingerprint_slice_equals_zeroed_ram() {
        let small = Region::new(0x4200_0000, 4 * BLOCK_SIZE);
        let mut ram = LazyRam::new(small).unwrap();
        let mut hw = FakeRam::default();
        ram.touch(Region::new(small.base + BLOCK_SIZE, 1));
        // What RAM zeroed before entry would hold: the touched block's
        // contents, zeros elsewhere.
        let zeroed: Vec<u64> = (0..small.size / 8)
            .map(|i| small.base + i * 8)
            .map(|a| if ram.is_touched(a) { held(a) } else { 0 })
            .collect();
        for epoch in 0..(small.size / 4096) {
            let (off, len) = memory_slice(epoch, small.size, 4096);
            let mut lazy = Fingerprint::new();
            ram.hash_words(&hw, off, len, |w| lazy.word(w));
            let mut eager = Fingerprint::new();
            eager.words(&zeroed[(off / 8) as usize..((off + len) / 8) as usize]);
            assert_eq!(lazy.finish(), eager.finish(), "epoch {epoch}");
        }
        for span in hw.reads.get_mut().iter() {
            assert!(ram.is_touched(span.base()));
        }
    }

    #[test]
    fn misaligned_or_huge_ram_is_refused() {
        assert_eq!(
            LazyRam::new(Region::new(0x4210_0000, 4 * MIB)).err(),
            Some(LazyRamError::Misaligned {
                base: 0x4210_0000,
                size: 4 * MIB
            })
        );
        assert!(LazyRam::new(Region::new(0x4200_0000, 4 * MIB + 8)).is_err());
        assert!(LazyRam::new(Region::new(0x4200_0000, 0)).is_err());
        assert_eq!(
            LazyRam::new(Region::new(0, 32 << 30)).err(),
            Some(LazyRamError::TooLarge { size: 32 << 30 })
        );
        assert!(LazyRam::new(Region::new(0, 16 << 30)).is_ok());
    }
}
