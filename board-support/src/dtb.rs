//! The board's device tree, read once into plain data.
//!
//! Everything the hypervisor needs from the firmware's device tree is
//! collected here into a [`BoardInfo`]: RAM, the console UART, the interrupt
//! controller, the architected timer's interrupts, how to call PSCI, the
//! board's command line and the initrd the boot loader placed in RAM.
//! Nothing else in the hypervisor parses the device tree.
//!
//! The `fdt` crate does the parsing. A few of its conveniences
//! (`Fdt::memory`, `Fdt::chosen`) panic when a node is missing, so this
//! module walks nodes by path itself: a device tree without a node we need
//! is an error that names the node, never a panic. Every `reg` is
//! translated through its buses' `ranges` ([`walk`]): the Raspberry Pi 4's
//! peripherals are described at bus addresses.

mod nops;
mod walk;

pub use nops::strip_nops;

use fdt::Fdt;
use fdt::node::FdtNode;
use walk::Bus;

/// A physical address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }
    /// One past the last byte (saturating: a region at the top of the
    /// address space does not wrap).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// GIC architecture version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (GIC-400 on the Raspberry Pi 4, `gic-version=2` on QEMU virt).
    V2,
    /// GICv3 (`gic-version=3` on QEMU virt).
    V3,
}

impl GicVersion {
    pub const fn number(self) -> u8 {
        match self {
            GicVersion::V2 => 2,
            GicVersion::V3 => 3,
        }
    }
}

/// The interrupt controller's register blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicInfo {
    pub version: GicVersion,
    /// Distributor (GICD).
    pub distributor: Region,
    /// GICv3: the redistributor region (GICR). GICv2: the CPU interface (GICC).
    pub cpu_or_redistributor: Region,
    /// GICv2 only: the virtual interface control block (GICH), if the board
    /// has virtualization extensions.
    pub hyp_interface: Option<Region>,
    /// GICv2 only: the virtual CPU interface (GICV).
    pub virtual_cpu: Option<Region>,
    /// The vGIC maintenance interrupt (a PPI), as an INTID.
    pub maintenance_intid: Option<u32>,
}

/// How PSCI is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    Smc,
    Hvc,
}

/// The architected timer's PPIs, as INTIDs (device tree binding
/// `arm,armv8-timer`: secure, non-secure physical, virtual, hypervisor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerIntids {
    pub secure_phys: u32,
    pub phys: u32,
    pub virt: u32,
    pub hyp_phys: u32,
}

/// A UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart {
    pub region: Region,
    /// Its interrupt as an INTID, when the device tree gives one.
    pub intid: Option<u32>,
}

/// A core that waits for its start address at `release_addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpinTableCpu {
    /// The core's `reg` (its MPIDR affinity).
    pub mpidr: u64,
    /// `cpu-release-addr`: where the core reads its entry point.
    pub release_addr: u64,
}

/// Most cores read from `/cpus`.
pub const MAX_CPUS: usize = 8;

/// Up to this many RAM banks are kept.
pub const MAX_MEMORY_BANKS: usize = 4;
/// Most `virtio,mmio` slots kept from the device tree (QEMU virt has 32).
pub const MAX_VIRTIO_SLOTS: usize = 32;

/// What the hypervisor needs to know about the board, read from its DTB.
#[derive(Clone, Debug)]
pub struct BoardInfo<'a> {
    pub model: &'a str,
    pub memory: heapless::Vec<Region, MAX_MEMORY_BANKS>,
    pub console: Uart,
    /// A second PL011: the first enabled PL011 that is not the console
    /// (QEMU virt's second `-serial`; a Pi 4's UART2-5 when an overlay
    /// enables one). The replication link's UART. Never given to the guest.
    pub link_uart: Option<Uart>,
    /// The BCM2835 auxiliary mini-UART, when enabled (the Pi 4's UART1,
    /// QEMU `-M raspi4b`'s second `-serial`): the link where the board has
    /// no second PL011. Never given to the guest.
    pub mini_uart: Option<Uart>,
    /// The secondary cores that wait in a spin table (`enable-method =
    /// "spin-table"`), for the hypervisor to park.
    pub spin_table_cpus: heapless::Vec<SpinTableCpu, MAX_CPUS>,
    /// Every `virtio,mmio` slot (QEMU virt has 32; the pair's Ethernet
    /// link NIC is one of them). Never given to the guest.
    pub virtio_mmio: heapless::Vec<Region, MAX_VIRTIO_SLOTS>,
    pub gic: GicInfo,
    pub timer: Option<TimerIntids>,
    pub psci: Option<PsciMethod>,
    /// `/chosen/bootargs`: the board's command line, read by the hypervisor
    /// for its own options (`tandem.*`).
    pub bootargs: &'a str,
    /// `/chosen/linux,initrd-start..end`: what the boot loader loaded as the
    /// initrd (the guest bundle).
    pub initrd: Option<Region>,
    /// The DTB's own size in bytes.
    pub dtb_size: usize,
}

