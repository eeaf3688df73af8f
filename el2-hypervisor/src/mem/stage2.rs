//! Stage-2 translation (guest IPA → PA) for the one guest: tables, VTCR_EL2, VTTBR_EL2.
//!
//! # IPA size: 40 bits
//! T0SZ = 24, lookup starts at level 1 with two concatenated level-1 tables
//! (VTCR_EL2.SL0 = 1; an 8 KiB root, 8 KiB aligned), then levels 2 and 3.
//! Why 40 bits:
//! - it covers every guest layout we build: QEMU virt RAM from 1 GiB up,
//!   the Pi 4's 0..8 GiB, device space below 4 GiB — and also QEMU virt's
//!   high regions (second redistributor at 256 GiB, high PCIe window
//!   512 GiB..1 TiB), which a 39-bit IPA would cut off;
//! - it is KVM's default IPA size, so a guest layout that runs under KVM runs here;
//! - it stays within the PA range of every core we target (Cortex-A72 has
//!   44 bits, `-cpu max` 48), which the IPA size must not exceed;
//! - three lookup levels, as with 39 bits; the price is one more root table.
//!
//! # Descriptors (Arm ARM D8.3, stage 2, VTCR_EL2/HCR_EL2.FWB = 0)
//! MemAttr \[5:2\], S2AP \[7:6\], SH \[9:8\], AF \[10\], XN \[54:53\]; see
//! [`Stage2Attrs`] and the picture in [`crate::mem`].
//!
//! # Keeping the TLBs right
//! `map` only fills invalid entries: no TLB maintenance is needed, only a
//! `DSB ISHST` before the guest runs. `unmap` calls its hook after every
//! entry it breaks; see [`Stage2::unmap`]. The hypervisor edits these tables
//! only while the guest's (single) vCPU is stopped.

use aarch64_cpu::registers::{VTCR_EL2, VTTBR_EL2};
use core::fmt;

use super::pool::TablePool;
use super::tables::{LeafDescriptor, MapError, Tables};
use crate::regs::bits;

/// Bits of intermediate physical address translated (VTCR_EL2.T0SZ = 64 - 40).
pub const IPA_BITS: u32 = 40;
/// Size of the guest's IPA space: 1 TiB.
pub const IPA_LIMIT: u64 = 1 << IPA_BITS;
/// Concatenated level-1 tables in the root (2^(40 - 39)).
pub const ROOT_TABLES: usize = 2;

// Stage-2 leaf attribute fields (Arm ARM D8.3.2, "Stage 2 memory region attributes").
const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2; // Outer WB [5:4], Inner WB [3:2]
const MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2; // Device [5:4]=00, nGnRE [3:2]=01
const S2AP_RO: u64 = 0b01 << 6;
const S2AP_RW: u64 = 0b11 << 6;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
/// XN\[1:0\] = 0b10: not executable at EL1 or EL0 (with or without FEAT_XNX).
const XN: u64 = 0b10 << 53;

/// Memory type and access rights of a stage-2 mapping.
///
/// Normal memory is Write-Back inner and outer, Inner Shareable; Device
/// memory is Device-nGnRE (its shareability field is ignored by the
/// architecture and left 0). The access flag is always set, so no access
/// flag faults are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage2Attrs {
    /// Guest RAM: read, write, execute.
    NormalRwx,
    /// RAM the guest may not execute from.
    NormalRw,
    /// Write-protected RAM, still executable (writes trap: dirty tracking for
    /// state transfer to a new backup).
    NormalRx,
    /// A device the guest reaches directly: read/write, never executable.
    DeviceRw,
}

impl Stage2Attrs {
    const ALL: [Self; 4] = [
        Self::NormalRwx,
        Self::NormalRw,
        Self::NormalRx,
        Self::DeviceRw,
    ];

    /// The leaf descriptor's attribute bits.
    pub const fn bits(self) -> u64 {
        match self {
            Self::NormalRwx => MEMATTR_NORMAL_WB | S2AP_RW | SH_INNER | AF,
            Self::NormalRw => MEMATTR_NORMAL_WB | S2AP_RW | SH_INNER | AF | XN,
            Self::NormalRx => MEMATTR_NORMAL_WB | S2AP_RO | SH_INNER | AF,
            Self::DeviceRw => MEMATTR_DEVICE_NGNRE | S2AP_RW | AF | XN,
        }
    }

