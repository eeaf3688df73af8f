//! The AArch64 layer of the hypervisor (EL2): vectors, system registers,
//! console, power. Everything `unsafe` or `asm!` in the hypervisor is here.

pub mod cache;
pub mod console;
pub mod el2_regs;
pub mod exceptions;
pub mod gic;
pub mod gicv2;
pub mod gicv3;
pub mod guest_ram;
pub mod heap;
pub mod hw;
pub mod link;
pub mod logger;
pub mod mmu;
pub mod pmu;
pub mod power;
pub mod secondaries;
pub mod sysreg;
pub mod timer;
pub mod virtio_net;
