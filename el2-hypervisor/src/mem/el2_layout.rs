//! What the hypervisor's EL2 identity map ([`super::El2Map`]) holds on a
//! board, from its device tree: every RAM bank, the hypervisor's own part
//! of it executable, and every MMIO block the hypervisor may drive.
//!
//! | what | kind |
//! | --- | --- |
//! | the RAM it keeps (image, stacks, heap, table pools, DMA buffers) | [`RegionKind::Normal`] |
//! | the rest of RAM (guest RAM, the board's DTB, the guest bundle) | [`RegionKind::NormalXn`] |
//! | GIC blocks, the console and link UARTs, virtio-mmio slots | [`RegionKind::Device`] |
//!
//! A device block smaller than a page is grown to whole pages
//! ([`Region::page_rounded`]); overlapping or touching blocks are merged
//! (QEMU virt's 32 virtio-mmio slots become one 16 KiB region). A RAM bank
//! is cut inwards to whole pages. The hypervisor's RAM and the board's DTB
//! must lie in RAM: after the MMU goes on, anything outside the map faults.
//!
//! A device the hypervisor comes to drive must be added in
//! [`device_blocks`], or its first access after boot is a translation
//! fault at EL2 (reported, and the board stops).

use super::el2_map::{Region, RegionKind};
use board_support::{BoardInfo, Region as Range};
use core::fmt;

/// Regions at most: RAM banks split around the hypervisor's part, and
/// device blocks (before merging: GIC 4, UARTs 3, virtio 32).
pub const MAX_REGIONS: usize = 64;

/// The regions of a board's EL2 map.
pub type Regions = heapless::Vec<Region, MAX_REGIONS>;

/// Why a board's EL2 map cannot be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The hypervisor's own RAM is not inside one RAM bank of the DTB.
    HypervisorOutsideRam { base: u64, end: u64 },
    /// The board's DTB is not inside RAM (its strings are read later).
    DtbOutsideRam { base: u64, end: u64 },
    /// More regions than [`MAX_REGIONS`].
    TooManyRegions,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::HypervisorOutsideRam { base, end } => write!(
                f,
                "the hypervisor's RAM {base:#x}..{end:#x} is not inside one RAM bank of the device tree"
            ),
            Self::DtbOutsideRam { base, end } => {
                write!(f, "the device tree {base:#x}..{end:#x} is not in RAM")
            }
            Self::TooManyRegions => write!(f, "more than {MAX_REGIONS} regions to map"),
        }
    }
}

impl core::error::Error for LayoutError {}

const PAGE: u64 = 4096;

/// Every MMIO block of `info` the hypervisor may drive, and the pages the
/// board's description names (`board_pages`: the early console, used
/// before the DTB is read; a Pi's power-management block, which powers it
/// off), unrounded.
pub fn device_blocks(info: &BoardInfo<'_>, board_pages: &[u64]) -> heapless::Vec<Range, 48> {
    let gic = &info.gic;
    let fixed = [
        Some(info.console.region),
        info.link_uart.map(|u| u.region),
        info.mini_uart.map(|u| u.region),
        Some(gic.distributor),
        Some(gic.cpu_or_redistributor),
        gic.hyp_interface,
        gic.virtual_cpu,
    ];
    let mut v = heapless::Vec::new();
    for r in board_pages
        .iter()
        .map(|&p| Range::new(p, PAGE))
        .chain(fixed.into_iter().flatten())
        .chain(info.virtio_mmio.iter().copied())
    {
        if r.size > 0 {
            // 7 fixed blocks, a few board pages and at most 32 virtio
            // slots: room enough; one more is refused by `plan`'s count.
            let _ = v.push(r);
        }
    }
    v
}

