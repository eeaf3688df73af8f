//! A fixed pool of 4 KiB translation tables, handed out in order.
//!
//! The pool never frees: the hypervisor builds its tables once (guest RAM,
//! its own identity map) and later only splits a block now and then. On the
//! board the pool is a static array and the EL2 map is an identity map, so
//! `base_pa` is the array's address. The builders turn table addresses back
//! into pool indices themselves and never dereference a physical address,
//! which is why host tests may pick any base.

use core::fmt;

/// Size of one translation table (4 KiB granule), in bytes.
pub const TABLE_SIZE: u64 = 4096;

/// Entries in one 4 KiB translation table.
pub const ENTRIES: usize = 512;

/// Highest output address + 1 with the 4 KiB granule and 48-bit output
/// addresses (descriptor bits \[47:12\]; 52-bit needs FEAT_LPA2, not used).
pub const OA_LIMIT: u64 = 1 << 48;

/// One translation table: 512 descriptors, 4 KiB aligned.
#[repr(C, align(4096))]
pub struct PageTable(pub [u64; ENTRIES]);

impl PageTable {
    /// A table of invalid descriptors, for `static` pools:
    /// `static mut POOL: [PageTable; 16] = [PageTable::EMPTY; 16];`
    pub const EMPTY: Self = Self([0; ENTRIES]);
}

/// Why a pool cannot be made or cannot hand out a table. All of these are
/// hypervisor configuration errors (pool too small or badly placed), never
/// the guest's doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// `base_pa` is not a multiple of 4 KiB.
    Misaligned { base_pa: u64 },
    /// The pool would reach past the 48-bit output address range.
    OutOfRange { base_pa: u64 },
    /// No table is left (`needed` more wanted, `available` left).
    Exhausted { needed: usize, available: usize },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned { base_pa } => {
                write!(f, "table pool at {base_pa:#x} is not 4 KiB aligned")
            }
            Self::OutOfRange { base_pa } => {
                write!(f, "table pool at {base_pa:#x} reaches past 48-bit PA")
            }
            Self::Exhausted { needed, available } => write!(
                f,
                "table pool exhausted: {needed} tables needed, {available} left"
            ),
        }
    }
}

impl core::error::Error for PoolError {}

/// A pool of translation tables; table `i` lives at `base_pa + i * 4096`.
pub struct TablePool<'a> {
    tables: &'a mut [PageTable],
    base_pa: u64,
    used: usize,
}

impl<'a> TablePool<'a> {
    /// Wraps `tables`, whose first table is at physical address `base_pa`.
    ///
    /// # Errors
    /// [`PoolError::Misaligned`] if `base_pa` is not 4 KiB aligned,
    /// [`PoolError::OutOfRange`] if the pool reaches past 48-bit PA.
    pub fn new(tables: &'a mut [PageTable], base_pa: u64) -> Result<Self, PoolError> {
        if !base_pa.is_multiple_of(TABLE_SIZE) {
            return Err(PoolError::Misaligned { base_pa });
        }
        let end = (tables.len() as u64)
            .checked_mul(TABLE_SIZE)
            .and_then(|len| base_pa.checked_add(len));
        match end {
            Some(end) if end <= OA_LIMIT => Ok(Self {
                tables,
                base_pa,
                used: 0,
            }),
            _ => Err(PoolError::OutOfRange { base_pa }),
        }
    }

    /// Physical address of table 0.
    pub fn base_pa(&self) -> u64 {
        self.base_pa
    }

    /// Number of tables in the pool.
    pub fn capacity(&self) -> usize {
        self.tables.len()
    }

    /// Tables handed out so far (including any skipped for alignment).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Tables still free.
    pub fn available(&self) -> usize {
        self.tables.len() - self.used
    }

    /// Hands out one zeroed (all-invalid) table and returns its index.
    pub(crate) fn alloc(&mut self) -> Result<usize, PoolError> {
        self.alloc_aligned(1)
    }

    /// Hands out `count` consecutive zeroed tables (`count` a power of two)
    /// whose first physical address is aligned to `count * 4096`, skipping
    /// (and wasting) tables to reach that alignment. Used for concatenated
    /// stage-2 root tables.
    pub(crate) fn alloc_aligned(&mut self, count: usize) -> Result<usize, PoolError> {
        debug_assert!(count.is_power_of_two());
        let align = count as u64 * TABLE_SIZE;
        let first_pa = self.pa(self.used);
        let skip = (first_pa.next_multiple_of(align) - first_pa) / TABLE_SIZE;
        let needed = skip as usize + count;
        if needed > self.available() {
            return Err(PoolError::Exhausted {
                needed,
                available: self.available(),
            });
        }
        let first = self.used + skip as usize;
        for table in &mut self.tables[first..first + count] {
            table.0 = [0; ENTRIES];
        }
        self.used += needed;
        Ok(first)
    }

    /// Physical address of table `index`.
    pub(crate) fn pa(&self, index: usize) -> u64 {
        self.base_pa + index as u64 * TABLE_SIZE
    }

    /// Index of the handed-out table at physical address `pa`, if any.
    pub(crate) fn index_of(&self, pa: u64) -> Option<usize> {
        let offset = pa.checked_sub(self.base_pa)?;
        if !offset.is_multiple_of(TABLE_SIZE) {
            return None;
        }
        let index = usize::try_from(offset / TABLE_SIZE).ok()?;
        (index < self.used).then_some(index)
    }

    /// Descriptor `entry` of table `index`.
    pub(crate) fn read(&self, index: usize, entry: usize) -> u64 {
        self.tables[index].0[entry]
    }

    /// Writes descriptor `entry` of table `index` (one aligned 64-bit store).
    pub(crate) fn write(&mut self, index: usize, entry: usize, desc: u64) {
        self.tables[index].0[entry] = desc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_base() {
        let mut t = [PageTable::EMPTY];
        assert_eq!(
            TablePool::new(&mut t, 0x1234).err(),
            Some(PoolError::Misaligned { base_pa: 0x1234 })
        );
        assert_eq!(
            TablePool::new(&mut t, OA_LIMIT).err(),
            Some(PoolError::OutOfRange { base_pa: OA_LIMIT })
        );
        assert!(TablePool::new(&mut t, OA_LIMIT - TABLE_SIZE).is_ok());
    }

    #[test]
    fn alloc_zeroes_and_exhausts() {
        let mut t = [PageTable::EMPTY, PageTable::EMPTY];
        t[1].0[7] = 0xdead;
        let mut pool = TablePool::new(&mut t, 0x8000_0000).unwrap();
        assert_eq!(pool.alloc(), Ok(0));
        assert_eq!(pool.alloc(), Ok(1));
        assert_eq!(pool.read(1, 7), 0);
        assert_eq!(
            pool.alloc(),
            Err(PoolError::Exhausted {
                needed: 1,
                available: 0
            })
        );
        assert_eq!(pool.index_of(0x8000_1000), Some(1));
        assert_eq!(pool.index_of(0x8000_2000), None);
        assert_eq!(pool.index_of(0x8000_0800), None);
        assert_eq!(pool.index_of(0x7fff_f000), None);
    }

    #[test]
    fn alloc_aligned_skips_to_alignment() {
        let mut t = [PageTable::EMPTY, PageTable::EMPTY, PageTable::EMPTY];
        let mut pool = TablePool::new(&mut t, 0x8000_1000).unwrap();
        assert_eq!(pool.alloc_aligned(2), Ok(1));
        assert_eq!(pool.pa(1), 0x8000_2000);
        assert_eq!(pool.used(), 3);
        assert_eq!(pool.available(), 0);
    }
}
