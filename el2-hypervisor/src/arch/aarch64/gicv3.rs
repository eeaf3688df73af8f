//! The physical GICv3 (QEMU virt `gic-version=3`) as the hypervisor uses it: its own interrupts (the
//! EL2 timer, the console) taken at EL2, and the virtual CPU interface's
//! list registers (ICH_LR<n>_EL2) through which the guest gets its own.
//! Register offsets: Arm IHI 0069 (GICv3/v4 architecture), 12.8-12.11.

use super::sysreg::{read_sysreg, write_sysreg};
use aarch64_cpu::registers::{ICH_VTR_EL2, Readable};
use core::ptr::{read_volatile, write_volatile};
use el2_hypervisor::regs;

const GICD_CTLR: usize = 0x0000;
const GICR_WAKER: usize = 0x0014;
const GICR_SGI: usize = 0x1_0000;
const GICR_IGROUPR0: usize = GICR_SGI + 0x0080;
const GICR_ISENABLER0: usize = GICR_SGI + 0x0100;
const GICR_ICENABLER0: usize = GICR_SGI + 0x0180;
const GICR_IPRIORITYR: usize = GICR_SGI + 0x0400;

/// The physical GIC.
pub struct Gic {
    gicd: usize,
    gicr: usize,
}

impl Gic {
    /// # Safety
    /// `gicd` and `gicr` are the board's GICv3 distributor and this core's
    /// redistributor frame, and nothing else drives them.
    pub unsafe fn new(gicd: u64, gicr: u64) -> Self {
        Self {
            gicd: gicd as usize,
            gicr: gicr as usize,
        }
    }

    fn write32(&self, addr: usize, v: u32) {
        // SAFETY: `addr` is inside a GIC register block (constructor contract).
        unsafe { write_volatile(addr as *mut u32, v) }
    }
    fn read32(&self, addr: usize) -> u32 {
        // SAFETY: as in write32.
        unsafe { read_volatile(addr as *const u32) }
    }

    /// Wakes this core's redistributor, enables the distributor (affinity
    /// routing, group 1) and the system-register CPU interface at EL2.
    pub fn init(&self) {
        // SAFETY: ICC_SRE_EL2 (`regs::ICC_SRE_HYP`): the system-register
        // interface at EL2 and for EL1, no IRQ/FIQ bypass; it changes how
        // the hypervisor reaches the GIC it alone drives. Then a barrier.
        unsafe {
            write_sysreg!("ICC_SRE_EL2", regs::ICC_SRE_HYP);
            core::arch::asm!("isb", options(nostack));
        }
        // GICR_WAKER: clear ProcessorSleep (bit 1), wait for ChildrenAsleep (bit 2) to clear.
        let w = self.read32(self.gicr + GICR_WAKER);
        self.write32(self.gicr + GICR_WAKER, w & !(1 << 1));
        while self.read32(self.gicr + GICR_WAKER) & (1 << 2) != 0 {
            core::hint::spin_loop();
        }
        // GICR_ICENABLER0: every SGI and PPI off (their reset state is
        // IMPLEMENTATION DEFINED); `enable_ppi` turns on the hypervisor's
        // own. The guest's timers' PPIs stay off: on a core without ECV
        // the guest can program the hardware virtual timer, whose PPI 27
        // must never reach anyone (docs/design.md).
        self.write32(self.gicr + GICR_ICENABLER0, u32::MAX);
        // GICD_CTLR: EnableGrp0 | EnableGrp1 | ARE (single security state, DS=1).
        self.write32(self.gicd + GICD_CTLR, (1 << 0) | (1 << 1) | (1 << 4));
        // SAFETY: the hypervisor's own CPU interface, whose interrupts are
        // taken only where EL2 unmasks them: ICC_PMR_EL1 = 0xff lets every
        // priority through, ICC_BPR1_EL1 = 0 gives group 1 the finest
        // preemption, ICC_IGRPEN1_EL1 = 1 (Enable) turns group 1 on. With
        // HCR_EL2.IMO/FMO set the guest's accesses to these registers reach
        // its virtual interface, not this state. Then a barrier.
        unsafe {
            write_sysreg!("ICC_PMR_EL1", 0xff);
            write_sysreg!("ICC_BPR1_EL1", 0);
            write_sysreg!("ICC_IGRPEN1_EL1", 1);
            core::arch::asm!("isb", options(nostack));
        }
    }