/// The EL2 map's regions for `info`, the hypervisor keeping `hypervisor`
/// (the board's reserved RAM), the board's DTB at `dtb`.
///
/// # Errors
/// [`LayoutError`]: the hypervisor's RAM or the DTB outside RAM, or too
/// many regions.
pub fn plan(
    info: &BoardInfo<'_>,
    hypervisor: Range,
    dtb: Range,
    board_pages: &[u64],
) -> Result<Regions, LayoutError> {
    let banks: heapless::Vec<Range, 4> = info
        .memory
        .iter()
        .filter_map(|b| {
            let base = b.base.next_multiple_of(PAGE);
            let end = b.end() & !(PAGE - 1);
            (end > base).then(|| Range::new(base, end - base))
        })
        .collect();
    let inside = |r: Range| banks.iter().any(|b| b.base <= r.base && r.end() <= b.end());
    if !inside(hypervisor) {
        return Err(LayoutError::HypervisorOutsideRam {
            base: hypervisor.base,
            end: hypervisor.end(),
        });
    }
    if !inside(dtb) {
        return Err(LayoutError::DtbOutsideRam {
            base: dtb.base,
            end: dtb.end(),
        });
    }
    let mut out = Regions::new();
    let mut push = |base: u64, end: u64, kind| {
        if end > base {
            out.push(Region::new(base, end - base, kind))
                .map_err(|_| LayoutError::TooManyRegions)
        } else {
            Ok(())
        }
    };
    for b in &banks {
        if hypervisor.overlaps(b) {
            push(b.base, hypervisor.base, RegionKind::NormalXn)?;
            push(hypervisor.base, hypervisor.end(), RegionKind::Normal)?;
            push(hypervisor.end(), b.end(), RegionKind::NormalXn)?;
        } else {
            push(b.base, b.end(), RegionKind::NormalXn)?;
        }
    }
    for (base, end) in merged(device_blocks(info, board_pages)) {
        push(base, end, RegionKind::Device)?;
    }
    Ok(out)
}

