//! The hypervisor's own stage-1 identity map at EL2 (TTBR0_EL2, non-VHE:
//! HCR_EL2.E2H = 0), with MAIR_EL2, TCR_EL2 and SCTLR_EL2 values for it.
//!
//! # VA size: 39 bits
//! TCR_EL2.T0SZ = 25: one level-1 root table (512 GiB), then levels 2 and 3.
//! The map is an identity map, so the VA size must cover every PA the
//! hypervisor touches: QEMU virt (RAM from 1 GiB, devices below 4 GiB) and
//! the Pi 4 (RAM 0..8 GiB, peripherals at 0xfc00_0000.. or, in the 35-bit
//! map, 0x4_7c00_0000..) all lie far below 512 GiB. Stage 1 cannot
//! concatenate root tables, so 40 bits would cost a fourth lookup level.
//!
//! # Descriptors (Arm ARM D8.3, stage 1, a regime with one privilege level)
//! AttrIndx \[4:2\] selects a MAIR_EL2 byte (0: Normal WB, 1: Device-nGnRE);
//! AP\[2:1\] \[7:6\] = 0b01 (AP\[1\] is RES1 at EL2, AP\[2\] = 0: read/write);
//! SH \[9:8\]; AF \[10\] = 1; nG \[11\] = 0 (no ASIDs in this regime); XN \[54\];
//! PXN \[53\] is RES0 here. Table descriptors carry no APTable/XNTable limits.
//!
//! # Turning it on (the arch layer)
//! With the MMU and caches off the tables are written straight to memory,
//! but the walker reads them Write-Back cacheable (TCR_EL2.IRGN0/ORGN0):
//! invalidate the pool's lines (`DC IVAC`) before the MMU goes on if they
//! might be in a cache. Then: MAIR_EL2 = [`mair_el2`], TCR_EL2 =
//! [`tcr_el2`], TTBR0_EL2 = [`El2Map::ttbr0_el2`], `ISB`, `TLBI ALLE2`,
//! `DSB ISH`, `ISB`, SCTLR_EL2 = [`sctlr_el2_mmu_on`], `ISB`.

use super::pool::TablePool;
use super::stage2::ps_field;
use super::tables::{LeafDescriptor, MapError, Tables};

/// Bits of virtual address translated (TCR_EL2.T0SZ = 64 - 39).
pub const VA_BITS: u32 = 39;
/// End of the identity-mapped address space: 512 GiB.
pub const VA_LIMIT: u64 = 1 << VA_BITS;

/// MAIR_EL2 index of Normal memory: Write-Back, Read/Write-Allocate, inner and outer.
pub const MAIR_IDX_NORMAL: u64 = 0;
/// MAIR_EL2 index of Device-nGnRE memory.
pub const MAIR_IDX_DEVICE: u64 = 1;
/// MAIR attribute byte: Normal, Outer and Inner Write-Back Non-transient, Read/Write-Allocate.
const MAIR_NORMAL_WB: u64 = 0xff;
/// MAIR attribute byte: Device-nGnRE.
const MAIR_DEVICE_NGNRE: u64 = 0x04;

// Stage-1 leaf attribute fields at EL2.
const AP_RW_EL2: u64 = 0b01 << 6; // AP[2]=0 read/write, AP[1] RES1
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = 1 << 54;

/// What a region of the identity map holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// RAM the hypervisor runs from: Normal WB, Inner Shareable, read/write/execute.
    Normal,
    /// RAM the hypervisor only reads or writes (guest memory, buffers):
    /// Normal WB, Inner Shareable, never executable at EL2.
    NormalXn,
    /// MMIO (UART, GIC, virtio): Device-nGnRE, read/write, never executable.
    Device,
}

impl RegionKind {
    const ALL: [Self; 3] = [Self::Normal, Self::NormalXn, Self::Device];

    /// The leaf descriptor's attribute bits.
    pub const fn bits(self) -> u64 {
        match self {
            Self::Normal => MAIR_IDX_NORMAL << 2 | AP_RW_EL2 | SH_INNER | AF,
            Self::NormalXn => MAIR_IDX_NORMAL << 2 | AP_RW_EL2 | SH_INNER | AF | XN,
            // Shareability is ignored for Device memory; left 0.
            Self::Device => MAIR_IDX_DEVICE << 2 | AP_RW_EL2 | AF | XN,
        }
    }