    /// The variant whose attribute bits are `bits` (attribute bits only).
    pub fn from_bits(bits: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.bits() == bits)
    }
}

/// A stage-2 entry that `unmap` just made invalid. Before the hook returns,
/// the arch layer must issue `DSB ISHST; TLBI IPAS2E1IS, x` with
/// `x = ipa >> 12` (the VMID in VTTBR_EL2 selects the guest), then `DSB ISH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Tlbi {
    /// IPA of the first byte the broken entry mapped.
    pub ipa: u64,
    /// Its lookup level (1: 1 GiB block, 2: 2 MiB block, 3: page) — the
    /// TTL hint for FEAT_TTL.
    pub level: u8,
}

/// The guest's stage-2 tables.
pub struct Stage2<'a> {
    tables: Tables<'a>,
}

impl<'a> Stage2<'a> {
    /// Takes `pool` and allocates the 8 KiB root from it (skipping one
    /// table if needed for the 8 KiB alignment).
    ///
    /// # Errors
    /// [`MapError::PoolExhausted`] if the pool cannot hold the root.
    pub fn new(pool: TablePool<'a>) -> Result<Self, MapError> {
        Ok(Self {
            tables: Tables::new(pool, ROOT_TABLES)?,
        })
    }

    /// Maps guest `[ipa, ipa + size)` to `[pa, pa + size)` with 1 GiB or
    /// 2 MiB blocks where both addresses are aligned, else 4 KiB pages.
    ///
    /// Mapping over an existing mapping is an error unless it is the very
    /// same translation with the same attributes (then that part is left as
    /// is). A refused request changes nothing.
    ///
    /// # Errors
    /// [`MapError::Misaligned`], [`MapError::EmptyRange`],
    /// [`MapError::OutOfRange`] (IPA past 1 TiB or PA past 48 bits),
    /// [`MapError::AlreadyMapped`], [`MapError::PoolExhausted`].
    pub fn map(
        &mut self,
        ipa: u64,
        pa: u64,
        size: u64,
        attrs: Stage2Attrs,
    ) -> Result<(), MapError> {
        self.tables.map(ipa, pa, size, attrs.bits())
    }

    /// Unmaps guest `[ipa, ipa + size)`; unmapped holes in it are skipped.
    /// A block only partly inside the range is split (one table per split
    /// level, taken from the pool) so the rest stays mapped.
    ///
    /// Break-before-make: each entry is made invalid, then `tlbi` is called
    /// (see [`Stage2Tlbi`] for what it must do), and only then is a split
    /// block's replacement table linked in. After `unmap` returns, combined
    /// stage 1+2 TLB entries (tagged by guest VA) must still go: `TLBI
    /// VMALLE1IS; DSB ISH; ISB` before the guest runs again.
    ///
    /// # Errors
    /// [`MapError::Misaligned`], [`MapError::EmptyRange`],
    /// [`MapError::OutOfRange`], [`MapError::PoolExhausted`] (checked before
    /// anything is changed).
    pub fn unmap(
        &mut self,
        ipa: u64,
        size: u64,
        mut tlbi: impl FnMut(Stage2Tlbi),
    ) -> Result<(), MapError> {
        self.tables
            .unmap(ipa, size, &mut |ipa, level| tlbi(Stage2Tlbi { ipa, level }))
    }

    /// Translates a guest IPA: the PA and the mapping's attributes, or
    /// `None` if the IPA is unmapped (a guest access would fault to EL2).
    pub fn translate(&self, ipa: u64) -> Option<(u64, Stage2Attrs)> {
        let (pa, bits) = self.tables.translate(ipa)?;
        Some((pa, Stage2Attrs::from_bits(bits)?))
    }

    /// The leaf descriptor that maps `ipa`, for dumps and tests.
    pub fn leaf(&self, ipa: u64) -> Option<LeafDescriptor> {
        self.tables.leaf(ipa)
    }

    /// Physical address of the (8 KiB aligned) root, for VTTBR_EL2.BADDR.
    pub fn root_pa(&self) -> u64 {
        self.tables.root_pa()
    }

    /// The table pool (for its fill level).
    pub fn pool(&self) -> &TablePool<'a> {
        self.tables.pool()
    }
}

/// The core's PA range (ID_AA64MMFR0_EL1.PARange) is below the 40-bit IPA size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedPaRange(pub u8);

