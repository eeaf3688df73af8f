//! The physical GICv2 (GIC-400, QEMU virt `gic-version=2`) as the
//! hypervisor uses it: its own interrupts through the distributor (GICD)
//! and CPU interface (GICC), and the virtual interface control block
//! (GICH) whose list registers hold the guest's. The guest's CPU interface
//! is the virtual one (GICV), mapped at stage 2 where its device tree says
//! GICC is (`runtime::vm`).
//! Register maps: Arm IHI 0048B (GICv2), 4.1.2 (GICD), 4.1.3 (GICC), 5.3 (GICH).

use core::sync::atomic::{AtomicUsize, Ordering};
use el2_hypervisor::replica::fingerprint::CpuInterfaceState;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    /// The distributor, as far as the hypervisor uses it (IHI 0048B 4.1.2).
    GicdRegs {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x100 => isenabler0: ReadWrite<u32>),
        (0x104 => _reserved1),
        (0x180 => icenabler0: WriteOnly<u32>),
        (0x184 => _reserved2),
        (0x400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x420 => @END),
    }
}

register_structs! {
    /// The CPU interface (IHI 0048B 4.1.3).
    GiccRegs {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => pmr: ReadWrite<u32>),
        (0x08 => bpr: ReadWrite<u32>),
        (0x0c => iar: ReadOnly<u32>),
        (0x10 => eoir: WriteOnly<u32>),
        (0x14 => @END),
    }
}

register_structs! {
    /// The virtual interface control block (IHI 0048B 5.3.1), this
    /// processor's view.
    GichRegs {
        (0x000 => hcr: ReadWrite<u32>),
        (0x004 => vtr: ReadOnly<u32>),
        (0x008 => vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        (0x0f0 => apr: ReadWrite<u32>),
        (0x0f4 => _reserved1),
        (0x100 => lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// GICD_CTLR / GICC_CTLR Enable (bit 0; no Security Extensions, IHI 0048B
/// 4.3.1, 4.4.1): the distributor forwards, the CPU interface signals.
const ENABLE: u32 = 1;
/// GICC_IAR InterruptID `[9:0]` (`[12:10]` is the source CPU of an SGI).
const IAR_INTID: u32 = 0x3ff;
/// GICC_IAR's INTID and CPUID fields, which GICC_EOIR must be given back.
const IAR_ID: u32 = 0x1fff;
/// GICH_VTR ListRegs `[5:0]`: the number of list registers minus one.
const VTR_LIST_REGS: u32 = 0x3f;

/// The blocks' addresses, set once by [`Gic::new`] (0 before).
static GICC: AtomicUsize = AtomicUsize::new(0);
static GICH: AtomicUsize = AtomicUsize::new(0);

fn gicc() -> &'static GiccRegs {
    // SAFETY: `Gic::new`'s caller vouched for this block (the board's GICC)
    // before anything here is called; the hypervisor alone drives it.
    unsafe { &*(GICC.load(Ordering::Relaxed) as *const GiccRegs) }
}

fn gich() -> &'static GichRegs {
    // SAFETY: as in `gicc`, for the board's GICH.
    unsafe { &*(GICH.load(Ordering::Relaxed) as *const GichRegs) }
}

/// The physical GICv2's distributor.
pub struct Gic {
    gicd: &'static GicdRegs,
}

impl Gic {
    /// # Safety
    /// `gicd`, `gicc` and `gich` are the board's GICv2 distributor, CPU
    /// interface and virtual interface control block, and nothing else
    /// drives them (the guest's stage 2 maps none of them).
    pub unsafe fn new(gicd: u64, gicc: u64, gich: u64) -> Self {
        GICC.store(gicc as usize, Ordering::Relaxed);
        GICH.store(gich as usize, Ordering::Relaxed);
        Self {
            // SAFETY: the caller's contract.
            gicd: unsafe { &*(gicd as *const GicdRegs) },
        }
    }

    /// Enables the distributor and this CPU interface: every priority let
    /// through (PMR 0xff), the finest preemption (BPR 0), EOImode 0 (an
    /// EOI also deactivates).
    pub fn init(&self) {
        // GICD_ICENABLER0: every SGI and PPI off (their reset state is
        // IMPLEMENTATION DEFINED); `enable_ppi` turns on the hypervisor's
        // own. The guest's timers' PPIs stay off: on a core without ECV
        // the guest can program the hardware virtual timer, whose PPI 27
        // must never reach anyone (docs/design.md).
        self.gicd.icenabler0.set(u32::MAX);
        self.gicd.ctlr.set(ENABLE);
        let c = gicc();
        c.pmr.set(0xff);
        c.bpr.set(0);
        c.ctlr.set(ENABLE);
    }

    /// Enables a PPI (16..31) at a middle priority. PPIs are banked per
    /// CPU and always target it (ITARGETSR0-7 are read-only).
    pub fn enable_ppi(&self, intid: u32) {
        let prio = &self.gicd.ipriorityr[(intid / 4) as usize % 8];
        let shift = (intid % 4) * 8;
        prio.set((prio.get() & !(0xff << shift)) | (0x80 << shift));
        self.gicd.isenabler0.set(1 << (intid % 32));
    }
}

/// Acknowledges the highest-priority pending interrupt: GICC_IAR's INTID
/// and source CPU, to be given back to [`end_of_interrupt`].
pub fn acknowledge() -> u32 {
    gicc().iar.get() & IAR_ID
}

/// The INTID of an acknowledged value.
pub const fn intid(acked: u32) -> u32 {
    acked & IAR_INTID
}

/// Ends (and deactivates: EOImode 0) an interrupt [`acknowledge`] returned.
pub fn end_of_interrupt(acked: u32) {
    gicc().eoir.set(acked);
}

/// Number of list registers (GICH_VTR.ListRegs + 1).
pub fn list_register_count() -> usize {
    (gich().vtr.get() & VTR_LIST_REGS) as usize + 1
}

/// Writes GICH_HCR (En, UIE: the same bits as ICH_HCR_EL2's, IHI 0048B 5.3.2).
pub fn write_hcr(value: u64) {
    gich().hcr.set(value as u32);
}

/// Reads GICH_LRn (32 bits).
pub fn read_lr(n: usize) -> u64 {
    gich().lr.get(n).map_or(0, |r| u64::from(r.get()))
}

/// Writes GICH_LRn with a value the vGIC model encoded
/// (`LrFormat::V2`): a virtual interrupt offered to the guest through
/// GICV, HW = 0.
pub fn write_lr(n: usize, v: u64) {
    if let Some(r) = gich().lr.get(n) {
        r.set(v as u32);
    }
}

/// The guest's virtual CPU interface state held in GICH: GICH_VMCR, and
/// GICH_APR (the one active-priorities register of a 5-bit priority
/// GIC) in the group-0 slot.
pub fn read_cpu_interface_state() -> CpuInterfaceState {
    let h = gich();
    let mut s = CpuInterfaceState {
        vmcr: u64::from(h.vmcr.get()),
        ..Default::default()
    };
    s.ap0r[0] = u64::from(h.apr.get());
    s
}
