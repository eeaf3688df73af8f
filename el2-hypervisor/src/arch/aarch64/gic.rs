//! The board's GIC, whichever version it is: chosen once at start from the
//! device tree ([`Gic::new`]), then every exit's acknowledge, end of
//! interrupt and list-register access goes to the GICv3 system registers
//! ([`super::gicv3`]) or the GICv2 GICC/GICH blocks ([`super::gicv2`]).

use super::{gicv2, gicv3};
use board_support::{GicInfo, GicVersion};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use el2_hypervisor::regs;
use el2_hypervisor::replica::fingerprint::CpuInterfaceState;

const V3: u8 = 3;
const V2: u8 = 2;

/// The version [`Gic::new`] set up (GICv3 until then).
static VERSION: AtomicU8 = AtomicU8::new(V3);
/// Whether underflow maintenance is on (what ICH_HCR_EL2 / GICH_HCR hold).
static UNDERFLOW: AtomicBool = AtomicBool::new(false);

fn v2() -> bool {
    VERSION.load(Ordering::Relaxed) == V2
}

/// The physical GIC's distributor side.
pub enum Gic {
    V2(gicv2::Gic),
    V3(gicv3::Gic),
}

/// Why the board's GIC cannot carry a guest.
#[derive(Clone, Copy, Debug)]
pub enum GicError {
    /// A GICv2 without the virtualization extensions' GICH/GICV blocks.
    NoVirtualization,
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::NoVirtualization => f.write_str(
                "the board's GICv2 has no virtual interface (GICH/GICV): QEMU needs virtualization=on",
            ),
        }
    }
}

impl Gic {
    /// Takes the GIC the device tree describes and initialises it for the
    /// hypervisor's own interrupts.
    ///
    /// # Errors
    /// [`GicError`] when a GICv2 has no virtual interface.
    ///
    /// # Safety
    /// `info` is the board's GIC as its device tree names it; only the
    /// hypervisor drives the physical GIC, and the guest's stage 2 maps
    /// none of its blocks but GICV.
    pub unsafe fn new(info: &GicInfo) -> Result<Self, GicError> {
        let gic = match info.version {
            GicVersion::V3 => {
                VERSION.store(V3, Ordering::Relaxed);
                // SAFETY: the caller's contract: the GICv3 distributor and
                // this core's redistributor.
                let g = unsafe {
                    gicv3::Gic::new(info.distributor.base, info.cpu_or_redistributor.base)
                };
                g.init();
                Gic::V3(g)
            }
            GicVersion::V2 => {
                let Some(gich) = info.hyp_interface else {
                    return Err(GicError::NoVirtualization);
                };
                if info.virtual_cpu.is_none() {
                    return Err(GicError::NoVirtualization);
                }
                VERSION.store(V2, Ordering::Relaxed);
                // SAFETY: the caller's contract: GICD, GICC and GICH.
                let g = unsafe {
                    gicv2::Gic::new(
                        info.distributor.base,
                        info.cpu_or_redistributor.base,
                        gich.base,
                    )
                };
                g.init();
                Gic::V2(g)
            }
        };
        Ok(gic)
    }

    /// Enables a PPI for the hypervisor.
    pub fn enable_ppi(&self, intid: u32) {
        match self {
            Gic::V2(g) => g.enable_ppi(intid),
            Gic::V3(g) => g.enable_ppi(intid),
        }
    }

    /// The GIC version, as the pairing digest and the vGIC want it.
    pub const fn version(&self) -> u8 {
        match self {
            Gic::V2(_) => V2,
            Gic::V3(_) => V3,
        }
    }
}

/// An acknowledged physical interrupt.
#[derive(Clone, Copy, Debug)]
pub struct Acked {
    pub intid: u32,
    /// What the end of interrupt gives back (GICv2: INTID and source CPU).
    raw: u32,
}

/// Acknowledges the highest-priority pending interrupt, if there is one.
pub fn acknowledge() -> Option<Acked> {
    let (raw, intid) = if v2() {
        let raw = gicv2::acknowledge();
        (raw, gicv2::intid(raw))
    } else {
        let i = gicv3::acknowledge();
        (i, i)
    };
    // 1020..1023 are special INTIDs (IHI 0069H §2.2.1; 1023 on GICv2):
    // nothing to take.
    (intid < 1020).then_some(Acked { intid, raw })
}

/// Ends (and deactivates) an interrupt [`acknowledge`] returned.
pub fn end_of_interrupt(a: Acked) {
    if v2() {
        gicv2::end_of_interrupt(a.raw);
    } else {
        gicv3::end_of_interrupt(a.raw);
    }
}

/// Number of list registers the hardware has.
pub fn list_register_count() -> usize {
    if v2() {
        gicv2::list_register_count()
    } else {
        gicv3::list_register_count()
    }
}

/// Turns the virtual CPU interface on, without maintenance interrupts.
pub fn enable_virtual_interface() {
    write_hcr(false);
}

/// Underflow maintenance on or off (the virtual interface stays on);
/// written only when it changes.
pub fn set_underflow(on: bool) {
    if UNDERFLOW.load(Ordering::Relaxed) != on {
        write_hcr(on);
    }
}

fn write_hcr(underflow: bool) {
    UNDERFLOW.store(underflow, Ordering::Relaxed);
    let hcr = if underflow {
        regs::ICH_HCR_UNDERFLOW
    } else {
        regs::ICH_HCR_GUEST
    };
    if v2() {
        // GICH_HCR has En and UIE where ICH_HCR_EL2 has them (IHI 0048B 5.3.2).
        gicv2::write_hcr(hcr);
    } else {
        gicv3::write_hcr(hcr);
    }
}

/// Reads list register `n`.
pub fn read_lr(n: usize) -> u64 {
    if v2() {
        gicv2::read_lr(n)
    } else {
        gicv3::read_lr(n)
    }
}

/// Writes list register `n` with a value the vGIC model encoded.
pub fn write_lr(n: usize, v: u64) {
    if v2() {
        gicv2::write_lr(n, v);
    } else {
        gicv3::write_lr(n, v);
    }
}

/// The guest's virtual CPU interface state held at EL2, for the fingerprint.
pub fn read_cpu_interface_state() -> CpuInterfaceState {
    if v2() {
        gicv2::read_cpu_interface_state()
    } else {
        gicv3::read_cpu_interface_state()
    }
}
