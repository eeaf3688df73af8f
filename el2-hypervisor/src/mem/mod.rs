//! Memory: stage-2 translation and the hypervisor's own EL2 map.
//!
//! Pure table builders (no system-register access): the arch layer writes
//! the values computed here. Both trees use VMSAv8-64 with the 4 KiB
//! granule, start at level 1 and take their tables from a [`TablePool`]:
//!
//! - [`Stage2`]: guest IPA → PA, 40-bit IPA, root of two concatenated
//!   level-1 tables; [`vtcr_el2`], [`vttbr_el2`].
//! - [`LazyRam`]: which 2 MiB blocks of guest RAM stage 2 maps (on first
//!   touch), and what the fingerprint reads of them.
//! - [`El2Map`]: the hypervisor's identity map at EL2 (TTBR0_EL2, E2H = 0),
//!   39-bit VA; [`mair_el2`], [`tcr_el2`], [`sctlr_el2_mmu_on`]; what it
//!   holds on a board, from its DTB: [`el2_layout`].
//! - [`cache_lines`]: the data-cache line size and the lines of a range.
//!
//! ```text
//! Lookup (4 KiB granule), input address bits:
//!   [39:30] level 1 (stage 2: 1024 entries in 2 tables; EL2: [38:30], 512)
//!   [29:21] level 2     [20:12] level 3     [11:0] offset in page
//!
//! Table descriptor (levels 1, 2)
//!   63      59 58    48 47                         12 11       2 1 0
//!  +----------+--------+-----------------------------+----------+---+
//!  | 0 (stage 2: RES0;  | next-level table PA [47:12] | ignored  |1 1|
//!  |  stage 1: no APTable/XNTable limits)             |          |   |
//!  +----------+--------+-----------------------------+----------+---+
//!
//! Block (level 1: OA [47:30], level 2: OA [47:21]) and page (level 3: OA [47:12])
//!   63    55 54 53 52 51 48 47            12 11 10  9 8  7 6  5  4  2  1 0
//!  +-------+-----+--+-----+-----------------+--+--+----+----+------------+---+
//!  |   0   | XN  |0 |  0  | output address  |  |AF| SH | AP |  attribute |0 1| block
//!  |       |     |  |     |                 |  |  |    |    |            |1 1| page
//!  +-------+-----+--+-----+-----------------+--+--+----+----+------------+---+
//!  stage 2 : XN[54:53] = 10 no execute | [11] 0 | S2AP[7:6] 01 RO, 11 RW |
//!            MemAttr[5:2] 1111 Normal WB, 0001 Device-nGnRE  (FWB = 0)
//!  EL2 s1  : XN[54], PXN[53] RES0 | nG[11] 0 | AP[7:6] 01 RW (AP[1] RES1) |
//!            NS[5] 0 | AttrIndx[4:2] 0 Normal WB, 1 Device-nGnRE (MAIR_EL2)
//!  both    : AF[10] = 1, SH[9:8] = 11 Inner Shareable for Normal, 00 for Device
//! ```

pub mod cache_lines;
pub mod el2_layout;
pub mod el2_map;
pub mod lazy_ram;
pub mod pool;
pub mod stage2;
mod tables;

pub use el2_map::{El2Map, Region, RegionKind, mair_el2, sctlr_el2_mmu_on, tcr_el2};
pub use lazy_ram::{FreshBlock, LazyRam, LazyRamError, TouchedSpan};
pub use pool::{PageTable, PoolError, TablePool};
pub use stage2::{Stage2, Stage2Attrs, Stage2Tlbi, UnsupportedPaRange, vtcr_el2, vttbr_el2};
pub use tables::{LeafDescriptor, MapError};
