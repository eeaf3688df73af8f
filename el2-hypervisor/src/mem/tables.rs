//! The translation-table engine shared by stage 2 and the EL2 map.
//!
//! VMSAv8-64, 4 KiB granule, lookup starting at level 1 (1 GiB per entry),
//! then level 2 (2 MiB) and level 3 (4 KiB). The root may be several
//! concatenated level-1 tables (stage 2 only). The engine knows descriptor
//! types and output addresses; the callers supply the attribute bits of
//! their leaves (stage-2 MemAttr/S2AP or stage-1 AttrIndx/AP) and decode them.
//!
//! Rules, for both users:
//! - `map` uses the largest block (1 GiB, 2 MiB) that the alignment of input
//!   and output addresses allows, else 4 KiB pages. It never replaces a valid
//!   descriptor: where a leaf already maps part of the range, that part must
//!   be the very same translation with the same attributes (then it is left
//!   as is), else the call fails with [`MapError::AlreadyMapped`]. Where a
//!   table already exists it goes down into it. A failing `map` changes
//!   nothing (it checks the whole range and counts tables first).
//! - `unmap` clears leaves and splits blocks that are only partly inside the
//!   range (break-before-make through a caller hook, see `unmap`). Holes in
//!   the range are skipped. Tables are never freed; a later `map` reuses them.

use core::fmt;
use core::sync::atomic::{Ordering, compiler_fence};

use super::pool::{ENTRIES, OA_LIMIT, PoolError, TABLE_SIZE, TablePool};

/// Descriptor bits \[47:12\]: output address / next-level table address.
pub(crate) const OA_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Leaf attribute bits: lower attributes \[11:2\] and upper attributes \[63:50\].
pub(crate) const ATTR_MASK: u64 = 0xfffc_0000_0000_0ffc;

const TYPE_MASK: u64 = 0b11;
/// bits\[1:0\] = 0b01: block descriptor (levels 1 and 2).
const TYPE_BLOCK: u64 = 0b01;
/// bits\[1:0\] = 0b11: table descriptor (levels 0..2) or page descriptor (level 3).
const TYPE_TABLE_OR_PAGE: u64 = 0b11;

/// First lookup level of every table tree here.
const START_LEVEL: u8 = 1;
const LAST_LEVEL: u8 = 3;

/// Bytes mapped by one entry at `level` (1: 1 GiB, 2: 2 MiB, 3: 4 KiB).
pub(crate) const fn entry_size(level: u8) -> u64 {
    1 << (12 + 9 * (LAST_LEVEL - level) as u32)
}

/// Why a map or unmap request was refused. All of them are hypervisor
/// errors (bad board description, pool too small): guest addresses must be
/// checked before they reach a table builder. A refused request changes
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// An address or the size is not a multiple of 4 KiB (`value` is the first
    /// offending argument).
    Misaligned { value: u64 },
    /// `size` is zero.
    EmptyRange,
    /// The input range passes the end of the input address space (IPA or VA
    /// size), or the output range passes 48-bit PA.
    OutOfRange { addr: u64, size: u64 },
    /// `addr` is already mapped, to another address or with other attributes.
    AlreadyMapped { addr: u64 },
    /// The pool cannot supply the tables the request needs.
    PoolExhausted { needed: usize, available: usize },
    /// A table descriptor on the way to `addr` points outside the pool: the
    /// tables were written by someone else (a hypervisor bug).
    BadTable { addr: u64 },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned { value } => write!(f, "{value:#x} is not 4 KiB aligned"),
            Self::EmptyRange => f.write_str("empty range"),
            Self::OutOfRange { addr, size } => {
                write!(f, "range {addr:#x}+{size:#x} is out of the address space")
            }
            Self::AlreadyMapped { addr } => write!(f, "{addr:#x} is already mapped"),
            Self::PoolExhausted { needed, available } => write!(
                f,
                "table pool exhausted: {needed} tables needed, {available} left"
            ),
            Self::BadTable { addr } => {
                write!(f, "table on the walk to {addr:#x} is outside the pool")
            }
        }
    }
}

impl core::error::Error for MapError {}

impl From<PoolError> for MapError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Exhausted { needed, available } => Self::PoolExhausted { needed, available },
            // A pool is checked when it is made; alloc reports only exhaustion.
            PoolError::Misaligned { .. } | PoolError::OutOfRange { .. } => Self::PoolExhausted {
                needed: 1,
                available: 0,
            },
        }
    }
}