impl BoardInfo<'_> {
    /// Total RAM over every bank.
    pub fn memory_size(&self) -> u64 {
        self.memory.iter().map(|r| r.size).sum()
    }
    /// The lowest RAM address.
    pub fn memory_base(&self) -> u64 {
        self.memory.iter().map(|r| r.base).min().unwrap_or(0)
    }
}

/// Why a device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtbError {
    /// The blob is not a flattened device tree (bad magic, size or layout).
    Malformed,
    /// No `memory` node with a usable `reg`.
    NoMemory,
    /// No console UART (a PL011: `/chosen/stdout-path`, or an enabled `arm,pl011` node).
    NoConsole,
    /// No interrupt controller we know (`arm,gic-v3`, `arm,gic-400`,
    /// `arm,cortex-a15-gic`).
    NoGic,
    /// A node exists but its `reg` or `interrupts` is shorter than the binding says.
    BadProperty(&'static str),
}

impl core::fmt::Display for DtbError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtbError::Malformed => f.write_str("not a valid flattened device tree"),
            DtbError::NoMemory => f.write_str("no /memory node with a reg property"),
            DtbError::NoConsole => f.write_str("no console UART (stdout-path or arm,pl011)"),
            DtbError::NoGic => {
                f.write_str("no supported GIC (arm,gic-v3 / arm,gic-400 / arm,cortex-a15-gic)")
            }
            DtbError::BadProperty(what) => write!(f, "malformed property: {what}"),
        }
    }
}

const GIC_V3: &[&str] = &["arm,gic-v3"];
const PL011: &[&str] = &["arm,pl011"];
const MINI_UART: &[&str] = &["brcm,bcm2835-aux-uart"];
const GIC_V2: &[&str] = &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"];

/// Parses a board's device tree.
///
/// # Errors
/// A [`DtbError`] naming what is missing or malformed.
pub fn parse(blob: &[u8]) -> Result<BoardInfo<'_>, DtbError> {
    let fdt = Fdt::new(blob).map_err(|_| DtbError::Malformed)?;
    let chosen = fdt.find_node("/chosen");
    let bootargs = chosen
        .and_then(|c| c.property("bootargs"))
        .and_then(|p| p.as_str())
        .unwrap_or("");
    let console = console(&fdt)?;
    let other_uart = |compat: &'static [&'static str]| {
        walk::find_map(&fdt, |n, bus| {
            if !is_compatible(n, compat) || !walk::enabled(n) {
                return None;
            }
            let region = *bus.regs(n)?.first()?;
            (region != console.region).then(|| Uart {
                region,
                intid: interrupts3(n).first().copied(),
            })
        })
    };
    let link_uart = other_uart(PL011);
    let mini_uart = other_uart(MINI_UART);
    let mut virtio_mmio = heapless::Vec::new();
    walk::find_map(&fdt, |n, bus| {
        if is_compatible(n, &["virtio,mmio"])
            && let Some(r) = bus.regs(n).and_then(|r| r.first().copied())
            && virtio_mmio.push(r).is_err()
        {
            return Some(());
        }
        None
    });
    Ok(BoardInfo {
        model: fdt
            .find_node("/")
            .and_then(|n| n.property("model"))
            .and_then(|p| p.as_str())
            .unwrap_or("unknown"),
        memory: memory_banks(&fdt)?,
        console,
        link_uart,
        mini_uart,
        spin_table_cpus: spin_table_cpus(&fdt),
        virtio_mmio,
        gic: gic(&fdt)?,
        timer: timer(&fdt),
        psci: psci(&fdt),
        bootargs,
        initrd: chosen.and_then(initrd),
        dtb_size: fdt.total_size(),
    })
}

fn is_compatible(node: FdtNode<'_, '_>, with: &[&str]) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|x| with.contains(&x)))
}

/// The cores of `/cpus` that a spin table starts.
fn spin_table_cpus(fdt: &Fdt<'_>) -> heapless::Vec<SpinTableCpu, MAX_CPUS> {
    let mut out = heapless::Vec::new();
    let Some(cpus) = fdt.find_node("/cpus") else {
        return out;
    };
    for cpu in cpus.children() {
        let spin = cpu
            .property("enable-method")
            .and_then(|p| p.as_str())
            .is_some_and(|m| m == "spin-table");
        let release = cpu
            .property("cpu-release-addr")
            .and_then(|p| walk::number(p.value));
        let mpidr = cpu.property("reg").and_then(|p| walk::number(p.value));
        if let (true, Some(release_addr), Some(mpidr)) = (spin, release, mpidr) {
            let _ = out.push(SpinTableCpu {
                mpidr,
                release_addr,
            });
        }
    }
    out
}

fn memory_banks(fdt: &Fdt<'_>) -> Result<heapless::Vec<Region, MAX_MEMORY_BANKS>, DtbError> {
    let mut banks = heapless::Vec::new();
    walk::find_map(fdt, |node, bus| {
        let is_memory = node
            .property("device_type")
            .and_then(|p| p.as_str())
            .is_some_and(|t| t == "memory");
        if is_memory {
            for r in bus.regs(node).into_iter().flatten() {
                if r.size > 0 {
                    // More banks than we keep: the rest is simply not used.
                    let _ = banks.push(r);
                }
            }
        }
        None::<()>
    });
    if banks.is_empty() {
        return Err(DtbError::NoMemory);
    }
    Ok(banks)
}