impl fmt::Display for UnsupportedPaRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PARange {:#06b} is smaller than the {IPA_BITS}-bit IPA stage 2 needs",
            self.0
        )
    }
}

impl core::error::Error for UnsupportedPaRange {}

/// ID_AA64MMFR0_EL1.PARange → {VTCR,TCR}_EL2.PS, capped at 48 bits (0b101):
/// 52-bit output needs FEAT_LPA2 with the 4 KiB granule, which we do not use.
pub(crate) const fn ps_field(pa_range_field: u8) -> u64 {
    let field = pa_range_field & 0xf;
    if field > 0b101 { 0b101 } else { field as u64 }
}

/// VTCR_EL2 for these tables (Arm ARM D23.2 "VTCR_EL2"):
///
/// | field | bits | value |
/// | --- | --- | --- |
/// | T0SZ | \[5:0\] | 24: 40-bit IPA |
/// | SL0 | \[7:6\] | 0b01: start at level 1 (4 KiB granule) |
/// | IRGN0 | \[9:8\] | 0b01: walks Inner Write-Back Read/Write-Allocate |
/// | ORGN0 | \[11:10\] | 0b01: Outer Write-Back Read/Write-Allocate |
/// | SH0 | \[13:12\] | 0b11: Inner Shareable |
/// | TG0 | \[15:14\] | 0b00: 4 KiB granule |
/// | PS | \[18:16\] | PARange, capped at 0b101 (48 bits) |
/// | VS | \[19\] | 0: 8-bit VMID |
/// | HA, HD | \[21\], \[22\] | 0: no hardware access/dirty flags |
/// | RES1 | \[31\] | 1 |
///
/// `pa_range_field` is ID_AA64MMFR0_EL1.PARange (bits \[3:0\]).
///
/// # Errors
/// [`UnsupportedPaRange`] if the core has fewer than 40 PA bits (PARange
/// 0b0000 or 0b0001): the IPA size may not exceed the PA size.
pub const fn vtcr_el2(pa_range_field: u8) -> Result<u64, UnsupportedPaRange> {
    if pa_range_field & 0xf < 0b0010 {
        return Err(UnsupportedPaRange(pa_range_field));
    }
    // Every field but PS is fixed: a named constant, folded at compile time.
    const FIXED: u64 = bits(&[
        VTCR_EL2::T0SZ.val(64 - IPA_BITS as u64),
        VTCR_EL2::SL0::Granule4KBLevel1,
        VTCR_EL2::IRGN0::NormalWBRAWA,
        VTCR_EL2::ORGN0::NormalWBRAWA,
        VTCR_EL2::SH0::Inner,
        VTCR_EL2::TG0::Granule4KB,
        VTCR_EL2::VS::Bits8,
        VTCR_EL2::HA::Disabled,
        VTCR_EL2::HD::Disabled,
        VTCR_EL2::RES1::SET,
    ]);
    Ok(FIXED | VTCR_EL2::PS.val(ps_field(pa_range_field)).value)
}

/// VTTBR_EL2 (Arm ARM D23.2 "VTTBR_EL2"): BADDR \[47:1\] = `root_pa` (8 KiB
/// aligned, as [`Stage2::root_pa`] is), VMID \[55:48\] (8-bit, VTCR_EL2.VS = 0),
/// CnP \[0\] = 0.
pub const fn vttbr_el2(root_pa: u64, vmid: u8) -> u64 {
    VTTBR_EL2::BADDR.val(root_pa >> 1).value
        | VTTBR_EL2::VMID.val(vmid as u64).value
        | VTTBR_EL2::CnP::CLEAR.value
}

