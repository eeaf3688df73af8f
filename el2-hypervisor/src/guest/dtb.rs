//! The guest's device tree, built by the hypervisor.
//!
//! The guest never sees the board's device tree. It sees a small one that
//! describes only what the hypervisor gives it: its RAM, one CPU, PSCI, the
//! architected timer (the CP15 one, or on a core without FEAT_ECV the
//! memory-mapped one instead: `emul::timer_mem`), a (virtual) GIC, one
//! PL011 console and `/chosen`.
//! No PMU, no link device, no virtio, no `rng-seed` or `kaslr-seed`.
//!
//! Principle: the blob is a pure function of [`GuestDtbConfig`]. Primary and
//! backup build it from the same configuration and get the same bytes, so
//! the guest starts from identical input on both boards (design §4).
//!
//! The `vm-fdt` crate writes the blob; this module only decides its content.

use alloc::format;
use alloc::vec::Vec;
use core::fmt;

use board_support::dtb::{BoardInfo, GicVersion, PsciMethod, Region, TimerIntids, Uart};
use vm_fdt::FdtWriter;

use crate::emul::timer_mem::{self, FRAME_PHYS_INTID, FRAME_VIRT_INTID};
pub use crate::options::GuestTimer;

/// GICv3 distributor (GICD) size.
pub const GICV3_DIST_SIZE: u64 = 0x1_0000;
/// One GICv3 redistributor frame (RD_base + SGI_base): one CPU.
pub const GICV3_REDIST_FRAME_SIZE: u64 = 0x2_0000;
/// GICv2 distributor size.
pub const GICV2_DIST_SIZE: u64 = 0x1000;
/// GICv2 CPU interface size.
pub const GICV2_CPU_SIZE: u64 = 0x2000;
/// The PL011's clock, described by the `apb-pclk` fixed clock.
pub const UART_CLOCK_HZ: u32 = 24_000_000;
/// The PL011's peripheral ID (r1p5), so Linux need not read it from the
/// device.
pub const PL011_PERIPHID: u32 = 0x0024_1011;

/// The timer PPIs of the `arm,armv8-timer` binding on every arm64 board
/// (PPIs 13, 14, 11, 10), used when the board's tree does not say.
pub const DEFAULT_TIMER: TimerIntids = TimerIntids {
    secure_phys: 29,
    phys: 30,
    virt: 27,
    hyp_phys: 26,
};

const PHANDLE_GIC: u32 = 1;
const PHANDLE_APB_PCLK: u32 = 2;

/// GIC binding: interrupt specifier types.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// GIC binding: level-triggered, active high.
const IRQ_LEVEL_HIGH: u32 = 4;
/// GICv2 binding: PPI flags carry a CPU mask in bits [15:8]; one CPU.
const GICV2_PPI_CPU0: u32 = 1 << 8;

/// The interrupt controller the guest sees, at guest physical addresses.
/// Its register blocks have the architectural sizes (constants above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestGic {
    /// `arm,cortex-a15-gic`: distributor and CPU interface.
    V2 {
        distributor: u64,
        cpu_interface: u64,
    },
    /// `arm,gic-v3`: distributor and the one redistributor frame of CPU 0.
    V3 {
        distributor: u64,
        redistributor: u64,
    },
}

impl GuestGic {
    /// The `reg` entries, in binding order.
    pub const fn regions(&self) -> [Region; 2] {
        match *self {
            GuestGic::V2 {
                distributor,
                cpu_interface,
            } => [
                Region::new(distributor, GICV2_DIST_SIZE),
                Region::new(cpu_interface, GICV2_CPU_SIZE),
            ],
            GuestGic::V3 {
                distributor,
                redistributor,
            } => [
                Region::new(distributor, GICV3_DIST_SIZE),
                Region::new(redistributor, GICV3_REDIST_FRAME_SIZE),
            ],
        }
    }

    pub const fn version(&self) -> GicVersion {
        match self {
            GuestGic::V2 { .. } => GicVersion::V2,
            GuestGic::V3 { .. } => GicVersion::V3,
        }
    }

    const fn distributor(&self) -> u64 {
        match *self {
            GuestGic::V2 { distributor, .. } | GuestGic::V3 { distributor, .. } => distributor,
        }
    }
}