    /// The kind whose attribute bits are `bits` (attribute bits only).
    pub fn from_bits(bits: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.bits() == bits)
    }
}

/// A physical range the hypervisor must reach, mapped at VA = PA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub size: u64,
    pub kind: RegionKind,
}

impl Region {
    pub const fn new(base: u64, size: u64, kind: RegionKind) -> Self {
        Self { base, size, kind }
    }

    /// The same region grown outwards to whole 4 KiB pages (for device
    /// windows smaller than a page, such as a 0x200-byte virtio-mmio slot).
    pub const fn page_rounded(self) -> Self {
        let base = self.base & !0xfff;
        let end = (self.base + self.size + 0xfff) & !0xfff;
        Self::new(base, end - base, self.kind)
    }
}

/// The hypervisor's EL2 translation tables.
pub struct El2Map<'a> {
    tables: Tables<'a>,
}

impl<'a> El2Map<'a> {
    /// Takes `pool` and allocates the root table from it.
    ///
    /// # Errors
    /// [`MapError::PoolExhausted`] if the pool is empty.
    pub fn new(pool: TablePool<'a>) -> Result<Self, MapError> {
        Ok(Self {
            tables: Tables::new(pool, 1)?,
        })
    }

    /// Builds the map of `regions` in `pool`.
    ///
    /// # Errors
    /// As [`El2Map::map`], for the first region refused.
    pub fn build(pool: TablePool<'a>, regions: &[Region]) -> Result<Self, MapError> {
        let mut map = Self::new(pool)?;
        for region in regions {
            map.map(region)?;
        }
        Ok(map)
    }

    /// Identity-maps `region` with 1 GiB or 2 MiB blocks where it is aligned
    /// for them, else 4 KiB pages. Regions may overlap where they agree on
    /// the kind (a UART inside a device window is fine); an overlap of
    /// another kind is refused and changes nothing.
    ///
    /// # Errors
    /// [`MapError::Misaligned`] (base or size not 4 KiB multiples, see
    /// [`Region::page_rounded`]), [`MapError::EmptyRange`],
    /// [`MapError::OutOfRange`] (past 512 GiB), [`MapError::AlreadyMapped`],
    /// [`MapError::PoolExhausted`].
    pub fn map(&mut self, region: &Region) -> Result<(), MapError> {
        self.tables
            .map(region.base, region.base, region.size, region.kind.bits())
    }

    /// Translates `va`: the PA and the kind of the region, or `None`.
    pub fn translate(&self, va: u64) -> Option<(u64, RegionKind)> {
        let (pa, bits) = self.tables.translate(va)?;
        Some((pa, RegionKind::from_bits(bits)?))
    }

    /// The leaf descriptor that maps `va`, for dumps and tests.
    pub fn leaf(&self, va: u64) -> Option<LeafDescriptor> {
        self.tables.leaf(va)
    }

    /// Physical address of the root table.
    pub fn root_pa(&self) -> u64 {
        self.tables.root_pa()
    }

    /// TTBR0_EL2: BADDR \[47:1\] = the root (4 KiB aligned), CnP \[0\] = 0.
    pub fn ttbr0_el2(&self) -> u64 {
        self.root_pa() & 0x0000_ffff_ffff_fffe
    }

    /// The table pool (for its fill level).
    pub fn pool(&self) -> &TablePool<'a> {
        self.tables.pool()
    }
}

/// MAIR_EL2 (Arm ARM D23.2 "MAIR_EL2"): Attr0 = 0xff (Normal, Inner/Outer
/// Write-Back Non-transient, Read/Write-Allocate), Attr1 = 0x04 (Device-nGnRE).
pub const fn mair_el2() -> u64 {
    MAIR_NORMAL_WB << (8 * MAIR_IDX_NORMAL) | MAIR_DEVICE_NGNRE << (8 * MAIR_IDX_DEVICE)
}

