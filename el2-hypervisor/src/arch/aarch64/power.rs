//! Stopping the board: the exit record on the console, then PSCI.
//!
//! No semihosting: QEMU's semihosting cannot be limited to EL2, and with it
//! on, the guest's EL1 could exit the board, read host time and run host
//! commands (docs/design.md, "Exit status").

use el2_hypervisor::exit::ExitStatus;

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

/// Calls PSCI in EL3 firmware (QEMU's built-in PSCI answers SMC from EL2).
pub fn psci_call(function: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    let mut x0 = function;
    // SAFETY: an SMC to firmware with the SMCCC register convention; the
    // firmware preserves x4-x30 (SMCCC 1.1: x4-x17 may be clobbered).
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
            out("x15") _, out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    x0
}

/// Stops the board. Never returns.
///
/// The status goes out as the console's exit record
/// (`el2_hypervisor::exit`), then PSCI `SYSTEM_OFF` turns the board off:
/// under QEMU that ends the process (status 0; xtask reads the record). A
/// stopped board stays stopped, failures included: a board that reset
/// itself would come back as a second, unannounced member of its pair.
pub fn stop(status: ExitStatus) -> ! {
    super::console::write_exit_record(status.code());
    super::console::flush();
    psci_call(PSCI_SYSTEM_OFF, 0, 0, 0);
    loop {
        aarch64_cpu::asm::wfi();
    }
}