/// Everything the guest's device tree says. Addresses are guest physical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestDtbConfig<'a> {
    /// Guest RAM: one bank.
    pub memory: Region,
    pub gic: GuestGic,
    /// The console PL011. Without an `intid` the node has no `interrupts`
    /// (the console then works by polling only).
    pub uart: Uart,
    /// The architected timer's PPIs, as INTIDs (16..32).
    pub timer: TimerIntids,
    /// Which timer the guest is given: the CP15 one (an `arm,armv8-timer`
    /// node with the PPIs above), or the memory-mapped one
    /// (`arm,armv7-timer-mem` at `emul::timer_mem`'s addresses and SPIs)
    /// and no CP15 node.
    pub guest_timer: GuestTimer,
    /// How the guest calls PSCI (the hypervisor traps both).
    pub psci: PsciMethod,
    /// The guest kernel command line (`/chosen/bootargs`).
    pub bootargs: &'a str,
    /// Where the initramfs lies in guest RAM, if there is one.
    pub initrd: Option<Region>,
}

/// The guest configuration for a board: its GIC (distributor, and the first
/// redistributor frame or the CPU interface), its console UART and timer
/// PPIs, its PSCI method; `guest_mem` is the RAM the hypervisor leaves to
/// the guest.
///
/// Defaults where the board's tree is silent: [`DEFAULT_TIMER`], and PSCI
/// over HVC (always trapped to EL2).
pub fn from_board<'a>(
    board: &BoardInfo<'_>,
    guest_mem: Region,
    bootargs: &'a str,
    initrd: Option<Region>,
    guest_timer: GuestTimer,
) -> GuestDtbConfig<'a> {
    let gic = match board.gic.version {
        GicVersion::V2 => GuestGic::V2 {
            distributor: board.gic.distributor.base,
            cpu_interface: board.gic.cpu_or_redistributor.base,
        },
        GicVersion::V3 => GuestGic::V3 {
            distributor: board.gic.distributor.base,
            redistributor: board.gic.cpu_or_redistributor.base,
        },
    };
    GuestDtbConfig {
        memory: guest_mem,
        gic,
        uart: board.console,
        timer: board.timer.unwrap_or(DEFAULT_TIMER),
        guest_timer,
        psci: board.psci.unwrap_or(PsciMethod::Hvc),
        bootargs,
        initrd,
    }
}

/// Why the guest device tree could not be built: the configuration is
/// inconsistent (a hypervisor or board-description bug, not a guest fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestDtbError {
    /// Guest RAM is empty or wraps around the address space.
    BadMemory(Region),
    /// A device's register block is empty or wraps around.
    BadDevice(&'static str),
    /// A device's register block overlaps guest RAM.
    DeviceInMemory(&'static str),
    /// The UART's interrupt is not an SPI (INTID 32..1020).
    UartIntidNotSpi(u32),
    /// A timer interrupt is not a PPI (INTID 16..32).
    TimerIntidNotPpi(u32),
    /// The initramfs is empty, wraps, or is not inside guest RAM.
    InitrdOutsideMemory(Region),
    /// The command line contains a NUL byte.
    BootargsHasNul,
    /// The DTB writer refused (a bug in this module).
    Writer,
}

impl fmt::Display for GuestDtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("guest device tree: ")?;
        match *self {
            GuestDtbError::BadMemory(r) => write!(
                f,
                "guest RAM {:#x}+{:#x} is empty or wraps around",
                r.base, r.size
            ),
            GuestDtbError::BadDevice(what) => write!(f, "the {what} region is empty or wraps"),
            GuestDtbError::DeviceInMemory(what) => {
                write!(f, "the {what} region overlaps guest RAM")
            }
            GuestDtbError::UartIntidNotSpi(i) => {
                write!(f, "console UART interrupt {i} is not an SPI (32..1020)")
            }
            GuestDtbError::TimerIntidNotPpi(i) => {
                write!(f, "timer interrupt {i} is not a PPI (16..32)")
            }
            GuestDtbError::InitrdOutsideMemory(r) => write!(
                f,
                "initramfs {:#x}+{:#x} is not inside guest RAM",
                r.base, r.size
            ),
            GuestDtbError::BootargsHasNul => f.write_str("the command line contains a NUL byte"),
            GuestDtbError::Writer => f.write_str("the DTB writer failed (internal error)"),
        }
    }
}

impl From<vm_fdt::Error> for GuestDtbError {
    fn from(_: vm_fdt::Error) -> Self {
        GuestDtbError::Writer
    }
}