#[cfg(test)]
mod tests {
    use super::super::pool::PageTable;
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn pool(tables: &mut [PageTable]) -> TablePool<'_> {
        TablePool::new(tables, 0x8000_0000).unwrap()
    }

    #[test]
    fn guest_ram_uses_2m_blocks() {
        let mut t = [const { PageTable::EMPTY }; 8];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(
            0x4200_0000,
            0x4200_0000,
            0x6000_0000 - 0x4200_0000,
            Stage2Attrs::NormalRwx,
        )
        .unwrap();
        // Root (2) + one level-2 table; 240 blocks of 2 MiB.
        assert_eq!(s2.pool().used(), 3);
        for ipa in [0x4200_0000, 0x4ab4_5678, 0x5fe0_0000] {
            assert_eq!(s2.leaf(ipa).unwrap().level, 2);
        }
        assert_eq!(
            s2.translate(0x4200_0000),
            Some((0x4200_0000, Stage2Attrs::NormalRwx))
        );
        assert_eq!(
            s2.translate(0x5fff_fff8),
            Some((0x5fff_fff8, Stage2Attrs::NormalRwx))
        );
        assert_eq!(s2.translate(0x41ff_ffff), None);
        assert_eq!(s2.translate(0x6000_0000), None);
        assert_eq!(s2.translate(0), None);
        assert_eq!(s2.translate(IPA_LIMIT), None);
    }

    #[test]
    fn one_gib_block_and_offset_translation() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(GIB, 3 * GIB, GIB, Stage2Attrs::NormalRw).unwrap();
        assert_eq!(s2.pool().used(), 2);
        assert_eq!(s2.leaf(GIB + 5).unwrap().level, 1);
        assert_eq!(
            s2.translate(GIB + 0x1234),
            Some((3 * GIB + 0x1234, Stage2Attrs::NormalRw))
        );
        assert_eq!(
            s2.translate(2 * GIB - 1),
            Some((4 * GIB - 1, Stage2Attrs::NormalRw))
        );
        assert_eq!(s2.translate(2 * GIB), None);
    }

    #[test]
    fn single_page() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(0x0900_0000, 0x0900_0000, 0x1000, Stage2Attrs::DeviceRw)
            .unwrap();
        assert_eq!(s2.pool().used(), 4);
        assert_eq!(s2.leaf(0x0900_0000).unwrap().level, 3);
        assert_eq!(
            s2.translate(0x0900_0fff),
            Some((0x0900_0fff, Stage2Attrs::DeviceRw))
        );
        assert_eq!(s2.translate(0x0900_1000), None);
        assert_eq!(s2.translate(0x08ff_ffff), None);
    }

    #[test]
    fn misaligned_pa_falls_back_to_pages() {
        let mut t = [const { PageTable::EMPTY }; 8];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(0x4000_0000, 0x8000_1000, 4 * MIB, Stage2Attrs::NormalRwx)
            .unwrap();
        assert_eq!(s2.leaf(0x4000_0000).unwrap().level, 3);
        assert_eq!(s2.translate(0x403f_f000).unwrap().0, 0x8040_0000);
        // Root + L2 + two L3 tables.
        assert_eq!(s2.pool().used(), 5);
    }

    #[test]
    fn bad_arguments() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        let a = Stage2Attrs::NormalRwx;
        assert_eq!(
            s2.map(0x800, 0, 0x1000, a),
            Err(MapError::Misaligned { value: 0x800 })
        );
        assert_eq!(
            s2.map(0, 0x10, 0x1000, a),
            Err(MapError::Misaligned { value: 0x10 })
        );
        assert_eq!(
            s2.map(0, 0, 0x1001, a),
            Err(MapError::Misaligned { value: 0x1001 })
        );
        assert_eq!(s2.map(0, 0, 0, a), Err(MapError::EmptyRange));
        assert_eq!(
            s2.map(IPA_LIMIT - 0x1000, 0, 0x2000, a),
            Err(MapError::OutOfRange {
                addr: IPA_LIMIT - 0x1000,
                size: 0x2000
            })
        );
        assert_eq!(
            s2.map(0, (1 << 48) - 0x1000, 0x2000, a),
            Err(MapError::OutOfRange {
                addr: (1 << 48) - 0x1000,
                size: 0x2000
            })
        );
        assert_eq!(
            s2.map(0x1000, 0, u64::MAX - 0xfff, a),
            Err(MapError::OutOfRange {
                addr: 0x1000,
                size: u64::MAX - 0xfff
            })
        );
        assert_eq!(
            s2.unmap(0x1800, 0x1000, |_| {}),
            Err(MapError::Misaligned { value: 0x1800 })
        );
        assert_eq!(s2.unmap(0, 0, |_| {}), Err(MapError::EmptyRange));
        assert_eq!(s2.pool().used(), 2);
    }

    #[test]
    fn pool_exhaustion_changes_nothing() {
        let mut t = [const { PageTable::EMPTY }; 3];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        assert_eq!(
            s2.map(0x0900_0000, 0x0900_0000, 0x1000, Stage2Attrs::DeviceRw),
            Err(MapError::PoolExhausted {
                needed: 2,
                available: 1
            })
        );
        assert_eq!(s2.pool().available(), 1);
        assert_eq!(s2.translate(0x0900_0000), None);
        // A 2 MiB block needs only the level-2 table.
        s2.map(0x4000_0000, 0x4000_0000, 2 * MIB, Stage2Attrs::NormalRwx)
            .unwrap();
        assert_eq!(s2.pool().available(), 0);

        let mut t = [const { PageTable::EMPTY }; 1];
        assert_eq!(
            Stage2::new(pool(&mut t)).err(),
            Some(MapError::PoolExhausted {
                needed: 2,
                available: 1
            })
        );
    }

    #[test]
    fn overlap_rules() {
        let mut t = [const { PageTable::EMPTY }; 8];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(0x4000_0000, 0x4000_0000, 4 * MIB, Stage2Attrs::NormalRwx)
            .unwrap();
        // The same translation again (in part) is accepted and changes nothing.
        let used = s2.pool().used();
        s2.map(0x4010_0000, 0x4010_0000, 0x1000, Stage2Attrs::NormalRwx)
            .unwrap();
        s2.map(0x4000_0000, 0x4000_0000, 4 * MIB, Stage2Attrs::NormalRwx)
            .unwrap();
        assert_eq!(s2.pool().used(), used);
        assert_eq!(s2.leaf(0x4010_0000).unwrap().level, 2);
        // Other attributes or another PA: refused, nothing changed.
        assert_eq!(
            s2.map(0x4010_0000, 0x4010_0000, 0x1000, Stage2Attrs::NormalRw),
            Err(MapError::AlreadyMapped { addr: 0x4010_0000 })
        );
        assert_eq!(
            s2.map(0x3fff_f000, 0x3fff_f000, 0x2000, Stage2Attrs::NormalRw),
            Err(MapError::AlreadyMapped { addr: 0x4000_0000 })
        );
        assert_eq!(s2.translate(0x3fff_f000), None);
        assert_eq!(
            s2.map(0x4020_0000, 0x5020_0000, 2 * MIB, Stage2Attrs::NormalRwx),
            Err(MapError::AlreadyMapped { addr: 0x4020_0000 })
        );
    }

    #[test]
    fn concatenated_root_covers_40_bits() {
        let mut t = [const { PageTable::EMPTY }; 4];
        // An odd-4K base: the pool skips one table for the 8 KiB root.
        let mut s2 = Stage2::new(TablePool::new(&mut t, 0x8000_1000).unwrap()).unwrap();
        assert_eq!(s2.root_pa(), 0x8000_2000);
        assert_eq!(s2.pool().used(), 3);
        // Level-1 entry 512 lives in the second root table.
        s2.map(512 * GIB, 7 * GIB, GIB, Stage2Attrs::NormalRwx)
            .unwrap();
        s2.map(IPA_LIMIT - GIB, 8 * GIB, GIB, Stage2Attrs::NormalRwx)
            .unwrap();
        assert_eq!(t_read(&s2, 512 * GIB), Some(7 * GIB));
        assert_eq!(t_read(&s2, IPA_LIMIT - 1), Some(9 * GIB - 1));
        assert_eq!(t_read(&s2, 0), None);
        assert_eq!(s2.pool().used(), 3);
    }

    fn t_read(s2: &Stage2<'_>, ipa: u64) -> Option<u64> {
        s2.translate(ipa).map(|(pa, _)| pa)
    }

    #[test]
    fn descriptor_bits_match_the_arm_arm() {
        let mut t = [const { PageTable::EMPTY }; 8];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(0x4200_0000, 0x4200_0000, 2 * MIB, Stage2Attrs::NormalRwx)
            .unwrap();
        s2.map(0x0900_0000, 0x0900_0000, 0x1000, Stage2Attrs::DeviceRw)
            .unwrap();

        // Level-2 block: [1:0]=01, MemAttr[5:2]=1111, S2AP[7:6]=11, SH[9:8]=11,
        // AF[10]=1, OA[47:21]=0x4200_0000, XN[54:53]=00.
        let block = s2.leaf(0x4200_0000).unwrap();
        assert_eq!(block.raw, 0x0000_0000_4200_07fd);
        assert_eq!(block.raw & 0b11, 0b01);
        assert_eq!((block.raw >> 2) & 0xf, 0b1111);
        assert_eq!((block.raw >> 6) & 0b11, 0b11);
        assert_eq!((block.raw >> 8) & 0b11, 0b11);
        assert_eq!((block.raw >> 10) & 1, 1);
        assert_eq!((block.raw >> 53) & 0b11, 0b00);

        // Level-3 page: [1:0]=11, MemAttr=0001 (Device-nGnRE), S2AP=11,
        // SH=00, AF=1, OA[47:12]=0x0900_0000, XN=10.
        let page = s2.leaf(0x0900_0000).unwrap();
        assert_eq!(page.raw, 0x0040_0000_0900_04c7);
        assert_eq!(page.raw & 0b11, 0b11);
        assert_eq!((page.raw >> 2) & 0xf, 0b0001);
        assert_eq!((page.raw >> 6) & 0b11, 0b11);
        assert_eq!((page.raw >> 8) & 0b11, 0b00);
        assert_eq!((page.raw >> 10) & 1, 1);
        assert_eq!((page.raw >> 53) & 0b11, 0b10);
        assert_eq!(page.output_base(), 0x0900_0000);

        // Read-only executable RAM: S2AP=01, XN=00.
        assert_eq!(Stage2Attrs::NormalRx.bits(), 0x77c);
        assert_eq!(Stage2Attrs::NormalRw.bits(), 0x0040_0000_0000_07fc);
        for a in Stage2Attrs::ALL {
            assert_eq!(Stage2Attrs::from_bits(a.bits()), Some(a));
        }
    }

    #[test]
    fn vtcr_fields_for_48_bit_pa() {
        let v = vtcr_el2(0b0101).unwrap();
        assert_eq!(v & 0x3f, 24, "T0SZ");
        assert_eq!((v >> 6) & 0b11, 0b01, "SL0: start at level 1");
        assert_eq!((v >> 8) & 0b11, 0b01, "IRGN0: WB RA WA");
        assert_eq!((v >> 10) & 0b11, 0b01, "ORGN0: WB RA WA");
        assert_eq!((v >> 12) & 0b11, 0b11, "SH0: inner shareable");
        assert_eq!((v >> 14) & 0b11, 0b00, "TG0: 4 KiB");
        assert_eq!((v >> 16) & 0b111, 0b101, "PS: 48 bits");
        assert_eq!((v >> 19) & 1, 0, "VS: 8-bit VMID");
        assert_eq!((v >> 31) & 1, 1, "RES1");
        assert_eq!(v, 0x8005_3558);
        // Cortex-A72: 44 bits; 52-bit cores are capped at 48; < 40 bits refused.
        assert_eq!((vtcr_el2(0b0100).unwrap() >> 16) & 0b111, 0b100);
        assert_eq!((vtcr_el2(0b0110).unwrap() >> 16) & 0b111, 0b101);
        assert_eq!(vtcr_el2(0b0001), Err(UnsupportedPaRange(0b0001)));
    }

    #[test]
    fn vttbr_layout() {
        assert_eq!(vttbr_el2(0x4008_2000, 1), 0x0001_0000_4008_2000);
        assert_eq!(vttbr_el2(0x4008_2000, 0xff) >> 48, 0xff);
    }

    /// The typed VTCR_EL2 and VTTBR_EL2 against the shifts they replace.
    #[test]
    fn typed_vtcr_and_vttbr_equal_the_hand_built_ones() {
        for pa_range in 0b0010..=0xf {
            let old = 24
                | 0b01 << 6
                | 0b01 << 8
                | 0b01 << 10
                | 0b11 << 12
                | ps_field(pa_range) << 16
                | 1 << 31;
            assert_eq!(vtcr_el2(pa_range), Ok(old), "PARange {pa_range:#x}");
        }
        for root in [0, 0x4008_2000, 0xffff_ffff_ffff_ffff, 0x0001_2345_6789_a001] {
            for vmid in [0, 1, 0x5a, 0xff] {
                let old = (root & 0x0000_ffff_ffff_fffe) | (vmid as u64) << 48;
                assert_eq!(vttbr_el2(root, vmid), old);
            }
        }
    }

    #[test]
    fn unmap_page_splits_block_break_before_make() {
        let mut t = [const { PageTable::EMPTY }; 8];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(0x4000_0000, 0x4000_0000, 8 * MIB, Stage2Attrs::NormalRwx)
            .unwrap();
        let mut seen = [None; 4];
        let mut n = 0;
        s2.unmap(0x4020_3000, 0x1000, |e| {
            seen[n] = Some(e);
            n += 1;
        })
        .unwrap();
        assert_eq!(
            seen[..n],
            [Some(Stage2Tlbi {
                ipa: 0x4020_0000,
                level: 2
            })]
        );
        assert_eq!(s2.translate(0x4020_3000), None);
        assert_eq!(
            s2.translate(0x4020_2fff),
            Some((0x4020_2fff, Stage2Attrs::NormalRwx))
        );
        assert_eq!(
            s2.translate(0x4020_4000),
            Some((0x4020_4000, Stage2Attrs::NormalRwx))
        );
        assert_eq!(s2.leaf(0x4020_4000).unwrap().level, 3);
        assert_eq!(s2.leaf(0x4000_0000).unwrap().level, 2);

        // Map the page back (it may now go to the device, here: itself).
        s2.map(0x4020_3000, 0x4020_3000, 0x1000, Stage2Attrs::NormalRwx)
            .unwrap();
        assert_eq!(
            s2.translate(0x4020_3000),
            Some((0x4020_3000, Stage2Attrs::NormalRwx))
        );

        // A whole block: one invalidation, no split; holes are skipped.
        n = 0;
        s2.unmap(0x4040_0000, 4 * MIB, |e| {
            seen[n] = Some(e);
            n += 1;
        })
        .unwrap();
        assert_eq!(
            seen[..n],
            [
                Some(Stage2Tlbi {
                    ipa: 0x4040_0000,
                    level: 2
                }),
                Some(Stage2Tlbi {
                    ipa: 0x4060_0000,
                    level: 2
                })
            ]
        );
        s2.unmap(0x4040_0000, 4 * MIB, |_| panic!("nothing to break"))
            .unwrap();
        assert_eq!(s2.translate(0x4050_0000), None);
    }

    #[test]
    fn unmap_page_from_gib_block() {
        let mut t = [const { PageTable::EMPTY }; 4];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(GIB, GIB, GIB, Stage2Attrs::NormalRwx).unwrap();
        let mut calls = 0;
        s2.unmap(GIB + 0x0030_0000, 0x1000, |e| {
            assert_eq!(e, Stage2Tlbi { ipa: GIB, level: 1 });
            calls += 1;
        })
        .unwrap();
        assert_eq!(calls, 1);
        assert_eq!(s2.pool().used(), 4);
        assert_eq!(s2.translate(GIB + 0x0030_0000), None);
        assert_eq!(s2.leaf(GIB + 0x0030_1000).unwrap().level, 3);
        assert_eq!(s2.leaf(GIB + 0x0020_0000).unwrap().level, 3);
        assert_eq!(s2.leaf(GIB + 0x0040_0000).unwrap().level, 2);
        assert_eq!(s2.leaf(GIB + 0x001f_f000).unwrap().level, 2);
        assert_eq!(
            s2.translate(2 * GIB - 8),
            Some((2 * GIB - 8, Stage2Attrs::NormalRwx))
        );
    }

    #[test]
    fn unmap_exhaustion_changes_nothing() {
        let mut t = [const { PageTable::EMPTY }; 3];
        let mut s2 = Stage2::new(pool(&mut t)).unwrap();
        s2.map(GIB, GIB, GIB, Stage2Attrs::NormalRwx).unwrap();
        // Splitting 1 GiB down to a page needs a level-2 and a level-3 table.
        assert_eq!(
            s2.unmap(GIB, 0x1000, |_| panic!("must not break")),
            Err(MapError::PoolExhausted {
                needed: 2,
                available: 1
            })
        );
        assert_eq!(s2.leaf(GIB).unwrap().level, 1);
        // A 2 MiB-aligned hole needs only the level-2 table.
        s2.unmap(GIB, 2 * MIB, |_| {}).unwrap();
        assert_eq!(s2.translate(GIB), None);
        assert_eq!(
            s2.translate(GIB + 2 * MIB),
            Some((GIB + 2 * MIB, Stage2Attrs::NormalRwx))
        );
    }
}