fn first_reg(node: FdtNode<'_, '_>, bus: &Bus<'_>, what: &'static str) -> Result<Region, DtbError> {
    bus.regs(node)
        .and_then(|v| v.first().copied())
        .ok_or(DtbError::BadProperty(what))
}

/// Big-endian u32 cells of a property.
fn cells<'a>(bytes: &'a [u8]) -> impl Iterator<Item = u32> + 'a {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Converts a 3-cell GIC interrupt specifier (type, number, flags) to an
/// INTID: SPI n is INTID 32 + n, PPI n is INTID 16 + n (GIC binding).
fn gic_intid(kind: u32, number: u32) -> u32 {
    let base = if kind == 1 { 16 } else { 32 };
    number.saturating_add(base)
}

fn interrupts3(node: FdtNode<'_, '_>) -> heapless::Vec<u32, 8> {
    let mut out = heapless::Vec::new();
    if let Some(p) = node.property("interrupts") {
        let c: heapless::Vec<u32, 24> = cells(p.value).take(24).collect();
        for spec in c.chunks_exact(3) {
            let _ = out.push(gic_intid(spec[0], spec[1]));
        }
    }
    out
}

/// The console: a PL011, since that is the hypervisor's console driver.
/// `/chosen/stdout-path` when it names an enabled PL011; otherwise the
/// first enabled PL011 in the tree (the Pi 4's device tree names the
/// mini-UART there; its PL011 UART0 comes first).
fn console(fdt: &Fdt<'_>) -> Result<Uart, DtbError> {
    let stdout = fdt
        .find_node("/chosen")
        .and_then(|c| c.property("stdout-path"))
        .and_then(|p| p.as_str())
        .map(|path| path.split(':').next().unwrap_or(path))
        .and_then(|path| {
            if path.starts_with('/') {
                fdt.find_node(path)
            } else {
                // An alias such as "serial0".
                fdt.find_node("/aliases")
                    .and_then(|a| a.property(path))
                    .and_then(|p| p.as_str())
                    .and_then(|p| fdt.find_node(p))
            }
        })
        .filter(|n| is_compatible(*n, PL011) && walk::enabled(*n));
    walk::find_map(fdt, |n, bus| {
        let chosen = match stdout {
            Some(s) => walk::same_node(n, s),
            None => is_compatible(n, PL011) && walk::enabled(n),
        };
        chosen.then(|| {
            Ok(Uart {
                region: first_reg(n, bus, "console reg")?,
                intid: interrupts3(n).first().copied(),
            })
        })
    })
    .unwrap_or(Err(DtbError::NoConsole))
}

fn gic(fdt: &Fdt<'_>) -> Result<GicInfo, DtbError> {
    let found = walk::find_map(fdt, |n, bus| {
        let version = if is_compatible(n, GIC_V3) {
            GicVersion::V3
        } else if is_compatible(n, GIC_V2) {
            GicVersion::V2
        } else {
            return None;
        };
        Some((version, bus.regs(n), interrupts3(n)))
    });
    let Some((version, r, irqs)) = found else {
        return Err(DtbError::NoGic);
    };
    let r = r.ok_or(DtbError::BadProperty("gic reg"))?;
    let distributor = *r.first().ok_or(DtbError::BadProperty("gic reg"))?;
    let cpu_or_redistributor = *r.get(1).ok_or(DtbError::BadProperty("gic reg"))?;
    let (hyp_interface, virtual_cpu) = match version {
        GicVersion::V2 => (r.get(2).copied(), r.get(3).copied()),
        GicVersion::V3 => (None, None),
    };
    Ok(GicInfo {
        version,
        distributor,
        cpu_or_redistributor,
        hyp_interface,
        virtual_cpu,
        maintenance_intid: irqs.first().copied(),
    })
}

fn timer(fdt: &Fdt<'_>) -> Option<TimerIntids> {
    let node = fdt.find_compatible(&["arm,armv8-timer", "arm,armv7-timer"])?;
    let i = interrupts3(node);
    Some(TimerIntids {
        secure_phys: *i.first()?,
        phys: *i.get(1)?,
        virt: *i.get(2)?,
        hyp_phys: *i.get(3)?,
    })
}

fn psci(fdt: &Fdt<'_>) -> Option<PsciMethod> {
    let node = fdt.find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])?;
    match node.property("method")?.as_str()? {
        "smc" => Some(PsciMethod::Smc),
        "hvc" => Some(PsciMethod::Hvc),
        _ => None,
    }
}

fn initrd(chosen: FdtNode<'_, '_>) -> Option<Region> {
    let read = |name: &str| -> Option<u64> {
        let v = chosen.property(name)?.value;
        match v.len() {
            4 => Some(u32::from_be_bytes(v.try_into().ok()?) as u64),
            8 => Some(u64::from_be_bytes(v.try_into().ok()?)),
            _ => None,
        }
    };
    let start = read("linux,initrd-start")?;
    let end = read("linux,initrd-end")?;
    (end > start).then(|| Region::new(start, end - start))
}