/// Builds the guest's flattened device tree.
///
/// # Errors
/// A [`GuestDtbError`] when the configuration is inconsistent.
pub fn build(cfg: &GuestDtbConfig<'_>) -> Result<Vec<u8>, GuestDtbError> {
    let checked = validate(cfg)?;
    let mut w = FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_string("compatible", "linux,dummy-virt")?;
    w.property_string("model", "tandem guest")?;
    w.property_u32("interrupt-parent", PHANDLE_GIC)?;

    let uart_path = format!("/serial@{:x}", cfg.uart.region.base);
    chosen(&mut w, cfg, &uart_path)?;
    aliases(&mut w, &uart_path)?;
    memory(&mut w, cfg.memory)?;
    cpus(&mut w)?;
    psci(&mut w, cfg.psci)?;
    match cfg.guest_timer {
        GuestTimer::Sysreg => timer(&mut w, cfg.gic.version(), &checked.timer_ppis)?,
        GuestTimer::Mmio => timer_mem_node(&mut w)?,
    }
    gic(&mut w, &cfg.gic)?;
    apb_pclk(&mut w)?;
    uart(&mut w, cfg.uart.region, checked.uart_spi)?;

    w.end_node(root)?;
    Ok(w.finish()?)
}

/// What [`validate`] derived from the configuration.
struct Checked {
    /// Timer PPI numbers (INTID - 16) in binding order.
    timer_ppis: [u32; 4],
    /// The UART's SPI number (INTID - 32).
    uart_spi: Option<u32>,
}

fn validate(cfg: &GuestDtbConfig<'_>) -> Result<Checked, GuestDtbError> {
    let mem = cfg.memory;
    if mem.size == 0 || mem.base.checked_add(mem.size).is_none() {
        return Err(GuestDtbError::BadMemory(mem));
    }
    let [gic_a, gic_b] = cfg.gic.regions();
    let gic_b_name = match cfg.gic.version() {
        GicVersion::V2 => "GIC CPU interface",
        GicVersion::V3 => "GIC redistributor",
    };
    let devices = [
        (gic_a, "GIC distributor"),
        (gic_b, gic_b_name),
        (cfg.uart.region, "UART"),
        (timer_mem::CONTROL_WINDOW, "timer control frame"),
        (timer_mem::FRAME_WINDOW, "timer frame"),
    ];
    let count = match cfg.guest_timer {
        GuestTimer::Sysreg => 3,
        GuestTimer::Mmio => devices.len(),
    };
    for &(region, what) in &devices[..count] {
        if region.size == 0 || region.base.checked_add(region.size).is_none() {
            return Err(GuestDtbError::BadDevice(what));
        }
        if region.overlaps(&mem) {
            return Err(GuestDtbError::DeviceInMemory(what));
        }
    }
    let uart_spi = match cfg.uart.intid {
        Some(i @ 32..=1019) => Some(i - 32),
        Some(i) => return Err(GuestDtbError::UartIntidNotSpi(i)),
        None => None,
    };
    let t = cfg.timer;
    let mut timer_ppis = [0; 4];
    for (ppi, intid) in timer_ppis
        .iter_mut()
        .zip([t.secure_phys, t.phys, t.virt, t.hyp_phys])
    {
        *ppi = match intid {
            16..=31 => intid - 16,
            _ => return Err(GuestDtbError::TimerIntidNotPpi(intid)),
        };
    }
    if let Some(r) = cfg.initrd {
        let inside = r.size > 0
            && r.base >= mem.base
            && r.base
                .checked_add(r.size)
                .is_some_and(|end| end <= mem.end());
        if !inside {
            return Err(GuestDtbError::InitrdOutsideMemory(r));
        }
    }
    if cfg.bootargs.contains('\0') {
        return Err(GuestDtbError::BootargsHasNul);
    }
    Ok(Checked {
        timer_ppis,
        uart_spi,
    })
}

type WResult = Result<(), GuestDtbError>;

fn reg(w: &mut FdtWriter, regions: &[Region]) -> WResult {
    let cells: Vec<u64> = regions.iter().flat_map(|r| [r.base, r.size]).collect();
    Ok(w.property_array_u64("reg", &cells)?)
}

fn chosen(w: &mut FdtWriter, cfg: &GuestDtbConfig<'_>, uart_path: &str) -> WResult {
    let n = w.begin_node("chosen")?;
    w.property_string("bootargs", cfg.bootargs)?;
    w.property_string("stdout-path", uart_path)?;
    if let Some(r) = cfg.initrd {
        w.property_u64("linux,initrd-start", r.base)?;
        w.property_u64("linux,initrd-end", r.end())?;
    }
    Ok(w.end_node(n)?)
}

fn aliases(w: &mut FdtWriter, uart_path: &str) -> WResult {
    let n = w.begin_node("aliases")?;
    w.property_string("serial0", uart_path)?;
    Ok(w.end_node(n)?)
}

fn memory(w: &mut FdtWriter, mem: Region) -> WResult {
    let n = w.begin_node(&format!("memory@{:x}", mem.base))?;
    w.property_string("device_type", "memory")?;
    reg(w, &[mem])?;
    Ok(w.end_node(n)?)
}