    /// Enables a PPI (16..31) as group 1 at a middle priority.
    pub fn enable_ppi(&self, intid: u32) {
        let bit = 1u32 << (intid % 32);
        self.write32(
            self.gicr + GICR_IGROUPR0,
            self.read32(self.gicr + GICR_IGROUPR0) | bit,
        );
        let prio = self.gicr + GICR_IPRIORITYR + (intid as usize & !3);
        let shift = (intid % 4) * 8;
        self.write32(
            prio,
            (self.read32(prio) & !(0xff << shift)) | (0x80 << shift),
        );
        self.write32(self.gicr + GICR_ISENABLER0, bit);
    }
}

/// Acknowledges the highest-priority pending group-1 interrupt.
pub fn acknowledge() -> u32 {
    (read_sysreg!("ICC_IAR1_EL1") & 0xff_ffff) as u32
}

/// Ends (and, with EOImode 0, deactivates) an acknowledged interrupt.
pub fn end_of_interrupt(intid: u32) {
    // SAFETY: ICC_EOIR1_EL1 with an INTID that `acknowledge` returned (the
    // one caller, `take_physical_interrupts`): it drops the priority and
    // deactivates that interrupt of the hypervisor's own GIC.
    unsafe { write_sysreg!("ICC_EOIR1_EL1", intid as u64) };
}

/// The guest's virtual CPU interface state held in EL2 registers: ICH_VMCR_EL2
/// and the implemented active-priority registers (IHI 0069H §12.4:
/// ICH_VTR_EL2.PREbits + 1 preemption bits give 1, 2 or 4 of each of
/// ICH_AP0R<n>_EL2 and ICH_AP1R<n>_EL2; the others are not read, since
/// accessing them is UNDEFINED).
pub fn read_cpu_interface_state() -> el2_hypervisor::replica::fingerprint::CpuInterfaceState {
    let pre_bits = ICH_VTR_EL2.read(ICH_VTR_EL2::PREbits) + 1;
    let implemented = match pre_bits {
        7 => 4,
        6 => 2,
        _ => 1,
    };
    let mut s = el2_hypervisor::replica::fingerprint::CpuInterfaceState {
        vmcr: read_sysreg!("ICH_VMCR_EL2"),
        ..Default::default()
    };
    s.ap0r[0] = read_sysreg!("ICH_AP0R0_EL2");
    s.ap1r[0] = read_sysreg!("ICH_AP1R0_EL2");
    if implemented >= 2 {
        s.ap0r[1] = read_sysreg!("ICH_AP0R1_EL2");
        s.ap1r[1] = read_sysreg!("ICH_AP1R1_EL2");
    }
    if implemented == 4 {
        s.ap0r[2] = read_sysreg!("ICH_AP0R2_EL2");
        s.ap0r[3] = read_sysreg!("ICH_AP0R3_EL2");
        s.ap1r[2] = read_sysreg!("ICH_AP1R2_EL2");
        s.ap1r[3] = read_sysreg!("ICH_AP1R3_EL2");
    }
    s
}

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
pub fn list_register_count() -> usize {
    (ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) + 1) as usize
}

/// Writes ICH_HCR_EL2: `regs::ICH_HCR_GUEST` or `regs::ICH_HCR_UNDERFLOW`.
pub fn write_hcr(value: u64) {
    // SAFETY: ICH_HCR_EL2 with En, and UIE at most (`regs::ICH_HCR_*`, the
    // one caller `gic::write_hcr`): the guest's virtual CPU interface on,
    // showing it what the list registers hold (see `write_lr`), and the
    // underflow maintenance interrupt, which EL2 takes; the physical GIC
    // and EL2's own interrupts are left alone.
    unsafe { write_sysreg!("ICH_HCR_EL2", value) };
}

macro_rules! lr_access {
    ($($n:literal),*) => {
        /// Reads ICH_LR<n>_EL2.
        pub fn read_lr(n: usize) -> u64 {
            match n {
                $($n => read_sysreg!(concat!("ICH_LR", stringify!($n), "_EL2")),)*
                _ => 0,
            }
        }
        /// Writes ICH_LR<n>_EL2.
        pub fn write_lr(n: usize, v: u64) {
            match n {
                // SAFETY: ICH_LR<n>_EL2 with a value the vGIC model encoded
                // (`LrFormat::encode`, the EOI bit at most added by
                // `vgic::maintenance`): a virtual interrupt offered to the
                // guest, with HW = 0 (the model never links a physical
                // one), so it changes only what the guest's virtual CPU
                // interface shows and when EL2 hears of its EOI.
                $($n => unsafe { write_sysreg!(concat!("ICH_LR", stringify!($n), "_EL2"), v) },)*
                _ => {}
            }
        }
    };
}
lr_access!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