/// A leaf (block or page) descriptor found by a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafDescriptor {
    /// Lookup level of the leaf: 1 (1 GiB block), 2 (2 MiB block), 3 (4 KiB page).
    pub level: u8,
    /// The descriptor as stored in the table.
    pub raw: u64,
}

impl LeafDescriptor {
    /// Bytes the leaf maps.
    pub const fn size(&self) -> u64 {
        entry_size(self.level)
    }

    /// Output address of the leaf's first byte.
    pub const fn output_base(&self) -> u64 {
        self.raw & OA_MASK & !(self.size() - 1)
    }

    /// The leaf's attribute bits (\[11:2\] and \[63:50\]).
    pub const fn attrs(&self) -> u64 {
        self.raw & ATTR_MASK
    }
}

/// What a descriptor is, at a given level.
enum Kind {
    Invalid,
    Table(u64),
    Leaf(LeafDescriptor),
}

const fn kind(desc: u64, level: u8) -> Kind {
    match desc & TYPE_MASK {
        TYPE_TABLE_OR_PAGE if level < LAST_LEVEL => Kind::Table(desc & OA_MASK),
        TYPE_TABLE_OR_PAGE => Kind::Leaf(LeafDescriptor { level, raw: desc }),
        // 0b01 at level 3 is reserved: it faults like an invalid entry.
        TYPE_BLOCK if level < LAST_LEVEL => Kind::Leaf(LeafDescriptor { level, raw: desc }),
        _ => Kind::Invalid,
    }
}

const fn leaf_desc(level: u8, oa: u64, attrs: u64) -> u64 {
    let ty = if level == LAST_LEVEL {
        TYPE_TABLE_OR_PAGE
    } else {
        TYPE_BLOCK
    };
    (oa & OA_MASK) | (attrs & ATTR_MASK) | ty
}

/// A request for `map`: input `va` goes to `pa + (va - start)`.
struct MapJob {
    start: u64,
    pa: u64,
    attrs: u64,
}

/// A translation-table tree rooted at level 1.
pub(crate) struct Tables<'a> {
    pool: TablePool<'a>,
    root: usize,
    /// Entries in the root (512 per concatenated table).
    root_entries: usize,
}

impl<'a> Tables<'a> {
    /// Allocates the root: `root_tables` concatenated level-1 tables
    /// (1 or a power of two), aligned to their total size.
    pub(crate) fn new(mut pool: TablePool<'a>, root_tables: usize) -> Result<Self, MapError> {
        let root = pool.alloc_aligned(root_tables)?;
        Ok(Self {
            pool,
            root,
            root_entries: root_tables * ENTRIES,
        })
    }

    /// Size of the input address space (root entries × 1 GiB).
    pub(crate) fn input_limit(&self) -> u64 {
        self.root_entries as u64 * entry_size(START_LEVEL)
    }

    pub(crate) fn root_pa(&self) -> u64 {
        self.pool.pa(self.root)
    }