fn cpus(w: &mut FdtWriter) -> WResult {
    let n = w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    let cpu = w.begin_node("cpu@0")?;
    w.property_string("device_type", "cpu")?;
    w.property_string("compatible", "arm,armv8")?;
    w.property_u32("reg", 0)?;
    w.property_string("enable-method", "psci")?;
    w.end_node(cpu)?;
    Ok(w.end_node(n)?)
}

fn psci(w: &mut FdtWriter, method: PsciMethod) -> WResult {
    let n = w.begin_node("psci")?;
    w.property("compatible", b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0")?;
    let method = match method {
        PsciMethod::Smc => "smc",
        PsciMethod::Hvc => "hvc",
    };
    w.property_string("method", method)?;
    Ok(w.end_node(n)?)
}

fn timer(w: &mut FdtWriter, version: GicVersion, ppis: &[u32; 4]) -> WResult {
    let flags = match version {
        GicVersion::V3 => IRQ_LEVEL_HIGH,
        GicVersion::V2 => GICV2_PPI_CPU0 | IRQ_LEVEL_HIGH,
    };
    let cells: Vec<u32> = ppis.iter().flat_map(|&p| [GIC_PPI, p, flags]).collect();
    let n = w.begin_node("timer")?;
    w.property_string("compatible", "arm,armv8-timer")?;
    w.property_array_u32("interrupts", &cells)?;
    Ok(w.end_node(n)?)
}

/// The memory-mapped timer (Linux's `arm,armv7-timer-mem` binding):
/// CNTCTLBase, and one frame (number 0) with its CNTBase and its two
/// interrupts, the physical timer's then the virtual timer's.
fn timer_mem_node(w: &mut FdtWriter) -> WResult {
    let n = w.begin_node(&format!("timer@{:x}", timer_mem::CNTCTL_BASE))?;
    w.property_string("compatible", "arm,armv7-timer-mem")?;
    reg(w, &[timer_mem::CONTROL_WINDOW])?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    // Children's addresses are the parent's (identity).
    w.property_null("ranges")?;
    let f = w.begin_node(&format!("frame@{:x}", timer_mem::CNT_BASE0))?;
    w.property_u32("frame-number", 0)?;
    let spi = |intid: u32| [GIC_SPI, intid - 32, IRQ_LEVEL_HIGH];
    let cells: Vec<u32> = [FRAME_PHYS_INTID, FRAME_VIRT_INTID]
        .into_iter()
        .flat_map(spi)
        .collect();
    w.property_array_u32("interrupts", &cells)?;
    reg(w, &[timer_mem::FRAME_WINDOW])?;
    w.end_node(f)?;
    Ok(w.end_node(n)?)
}

fn gic(w: &mut FdtWriter, gic: &GuestGic) -> WResult {
    let n = w.begin_node(&format!("intc@{:x}", gic.distributor()))?;
    match gic.version() {
        GicVersion::V3 => {
            w.property_string("compatible", "arm,gic-v3")?;
            w.property_u32("#redistributor-regions", 1)?;
        }
        GicVersion::V2 => w.property_string("compatible", "arm,cortex-a15-gic")?,
    }
    w.property_u32("#interrupt-cells", 3)?;
    // No children, no interrupt-map: zero address cells (dtc asks for it).
    w.property_u32("#address-cells", 0)?;
    w.property_null("interrupt-controller")?;
    reg(w, &gic.regions())?;
    w.property_phandle(PHANDLE_GIC)?;
    Ok(w.end_node(n)?)
}

fn apb_pclk(w: &mut FdtWriter) -> WResult {
    let n = w.begin_node("apb-pclk")?;
    w.property_string("compatible", "fixed-clock")?;
    w.property_u32("#clock-cells", 0)?;
    w.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    w.property_string("clock-output-names", "clk24mhz")?;
    w.property_phandle(PHANDLE_APB_PCLK)?;
    Ok(w.end_node(n)?)
}

fn uart(w: &mut FdtWriter, region: Region, spi: Option<u32>) -> WResult {
    let n = w.begin_node(&format!("serial@{:x}", region.base))?;
    w.property("compatible", b"arm,pl011\0arm,primecell\0")?;
    reg(w, &[region])?;
    if let Some(spi) = spi {
        w.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_LEVEL_HIGH])?;
    }
    w.property_array_u32("clocks", &[PHANDLE_APB_PCLK, PHANDLE_APB_PCLK])?;
    w.property("clock-names", b"uartclk\0apb_pclk\0")?;
    w.property_u32("arm,primecell-periphid", PL011_PERIPHID)?;
    Ok(w.end_node(n)?)
}

#[cfg(test)]
mod tests;