/// TCR_EL2 with HCR_EL2.E2H = 0 (Arm ARM D23.2 "TCR_EL2"):
///
/// | field | bits | value |
/// | --- | --- | --- |
/// | T0SZ | \[5:0\] | 25: 39-bit VA |
/// | IRGN0 | \[9:8\] | 0b01: walks Inner Write-Back Read/Write-Allocate |
/// | ORGN0 | \[11:10\] | 0b01: Outer Write-Back Read/Write-Allocate |
/// | SH0 | \[13:12\] | 0b11: Inner Shareable |
/// | TG0 | \[15:14\] | 0b00: 4 KiB granule |
/// | PS | \[18:16\] | PARange, capped at 0b101 (48 bits) |
/// | TBI | \[20\] | 0: the top byte is part of the address |
/// | HA, HD | \[21\], \[22\] | 0 |
/// | RES1 | \[23\], \[31\] | 1 |
///
/// `pa_range_field` is ID_AA64MMFR0_EL1.PARange (bits \[3:0\]).
pub const fn tcr_el2(pa_range_field: u8) -> u64 {
    let t0sz = 64 - VA_BITS as u64;
    let irgn0 = 0b01;
    let orgn0 = 0b01;
    let sh0 = 0b11;
    let tg0 = 0b00;
    t0sz | irgn0 << 8
        | orgn0 << 10
        | sh0 << 12
        | tg0 << 14
        | ps_field(pa_range_field) << 16
        | 1 << 23
        | 1 << 31
}

/// SCTLR_EL2.M: stage-1 MMU on.
pub const SCTLR_EL2_M: u64 = 1 << 0;
/// SCTLR_EL2.A: alignment checks. Kept 0: the hypervisor is built with
/// `+strict-align`, so it makes no unaligned accesses to check.
pub const SCTLR_EL2_A: u64 = 1 << 1;
/// SCTLR_EL2.C: data and unified caches on.
pub const SCTLR_EL2_C: u64 = 1 << 2;
/// SCTLR_EL2.I: instruction cache on.
pub const SCTLR_EL2_I: u64 = 1 << 12;
/// SCTLR_EL2.WXN: writable implies execute-never. Kept 0: the `Normal`
/// region is RWX (code and data share blocks).
pub const SCTLR_EL2_WXN: u64 = 1 << 19;
/// SCTLR_EL2.EE: big-endian data and walks. Kept 0.
pub const SCTLR_EL2_EE: u64 = 1 << 25;
/// SCTLR_EL2 bits that are RES1 with E2H = 0 on ARMv8.0 (4, 5, 11, 16, 18,
/// 22, 23, 28, 29); later extensions give some of them meanings whose
/// value 1 is the ARMv8.0 behaviour.
pub const SCTLR_EL2_RES1: u64 =
    1 << 4 | 1 << 5 | 1 << 11 | 1 << 16 | 1 << 18 | 1 << 22 | 1 << 23 | 1 << 28 | 1 << 29;

/// SCTLR_EL2 with the MMU and caches on, from its `current` value: sets
/// M, C, I and the RES1 bits, clears A, WXN and EE, keeps the rest (SA, ...).
pub const fn sctlr_el2_mmu_on(current: u64) -> u64 {
    (current | SCTLR_EL2_RES1 | SCTLR_EL2_M | SCTLR_EL2_C | SCTLR_EL2_I)
        & !(SCTLR_EL2_A | SCTLR_EL2_WXN | SCTLR_EL2_EE)
}

