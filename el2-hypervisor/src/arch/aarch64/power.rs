//! Stopping the board: the exit record on the console, then PSCI or, on
//! the Raspberry Pi 4, the BCM2835 watchdog (the board's `PowerOff`).
//!
//! No semihosting: QEMU's semihosting cannot be limited to EL2, and with it
//! on, the guest's EL1 could exit the board, read host time and run host
//! commands (docs/design.md, "Exit status").

use board_support::PowerOff;
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
/// (`el2_hypervisor::exit`), then PSCI `SYSTEM_OFF` (or the Pi's watchdog
/// "halt" reset) turns the board off: under QEMU that ends the process
/// (status 0; xtask reads the record). A
/// stopped board stays stopped, failures included: a board that reset
/// itself would come back as a second, unannounced member of its pair.
pub fn stop(status: ExitStatus) -> ! {
    super::console::write_exit_record(status.code());
    super::console::flush();
    match crate::runtime::boot::BOARD.power_off {
        PowerOff::Psci => {
            psci_call(PSCI_SYSTEM_OFF, 0, 0, 0);
        }
        // SAFETY: the board's description names its PM block.
        PowerOff::Bcm2835Watchdog { base } => unsafe { watchdog_halt(base) },
    }
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// The BCM2835 power-management block's registers (its offsets and
/// password as Linux's bcm2835_wdt driver and QEMU's bcm2835_powermgt use
/// them; Broadcom publishes no datasheet for the block).
const PM_RSTC: u64 = 0x1c;
const PM_RSTS: u64 = 0x20;
const PM_WDOG: u64 = 0x24;
const PM_PASSWORD: u32 = 0x5a00_0000;
/// PM_RSTS: boot partition 63, which the Pi's firmware (and QEMU) take as
/// "halt" rather than boot again.
const PM_RSTS_HALT: u32 = 0x555;
/// PM_RSTC: the reset-configuration field (bits 5:4) and its full reset.
const PM_RSTC_WRCFG_MASK: u32 = 0x30;
const PM_RSTC_WRCFG_FULL_RESET: u32 = 0x20;
/// Watchdog ticks (~16 us each) before the reset.
const PM_WDOG_TICKS: u32 = 10;

/// Halts the board through its watchdog: partition "halt", then a full
/// reset after a few ticks.
///
/// # Safety
/// `base` is the board's PM block, mapped as device memory (or MMU off).
unsafe fn watchdog_halt(base: u64) {
    let reg = |off: u64| (base + off) as *mut u32;
    // SAFETY: the caller names the PM block; these are its registers.
    unsafe {
        let rsts = core::ptr::read_volatile(reg(PM_RSTS));
        core::ptr::write_volatile(
            reg(PM_RSTS),
            PM_PASSWORD | (rsts & !PM_PASSWORD) | PM_RSTS_HALT,
        );
        core::ptr::write_volatile(reg(PM_WDOG), PM_PASSWORD | PM_WDOG_TICKS);
        let rstc = core::ptr::read_volatile(reg(PM_RSTC)) & !PM_RSTC_WRCFG_MASK & 0x00ff_ffff;
        core::ptr::write_volatile(reg(PM_RSTC), PM_PASSWORD | rstc | PM_RSTC_WRCFG_FULL_RESET);
    }
}