/// `blocks` grown to whole pages, sorted, overlapping or touching ones
/// merged: `(base, end)` pairs.
fn merged(blocks: heapless::Vec<Range, 48>) -> heapless::Vec<(u64, u64), 48> {
    let mut pages: heapless::Vec<(u64, u64), 48> = blocks
        .iter()
        .map(|r| {
            let p = Region::new(r.base, r.size, RegionKind::Device).page_rounded();
            (p.base, p.base + p.size)
        })
        .collect();
    pages.sort_unstable();
    let mut out: heapless::Vec<(u64, u64), 48> = heapless::Vec::new();
    for (base, end) in pages {
        match out.last_mut() {
            Some(last) if base <= last.1 => last.1 = last.1.max(end),
            // No more pairs than blocks.
            _ => {
                let _ = out.push((base, end));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::El2Map;
    use super::super::pool::{PageTable, TablePool};
    use super::*;
    use board_support::{GicInfo, GicVersion, Uart};

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn uart(base: u64) -> Uart {
        Uart {
            region: Range::new(base, 0x1000),
            intid: Some(33),
        }
    }

    /// QEMU virt, GICv3, two PL011s, 32 virtio-mmio slots, 1 GiB.
    fn virt() -> BoardInfo<'static> {
        let mut memory = heapless::Vec::new();
        memory.push(Range::new(0x4000_0000, GIB)).unwrap();
        let mut virtio_mmio = heapless::Vec::new();
        for n in 0..32 {
            virtio_mmio
                .push(Range::new(0x0a00_0000 + n * 0x200, 0x200))
                .unwrap();
        }
        BoardInfo {
            model: "linux,dummy-virt",
            memory,
            console: uart(0x0900_0000),
            link_uart: Some(uart(0x0904_0000)),
            mini_uart: None,
            spin_table_cpus: heapless::Vec::new(),
            virtio_mmio,
            gic: GicInfo {
                version: GicVersion::V3,
                distributor: Range::new(0x0800_0000, 0x1_0000),
                cpu_or_redistributor: Range::new(0x080a_0000, 0xf6_0000),
                hyp_interface: None,
                virtual_cpu: None,
                maintenance_intid: Some(25),
            },
            timer: None,
            psci: None,
            bootargs: "",
            initrd: None,
            dtb_size: 0x10_0000,
        }
    }

    const HYP: Range = Range::new(0x4000_0000, 32 * MIB);
    const DTB: Range = Range::new(0x4000_0000, MIB);

    #[test]
    fn qemu_virt_regions() {
        let r = plan(&virt(), HYP, DTB, &[0x0900_0000]).unwrap();
        let normal = Region::new(0x4000_0000, 32 * MIB, RegionKind::Normal);
        let guest = Region::new(0x4200_0000, GIB - 32 * MIB, RegionKind::NormalXn);
        let dev = |b: u64, e: u64| Region::new(b, e - b, RegionKind::Device);
        assert_eq!(
            r.as_slice(),
            &[
                normal,
                guest,
                dev(0x0800_0000, 0x0801_0000),
                dev(0x080a_0000, 0x0900_1000),
                dev(0x0904_0000, 0x0904_1000),
                dev(0x0a00_0000, 0x0a00_4000),
            ]
        );
        // And it builds, in few tables.
        let mut t = [const { PageTable::EMPTY }; 8];
        let pool = TablePool::new(&mut t, 0x4008_0000).unwrap();
        let map = El2Map::build(pool, &r).unwrap();
        assert!(map.pool().used() <= 8);
        assert_eq!(
            map.translate(0x0a00_3e00),
            Some((0x0a00_3e00, RegionKind::Device))
        );
        assert_eq!(
            map.translate(0x4020_0000),
            Some((0x4020_0000, RegionKind::Normal))
        );
        assert_eq!(
            map.translate(0x7fff_f000),
            Some((0x7fff_f000, RegionKind::NormalXn))
        );
        assert_eq!(map.translate(0x0a00_4000), None);
    }

    #[test]
    fn gicv2_blocks_and_no_link_uart() {
        let mut info = virt();
        info.link_uart = None;
        info.virtio_mmio.clear();
        info.gic = GicInfo {
            version: GicVersion::V2,
            distributor: Range::new(0xff84_1000, 0x1000),
            cpu_or_redistributor: Range::new(0xff84_2000, 0x2000),
            hyp_interface: Some(Range::new(0xff84_4000, 0x2000)),
            virtual_cpu: Some(Range::new(0xff84_6000, 0x2000)),
            maintenance_intid: Some(25),
        };
        let r = plan(&info, HYP, DTB, &[0x0900_0000]).unwrap();
        assert_eq!(
            r.last(),
            Some(&Region::new(0xff84_1000, 0x7000, RegionKind::Device))
        );
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn raspberry_pi_4_banks_around_the_hypervisor() {
        let mut info = virt();
        info.memory.clear();
        info.memory.push(Range::new(0, 0x3b40_0000)).unwrap();
        info.memory
            .push(Range::new(0x4000_0000, 0xbc00_0000))
            .unwrap();
        info.mini_uart = Some(Uart {
            region: Range::new(0xfe21_5040, 0x40),
            intid: None,
        });
        let r = plan(
            &info,
            Range::new(0, 32 * MIB),
            Range::new(0x2ef_f000, 0x1_0000),
            &[0xfe20_1000, 0xfe10_0000],
        )
        .unwrap();
        assert_eq!(r[0], Region::new(0, 32 * MIB, RegionKind::Normal));
        assert_eq!(
            r[1],
            Region::new(32 * MIB, 0x3b40_0000 - 32 * MIB, RegionKind::NormalXn)
        );
        assert_eq!(
            r[2],
            Region::new(0x4000_0000, 0xbc00_0000, RegionKind::NormalXn)
        );
        assert!(r.contains(&Region::new(0xfe20_1000, 0x1000, RegionKind::Device)));
        // The power-management block the board's description names (the
        // watchdog that powers a Pi off) is mapped as a device too.
        assert!(r.contains(&Region::new(0xfe10_0000, 0x1000, RegionKind::Device)));
        // The mini-UART, a pair's serial link on raspi4b under QEMU.
        assert!(r.contains(&Region::new(0xfe21_5000, 0x1000, RegionKind::Device)));
    }

    #[test]
    fn outside_ram_is_refused() {
        let e = plan(
            &virt(),
            Range::new(0x3000_0000, 32 * MIB),
            DTB,
            &[0x0900_0000],
        );
        assert_eq!(
            e,
            Err(LayoutError::HypervisorOutsideRam {
                base: 0x3000_0000,
                end: 0x3200_0000
            })
        );
        let e = plan(&virt(), HYP, Range::new(0x0, 0x1000), &[0x0900_0000]);
        assert_eq!(
            e,
            Err(LayoutError::DtbOutsideRam {
                base: 0,
                end: 0x1000
            })
        );
        // Crossing the end of RAM is outside too.
        let e = plan(&virt(), Range::new(0x7ff0_0000, 2 * MIB), DTB, &[0]);
        assert!(matches!(e, Err(LayoutError::HypervisorOutsideRam { .. })));
    }

    #[test]
    fn unaligned_banks_are_cut_to_pages_and_devices_grown() {
        let mut info = virt();
        info.memory.clear();
        info.memory
            .push(Range::new(0x4000_0800, GIB - 0x1000))
            .unwrap();
        info.virtio_mmio.clear();
        info.link_uart = None;
        let hyp = Range::new(0x4000_1000, 32 * MIB);
        let r = plan(&info, hyp, Range::new(0x4000_1000, 0x100), &[0x0900_0000]).unwrap();
        assert_eq!(r[0], Region::new(0x4000_1000, 32 * MIB, RegionKind::Normal));
        assert_eq!(r[1].base + r[1].size, 0x7fff_f000);
        // The console's page, once, though named twice.
        assert_eq!(
            r.iter().filter(|x| x.base == 0x080a_0000).count(),
            1,
            "{r:?}"
        );
    }
}
