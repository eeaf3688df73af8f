//! Device and firmware emulation: what the guest reaches only through the hypervisor.
