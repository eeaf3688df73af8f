//! System-register access at EL2: thin, named wrappers around `mrs`/`msr`.
//!
//! Reads of identification and syndrome registers have no side effects and
//! are safe functions. Every write goes through [`write_sysreg!`], inside an
//! `unsafe` block at its call site, where its reason is explained; the
//! values written are built from named fields in `el2_hypervisor::regs`.

/// Reads a system register by name.
macro_rules! read_sysreg {
    ($name:expr) => {{
        let v: u64;
        // SAFETY: reading this register has no side effects at EL2.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }};
}
#[allow(unused_imports)]
pub(crate) use read_sysreg;

/// Writes a system register by name: `write_sysreg!("HCR_EL2", value)`.
///
/// The macro holds no `unsafe` block: a write can break isolation or the
/// guest, so each call site sits in its own `unsafe {}` whose `// SAFETY:`
/// comment says why that register may take that value. The value (a `u64`)
/// is evaluated before the `msr`.
macro_rules! write_sysreg {
    ($name:expr, $v:expr) => {{
        let v: u64 = $v;
        core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) v, options(nostack, preserves_flags))
    }};
}
pub(crate) use write_sysreg;

/// The ID registers the banner and the feature checks read.
pub fn id_registers() -> el2_hypervisor::cpu_features::IdRegisters {
    el2_hypervisor::cpu_features::IdRegisters {
        mmfr0: read_sysreg!("ID_AA64MMFR0_EL1"),
        mmfr1: read_sysreg!("ID_AA64MMFR1_EL1"),
        dfr0: read_sysreg!("ID_AA64DFR0_EL1"),
        isar0: read_sysreg!("ID_AA64ISAR0_EL1"),
        pfr0: read_sysreg!("ID_AA64PFR0_EL1"),
    }
}

pub fn esr_el2() -> u64 {
    read_sysreg!("ESR_EL2")
}

pub fn far_el2() -> u64 {
    read_sysreg!("FAR_EL2")
}

pub fn hpfar_el2() -> u64 {
    read_sysreg!("HPFAR_EL2")
}

/// Installs the EL2 vector table.
pub fn install_vectors() {
    unsafe extern "C" {
        static el2_vectors: u8;
    }
    let table = core::ptr::addr_of!(el2_vectors) as u64;
    // SAFETY: VBAR_EL2 gets `el2_vectors`, the 2 KiB-aligned table in
    // vectors.s whose entries save state and call `el2_trap`; the write only
    // changes where EL2 exceptions go, and the ISB makes it take effect.
    unsafe {
        write_sysreg!("VBAR_EL2", table);
        core::arch::asm!("isb", options(nostack, preserves_flags));
    }
}