#[cfg(test)]
mod tests {
    use super::super::pool::PageTable;
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn pool(tables: &mut [PageTable]) -> TablePool<'_> {
        TablePool::new(tables, 0x4008_0000).unwrap()
    }

    const QEMU_VIRT: [Region; 4] = [
        Region::new(0x4000_0000, GIB, RegionKind::Normal),
        Region::new(0x0800_0000, 0x0a00_0000 - 0x0800_0000, RegionKind::Device),
        Region::new(0x0900_0000, 0x1000, RegionKind::Device),
        Region::new(0x0a00_0000, 0x4000, RegionKind::Device),
    ];

    #[test]
    fn qemu_virt_layout() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let map = El2Map::build(pool(&mut t), &QEMU_VIRT).unwrap();
        // Root, a level-2 table for GiB 0, a level-3 table for virtio.
        assert_eq!(map.pool().used(), 3);
        assert_eq!(map.leaf(0x4000_0000).unwrap().level, 1);
        assert_eq!(map.leaf(0x0900_0000).unwrap().level, 2);
        assert_eq!(map.leaf(0x0a00_0000).unwrap().level, 3);
        let normal = |a: u64| Some((a, RegionKind::Normal));
        let device = |a: u64| Some((a, RegionKind::Device));
        assert_eq!(map.translate(0x4000_0000), normal(0x4000_0000));
        assert_eq!(map.translate(0x7fff_ffff), normal(0x7fff_ffff));
        assert_eq!(map.translate(0x8000_0000), None);
        assert_eq!(map.translate(0x3fff_ffff), None);
        assert_eq!(map.translate(0x0800_0000), device(0x0800_0000));
        assert_eq!(map.translate(0x0900_0018), device(0x0900_0018));
        assert_eq!(map.translate(0x09ff_ffff), device(0x09ff_ffff));
        assert_eq!(map.translate(0x07ff_ffff), None);
        assert_eq!(map.translate(0x0a00_3e00), device(0x0a00_3e00));
        assert_eq!(map.translate(0x0a00_4000), None);
        assert_eq!(map.translate(VA_LIMIT), None);
    }

    #[test]
    fn descriptor_bits_match_the_arm_arm() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let map = El2Map::build(pool(&mut t), &QEMU_VIRT).unwrap();
        // Level-1 block, Normal: [1:0]=01, AttrIndx=0, AP[2:1]=01, SH=11,
        // AF=1, nG=0, OA[47:30]=1 GiB, XN=0.
        let ram = map.leaf(0x4000_0000).unwrap();
        assert_eq!(ram.raw, 0x0000_0000_4000_0741);
        assert_eq!(ram.raw & 0b11, 0b01);
        assert_eq!((ram.raw >> 2) & 0b111, 0);
        assert_eq!((ram.raw >> 6) & 0b11, 0b01);
        assert_eq!((ram.raw >> 8) & 0b11, 0b11);
        assert_eq!((ram.raw >> 10) & 1, 1);
        assert_eq!((ram.raw >> 11) & 1, 0);
        assert_eq!((ram.raw >> 54) & 1, 0);
        // Level-2 block, Device: AttrIndx=1, SH=00, XN=1.
        assert_eq!(map.leaf(0x0900_0000).unwrap().raw, 0x0040_0000_0900_0445);
        // Level-3 page, Device: [1:0]=11.
        let page = map.leaf(0x0a00_1000).unwrap();
        assert_eq!(page.raw, 0x0040_0000_0a00_1447);
        assert_eq!((page.raw >> 2) & 0b111, 1);
        assert_eq!((page.raw >> 54) & 1, 1);
        assert_eq!(RegionKind::NormalXn.bits(), 0x0040_0000_0000_0740);
        for k in RegionKind::ALL {
            assert_eq!(RegionKind::from_bits(k.bits()), Some(k));
        }
    }

    #[test]
    fn conflicting_kind_is_refused() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let mut map = El2Map::build(pool(&mut t), &QEMU_VIRT).unwrap();
        assert_eq!(
            map.map(&Region::new(0x0900_0000, 0x1000, RegionKind::Normal)),
            Err(MapError::AlreadyMapped { addr: 0x0900_0000 })
        );
        assert_eq!(
            map.map(&Region::new(0x3fe0_0000, 4 * MIB, RegionKind::NormalXn)),
            Err(MapError::AlreadyMapped { addr: 0x4000_0000 })
        );
        assert_eq!(map.translate(0x3fe0_0000), None);
        assert_eq!(
            map.translate(0x0900_0000),
            Some((0x0900_0000, RegionKind::Device))
        );
    }

    #[test]
    fn bad_regions() {
        let mut t = [const { PageTable::EMPTY }; 2];
        let mut map = El2Map::new(pool(&mut t)).unwrap();
        let dev = RegionKind::Device;
        assert_eq!(
            map.map(&Region::new(0x0a00_0200, 0x200, dev)),
            Err(MapError::Misaligned { value: 0x0a00_0200 })
        );
        assert_eq!(
            Region::new(0x0a00_0e00, 0x400, dev).page_rounded(),
            Region::new(0x0a00_0000, 0x2000, dev)
        );
        assert_eq!(map.map(&Region::new(0, 0, dev)), Err(MapError::EmptyRange));
        assert_eq!(
            map.map(&Region::new(VA_LIMIT, 0x1000, dev)),
            Err(MapError::OutOfRange {
                addr: VA_LIMIT,
                size: 0x1000
            })
        );
        // A page needs a level-2 and a level-3 table; one is left.
        assert_eq!(
            map.map(&Region::new(0xfe20_1000, 0x1000, dev)),
            Err(MapError::PoolExhausted {
                needed: 2,
                available: 1
            })
        );
        assert_eq!(map.pool().available(), 1);
        let mut none: [PageTable; 0] = [];
        assert_eq!(
            El2Map::new(pool(&mut none)).err(),
            Some(MapError::PoolExhausted {
                needed: 1,
                available: 0
            })
        );
    }

    #[test]
    fn raspberry_pi_4_layout() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let regions = [
            Region::new(0, 0x3b40_0000, RegionKind::Normal),
            Region::new(0x4000_0000, 0xfc00_0000 - 0x4000_0000, RegionKind::NormalXn),
            Region::new(4 * GIB, 4 * GIB, RegionKind::NormalXn),
            Region::new(0xfc00_0000, 0x0400_0000, RegionKind::Device),
        ];
        let map = El2Map::build(pool(&mut t), &regions).unwrap();
        // Root, level 2 for GiB 0 and for GiB 3 (devices share it with RAM).
        assert_eq!(map.pool().used(), 3);
        assert_eq!(
            map.translate(0x3b3f_ffff),
            Some((0x3b3f_ffff, RegionKind::Normal))
        );
        assert_eq!(map.translate(0x3b40_0000), None);
        assert_eq!(
            map.translate(0xff84_1000),
            Some((0xff84_1000, RegionKind::Device))
        );
        assert_eq!(
            map.translate(0xfbff_ffff),
            Some((0xfbff_ffff, RegionKind::NormalXn))
        );
        assert_eq!(
            map.translate(0x1_fe00_0000),
            Some((0x1_fe00_0000, RegionKind::NormalXn))
        );
        assert_eq!(map.leaf(0x1_0000_0000).unwrap().level, 1);
        assert_eq!(map.translate(0x2_0000_0000), None);
    }

    #[test]
    fn system_register_values() {
        assert_eq!(mair_el2(), 0x04ff);
        let tcr = tcr_el2(0b0101);
        assert_eq!(tcr & 0x3f, 25, "T0SZ");
        assert_eq!((tcr >> 8) & 0b11, 0b01, "IRGN0");
        assert_eq!((tcr >> 10) & 0b11, 0b01, "ORGN0");
        assert_eq!((tcr >> 12) & 0b11, 0b11, "SH0");
        assert_eq!((tcr >> 14) & 0b11, 0b00, "TG0");
        assert_eq!((tcr >> 16) & 0b111, 0b101, "PS");
        assert_eq!((tcr >> 20) & 1, 0, "TBI");
        assert_eq!((tcr >> 23) & 1, 1, "RES1");
        assert_eq!((tcr >> 31) & 1, 1, "RES1");
        assert_eq!(tcr, 0x8085_3519);
        assert_eq!((tcr_el2(0b0010) >> 16) & 0b111, 0b010);

        let sctlr = sctlr_el2_mmu_on(SCTLR_EL2_A | SCTLR_EL2_WXN | 1 << 3);
        assert_eq!(
            sctlr & (SCTLR_EL2_M | SCTLR_EL2_C | SCTLR_EL2_I),
            0b1_0000_0000_0101
        );
        assert_eq!(sctlr & (SCTLR_EL2_A | SCTLR_EL2_WXN | SCTLR_EL2_EE), 0);
        assert_eq!(sctlr & (1 << 3), 1 << 3, "SA kept");
        assert_eq!(sctlr_el2_mmu_on(0), 0x30c5_1835);
    }

    #[test]
    fn ttbr0_is_the_root() {
        let mut t = [const { PageTable::EMPTY }; 1];
        let map = El2Map::new(pool(&mut t)).unwrap();
        assert_eq!(map.root_pa(), 0x4008_0000);
        assert_eq!(map.ttbr0_el2(), 0x4008_0000);
    }
}
