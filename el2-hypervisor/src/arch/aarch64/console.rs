//! The hypervisor's console: the board's PL011, shared by plain text (the
//! banner, fatal reports) and defmt log frames (see logger.rs).

use board_support::pl011::Pl011;
use core::fmt::Write;
use spin::Mutex;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);

/// Points the console at a PL011.
///
/// # Safety
/// `base` must be the board's console PL011, mapped (or the MMU off).
pub unsafe fn init(base: u64) {
    // SAFETY: forwarded from the caller.
    *CONSOLE.lock() = Some(unsafe { Pl011::new(base as usize) });
}

/// Writes formatted text.
pub fn write_fmt(args: core::fmt::Arguments<'_>) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Writes raw bytes (defmt frames).
pub fn write_raw(bytes: &[u8]) {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        uart.write_raw(bytes);
    }
}

/// Writes text even if the console lock is held (by the code that just
/// faulted): only for the fatal paths, which never return.
pub fn write_fmt_fatal(args: core::fmt::Arguments<'_>) {
    if CONSOLE.is_locked() {
        // SAFETY: single core, exceptions masked at EL2: the holder is the
        // code interrupted by this fatal exception or panic, which will
        // never run again.
        unsafe { CONSOLE.force_unlock() };
    }
    write_fmt(args);
}

pub fn flush() {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        uart.flush();
    }
}

/// `print!` to the console.
#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => { $crate::arch::console::write_fmt(format_args!($($arg)*)) };
}
/// `println!` to the console.
macro_rules! println {
    () => { $crate::arch::console::write_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::arch::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
#[allow(unused_imports)]
pub(crate) use {print, println};