    pub(crate) fn pool(&self) -> &TablePool<'a> {
        &self.pool
    }

    /// Index of the entry for `va` in a table at `level`.
    fn index(&self, level: u8, va: u64) -> usize {
        let i = (va / entry_size(level)) as usize;
        if level == START_LEVEL {
            i % self.root_entries
        } else {
            i % ENTRIES
        }
    }

    // Concatenated root tables are consecutive in the pool, so entry i of a
    // table tree node spans into table `t + i / 512`.
    fn read(&self, table: usize, i: usize) -> u64 {
        self.pool.read(table + i / ENTRIES, i % ENTRIES)
    }

    fn write(&mut self, table: usize, i: usize, desc: u64) {
        self.pool.write(table + i / ENTRIES, i % ENTRIES, desc);
    }

    fn table_desc(&self, table: usize) -> u64 {
        self.pool.pa(table) | TYPE_TABLE_OR_PAGE
    }

    fn child(&self, table_pa: u64, va: u64) -> Result<usize, MapError> {
        self.pool
            .index_of(table_pa)
            .ok_or(MapError::BadTable { addr: va })
    }

    /// The leaf that maps `va`, if any.
    pub(crate) fn leaf(&self, va: u64) -> Option<LeafDescriptor> {
        if va >= self.input_limit() {
            return None;
        }
        let mut table = self.root;
        let mut level = START_LEVEL;
        loop {
            match kind(self.read(table, self.index(level, va)), level) {
                Kind::Invalid => return None,
                Kind::Leaf(leaf) => return Some(leaf),
                Kind::Table(pa) => {
                    table = self.pool.index_of(pa)?;
                    level += 1;
                }
            }
        }
    }

    /// Translates `va`: the output address and the leaf's attribute bits.
    pub(crate) fn translate(&self, va: u64) -> Option<(u64, u64)> {
        let leaf = self.leaf(va)?;
        Some((leaf.output_base() + (va & (leaf.size() - 1)), leaf.attrs()))
    }

    fn check_range(&self, va: u64, size: u64) -> Result<u64, MapError> {
        if size == 0 {
            return Err(MapError::EmptyRange);
        }
        for value in [va, size] {
            if !value.is_multiple_of(TABLE_SIZE) {
                return Err(MapError::Misaligned { value });
            }
        }
        match va.checked_add(size) {
            Some(end) if end <= self.input_limit() => Ok(end),
            _ => Err(MapError::OutOfRange { addr: va, size }),
        }
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with leaf attribute bits
    /// `attrs` (see the module doc for the rules).
    pub(crate) fn map(&mut self, va: u64, pa: u64, size: u64, attrs: u64) -> Result<(), MapError> {
        let end = self.check_range(va, size)?;
        if !pa.is_multiple_of(TABLE_SIZE) {
            return Err(MapError::Misaligned { value: pa });
        }
        if pa.checked_add(size).is_none_or(|pa_end| pa_end > OA_LIMIT) {
            return Err(MapError::OutOfRange { addr: pa, size });
        }
        let job = MapJob {
            start: va,
            pa,
            attrs: attrs & ATTR_MASK,
        };
        // Dry run: finds conflicts and counts the tables to allocate, so that
        // the real run cannot fail half-way.
        let mut needed = 0;
        self.map_range(
            Some(self.root),
            START_LEVEL,
            va,
            end,
            &job,
            Some(&mut needed),
        )?;
        if needed > self.pool.available() {
            return Err(MapError::PoolExhausted {
                needed,
                available: self.pool.available(),
            });
        }
        self.map_range(Some(self.root), START_LEVEL, va, end, &job, None)
    }

    /// Maps the part `[from, to)` of `job` that falls in `table` at `level`.
    /// `table` is `None` for a table the dry run would create (all invalid).
    /// `dry` counts the tables to create instead of changing anything.
    fn map_range(
        &mut self,
        table: Option<usize>,
        level: u8,
        from: u64,
        to: u64,
        job: &MapJob,
        mut dry: Option<&mut usize>,
    ) -> Result<(), MapError> {
        let size = entry_size(level);
        let mut va = from;
        while va < to {
            let base = va & !(size - 1);
            let next = to.min(base + size);
            let pa = job.pa + (va - job.start);
            let i = self.index(level, va);
            let desc = table.map_or(0, |t| self.read(t, i));
            match kind(desc, level) {
                Kind::Invalid => {
                    let whole = va == base && next == base + size && pa.is_multiple_of(size);
                    if whole {
                        if dry.is_none() {
                            let t = table.ok_or(MapError::BadTable { addr: va })?;
                            self.write(t, i, leaf_desc(level, pa, job.attrs));
                        }
                    } else if let Some(count) = dry.as_deref_mut() {
                        *count += 1;
                        self.map_range(None, level + 1, va, next, job, Some(count))?;
                    } else {
                        let t = table.ok_or(MapError::BadTable { addr: va })?;
                        let child = self.pool.alloc()?;
                        self.map_range(Some(child), level + 1, va, next, job, None)?;
                        // Filled first, linked last: a walker never sees a half-built table.
                        compiler_fence(Ordering::SeqCst);
                        let link = self.table_desc(child);
                        self.write(t, i, link);
                    }
                }
                Kind::Table(child_pa) => {
                    let child = self.child(child_pa, va)?;
                    self.map_range(Some(child), level + 1, va, next, job, dry.as_deref_mut())?;
                }
                Kind::Leaf(leaf) => {
                    let same = leaf.output_base() + (va - base) == pa && leaf.attrs() == job.attrs;
                    if !same {
                        return Err(MapError::AlreadyMapped { addr: va });
                    }
                }
            }
            va = next;
        }
        Ok(())
    }

    /// Unmaps `[va, va + size)`. For every descriptor it makes invalid in
    /// the live tree (a leaf, or a block about to be replaced by a table) it
    /// calls `broken(entry_va, level)` right after the store; the caller must
    /// make the old entry leave the TLBs there (break-before-make).
    pub(crate) fn unmap(
        &mut self,
        va: u64,
        size: u64,
        broken: &mut (dyn FnMut(u64, u8) + '_),
    ) -> Result<(), MapError> {
        let end = self.check_range(va, size)?;
        let mut needed = 0;
        self.count_splits(self.root, START_LEVEL, va, end, &mut needed)?;
        if needed > self.pool.available() {
            return Err(MapError::PoolExhausted {
                needed,
                available: self.pool.available(),
            });
        }
        self.unmap_range(self.root, START_LEVEL, va, end, Some(broken))
    }

    /// Counts the tables that splitting blocks partly inside `[from, to)` needs.
    fn count_splits(
        &self,
        table: usize,
        level: u8,
        from: u64,
        to: u64,
        count: &mut usize,
    ) -> Result<(), MapError> {
        let size = entry_size(level);
        let mut va = from;
        while va < to {
            let base = va & !(size - 1);
            let next = to.min(base + size);
            match kind(self.read(table, self.index(level, va)), level) {
                Kind::Invalid => {}
                Kind::Table(pa) => {
                    let child = self.child(pa, va)?;
                    self.count_splits(child, level + 1, va, next, count)?;
                }
                Kind::Leaf(_) => {
                    if va != base || next != base + size {
                        *count += split_tables(level, va, next);
                    }
                }
            }
            va = next;
        }
        Ok(())
    }

    /// Unmaps `[from, to)` within `table` at `level`. `broken` is `None`
    /// inside a table not yet linked into the live tree (nothing to invalidate).
    fn unmap_range(
        &mut self,
        table: usize,
        level: u8,
        from: u64,
        to: u64,
        mut broken: Option<&mut (dyn FnMut(u64, u8) + '_)>,
    ) -> Result<(), MapError> {
        let size = entry_size(level);
        let mut va = from;
        while va < to {
            let base = va & !(size - 1);
            let next = to.min(base + size);
            let i = self.index(level, va);
            match kind(self.read(table, i), level) {
                Kind::Invalid => {}
                Kind::Table(pa) => {
                    let child = self.child(pa, va)?;
                    self.unmap_range(child, level + 1, va, next, broken.as_deref_mut())?;
                }
                Kind::Leaf(_) if va == base && next == base + size => {
                    self.write(table, i, 0);
                    if let Some(hook) = broken.as_deref_mut() {
                        compiler_fence(Ordering::SeqCst);
                        hook(base, level);
                    }
                }
                Kind::Leaf(leaf) => {
                    // Split: build the table that maps the rest of the block,
                    // off the live tree, then break the block and link the table.
                    let child = self.pool.alloc()?;
                    let child_size = entry_size(level + 1);
                    for k in 0..ENTRIES {
                        let oa = leaf.output_base() + k as u64 * child_size;
                        self.write(child, k, leaf_desc(level + 1, oa, leaf.attrs()));
                    }
                    self.unmap_range(child, level + 1, va, next, None)?;
                    self.write(table, i, 0);
                    if let Some(hook) = broken.as_deref_mut() {
                        compiler_fence(Ordering::SeqCst);
                        hook(base, level);
                    }
                    compiler_fence(Ordering::SeqCst);
                    let link = self.table_desc(child);
                    self.write(table, i, link);
                }
            }
            va = next;
        }
        Ok(())
    }
}

/// Tables needed to split a block at `level` that `[from, to)` covers only
/// partly: one for the block, and recursively one for each of the (at most
/// two) next-level blocks at the ends that are covered only partly.
fn split_tables(level: u8, from: u64, to: u64) -> usize {
    let child_level = level + 1;
    if child_level == LAST_LEVEL {
        return 1;
    }
    let size = entry_size(child_level);
    let mut count = 1;
    let mut va = from;
    while va < to {
        let base = va & !(size - 1);
        let next = to.min(base + size);
        if va != base || next != base + size {
            count += split_tables(child_level, va, next);
        }
        va = next;
    }
    count
}
