//! The hypervisor's console: the board's PL011, shared by text (the
//! banner, fatal reports, the guest's output), defmt log frames (see
//! logger.rs) and the exit record, laid out as
//! `el2_hypervisor::console_stream` says: every text byte is escaped there,
//! so guest output can never pass for a frame or an exit record.

use board_support::pl011::Pl011;
use core::fmt::Write;
use el2_hypervisor::console_stream;
use spin::Mutex;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);

/// Points the console at a PL011.
///
/// # Safety
/// `base` must be the board's console PL011, mapped (or the MMU off).
pub unsafe fn init(base: u64) {
    // SAFETY: forwarded from the caller.
    let uart = unsafe { Pl011::new(base as usize) };
    uart.ensure_enabled();
    *CONSOLE.lock() = Some(uart);
}

/// The hypervisor's own text: `\n` becomes `\r\n` for terminals, and
/// every byte is escaped.
struct Text<'a>(&'a Pl011);

impl Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for line in s.split_inclusive('\n') {
            let (body, newline) = match line.strip_suffix('\n') {
                Some(body) => (body, true),
                None => (line, false),
            };
            console_stream::escape(body.as_bytes(), |b| self.0.write_raw(b));
            if newline {
                self.0.write_raw(b"\r\n");
            }
        }
        Ok(())
    }
}

/// Writes formatted text.
pub fn write_fmt(args: core::fmt::Arguments<'_>) {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        let _ = Text(uart).write_fmt(args);
    }
}

/// Writes the guest's console bytes, as guest chunks.
pub fn write_guest(bytes: &[u8]) {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        console_stream::guest_chunks(bytes, |b| uart.write_raw(b));
    }
}

/// Writes a piece of a defmt frame as it is (logger.rs).
pub fn write_frame(bytes: &[u8]) {
    if let Some(uart) = CONSOLE.lock().as_ref() {
        uart.write_raw(bytes);
    }
}

/// Writes the exit record (power.rs), even if the console lock is held by
/// code that a fatal exception interrupted.
pub fn write_exit_record(status: u8) {
    unlock_for_fatal();
    write_frame(&console_stream::exit_record(status));
}

fn unlock_for_fatal() {
    if CONSOLE.is_locked() {
        // SAFETY: single core, exceptions masked at EL2: the holder is the
        // code interrupted by this fatal exception or panic, which will
        // never run again (every caller stops the board right after).
        unsafe { CONSOLE.force_unlock() };
    }
}

/// Writes text even if the console lock is held (by the code that just
/// faulted): only for the fatal paths, which never return.
pub fn write_fmt_fatal(args: core::fmt::Arguments<'_>) {
    unlock_for_fatal();
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
