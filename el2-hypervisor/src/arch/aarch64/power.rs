//! Stopping the board: semihosting exit under QEMU, PSCI on real boards.
//!
//! See `el2_hypervisor::exit` for why QEMU needs semihosting to tell
//! success from failure.

use core::sync::atomic::{AtomicBool, Ordering};
use el2_hypervisor::exit::ExitStatus;

static SEMIHOSTING: AtomicBool = AtomicBool::new(false);

/// Use semihosting `SYS_EXIT` from now on (the board's command line said so).
pub fn enable_semihosting() {
    SEMIHOSTING.store(true, Ordering::Relaxed);
}

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;

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

/// Semihosting SYS_EXIT (0x18) with ADP_Stopped_ApplicationExit (0x20026):
/// on AArch64 x1 points at {reason, subcode} and QEMU exits with `subcode`.
fn semihosting_exit(code: u8) {
    let block: [u64; 2] = [0x20026, code as u64];
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting trap; QEMU was started
    // with semihosting enabled (we were told so) and reads `block`.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") 0x18u64, in("x1") block.as_ptr(),
            options(nostack)
        )
    };
}

/// Stops the board. Never returns.
pub fn stop(status: ExitStatus) -> ! {
    super::console::flush();
    if SEMIHOSTING.load(Ordering::Relaxed) {
        semihosting_exit(status.code());
    }
    let function = match status {
        ExitStatus::Success => PSCI_SYSTEM_OFF,
        _ => PSCI_SYSTEM_RESET,
    };
    psci_call(function, 0, 0, 0);
    loop {
        aarch64_cpu::asm::wfi();
    }
}
