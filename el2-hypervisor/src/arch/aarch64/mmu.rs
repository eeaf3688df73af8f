//! AArch64, EL2: the hypervisor's stage-1 MMU and caches (SCTLR_EL2.M, C,
//! I), turned on once at boot over the identity map of the board that
//! `el2_hypervisor::mem::el2_layout` plans from the DTB: RAM Normal
//! Write-Back (the hypervisor's part executable), MMIO Device-nGnRE.
//!
//! With the MMU off every EL2 data access is Device-nGnRnE (uncached,
//! no merging, alignment-checked): fine under QEMU TCG, slow on a core.

use super::cache;
use super::el2_regs::pa_range;
use super::sysreg::{read_sysreg, write_sysreg};
use board_support::{Board, BoardInfo, PowerOff, Region as Range};
use core::fmt;
use el2_hypervisor::mem::el2_layout::{self, LayoutError};
use el2_hypervisor::mem::{
    El2Map, MapError, PageTable, PoolError, TablePool, mair_el2, sctlr_el2_mmu_on, tcr_el2,
};
use spin::Mutex;

/// EL2 translation tables: a root, a level-2 table per GiB that mixes
/// kinds or sizes, a level-3 table per 2 MiB holding pages (QEMU virt
/// uses 7, the Pi 4's map about as many).
const EL2_TABLES: usize = 24;
static POOL: Mutex<[PageTable; EL2_TABLES]> = Mutex::new([PageTable::EMPTY; EL2_TABLES]);

/// Why the EL2 map could not be built (the board stops, status 4).
#[derive(Debug)]
pub enum MmuError {
    Layout(LayoutError),
    Pool(PoolError),
    Map(MapError),
}

impl fmt::Display for MmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmuError::Layout(e) => write!(f, "{e}"),
            MmuError::Pool(e) => write!(f, "table pool: {e}"),
            MmuError::Map(e) => write!(f, "{e}"),
        }
    }
}

/// What [`enable`] mapped.
pub struct Mapped {
    pub regions: usize,
    pub tables: usize,
}

/// The device pages the board's description names rather than its DTB:
/// the early console, and a Pi's power-management block (power-off).
fn board_pages(board: &Board) -> heapless::Vec<u64, 2> {
    let mut v = heapless::Vec::new();
    let _ = v.push(board.early_console);
    if let PowerOff::Bcm2835Watchdog { base } = board.power_off {
        let _ = v.push(base & !0xfff);
    }
    v
}

/// Builds the EL2 map of the board and turns the MMU and caches on.
/// Call once, on the boot core, with the MMU off and exceptions masked;
/// nothing outside the map is reachable afterwards.
///
/// # Errors
/// The map cannot be built ([`MmuError`]); the MMU stays off.
pub fn enable(info: &BoardInfo<'_>, board: &Board, dtb: &[u8]) -> Result<Mapped, MmuError> {
    let hypervisor = Range::new(board.ram_base, board.hypervisor_reserved);
    let dtb = Range::new(dtb.as_ptr() as u64, dtb.len() as u64);
    let regions =
        el2_layout::plan(info, hypervisor, dtb, &board_pages(board)).map_err(MmuError::Layout)?;
    let mut guard = POOL.lock();
    let base_pa = guard.as_ptr() as u64;
    let pool = TablePool::new(&mut guard[..], base_pa).map_err(MmuError::Pool)?;
    let map = El2Map::build(pool, &regions).map_err(MmuError::Map)?;
    let (ttbr, tables) = (map.ttbr0_el2(), map.pool().used());
    drop(guard);
    // SAFETY: the tables just built identity-map all RAM (this code, its
    // stack and data included) and the board's devices; the MMU is off,
    // as this function's contract says.
    unsafe { turn_on(ttbr) };
    Ok(Mapped {
        regions: regions.len(),
        tables,
    })
}

/// The MMU-on sequence of `el2_hypervisor::mem::el2_map` over the tables
/// at `ttbr`.
///
/// # Safety
/// MMU off; `ttbr` the root of an identity map that holds the whole image
/// and every device used from here on.
unsafe fn turn_on(ttbr: u64) {
    unsafe extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    let start = core::ptr::addr_of!(__image_start) as u64;
    let end = core::ptr::addr_of!(__image_end) as u64;
    // SAFETY: the caches are off (SCTLR_EL2.C = I = 0 since reset), so
    // everything the hypervisor wrote so far (BSS, data, stack, heap and
    // these tables, all inside its image) went to memory, and any line of
    // the image still in a cache predates it: dropping those lines loses
    // nothing, and keeps them from shadowing memory once C is set (the
    // walker, too, reads the tables Write-Back: TCR_EL2.IRGN0/ORGN0).
    unsafe { cache::invalidate_to_poc(start, end - start) };
    cache::invalidate_icache();
    let sctlr = sctlr_el2_mmu_on(read_sysreg!("SCTLR_EL2"));
    // SAFETY: MAIR_EL2, TCR_EL2 and TTBR0_EL2 describe the identity map
    // (the caller's contract) and are unused while SCTLR_EL2.M = 0; the
    // TLBs are emptied of anything from before; then M, C and I go on
    // together, and, the map being the identity, the next instruction is
    // fetched from the same address.
    unsafe {
        write_sysreg!("MAIR_EL2", mair_el2());
        write_sysreg!("TCR_EL2", tcr_el2(pa_range()));
        write_sysreg!("TTBR0_EL2", ttbr);
        core::arch::asm!("isb", "tlbi alle2", "dsb ish", "isb", options(nostack));
        write_sysreg!("SCTLR_EL2", sctlr);
        core::arch::asm!("isb", options(nostack));
    }
}
