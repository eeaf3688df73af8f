//! defmt's global logger: log frames go to the console UART.
//!
//! Each frame is one 0xFF byte (which text never holds unescaped:
//! `el2_hypervisor::console_stream`) followed by defmt's rzCOBS-encoded
//! frame, which ends with 0x00.
//! The host (`cargo xtask run`/`test`) splits the console stream on that
//! marker and decodes the frames with `defmt-decoder` against the ELF.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use el2_hypervisor::console_stream::FRAME_MARKER;

#[defmt::global_logger]
struct Logger;

struct EncoderCell(UnsafeCell<defmt::Encoder>);
// SAFETY: only touched between `acquire` and `release`, which TAKEN makes
// exclusive (single core, exceptions masked at EL2).
unsafe impl Sync for EncoderCell {}

static ENCODER: EncoderCell = EncoderCell(UnsafeCell::new(defmt::Encoder::new()));
static TAKEN: AtomicBool = AtomicBool::new(false);

// SAFETY: `acquire`/`release` bracket every use of ENCODER and TAKEN stops
// re-entry; bytes go out through the console lock.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            // Re-entered from a fatal path: drop the log line rather than
            // interleave two frames.
            return;
        }
        super::console::write_frame(&[FRAME_MARKER]);
        // SAFETY: TAKEN was false and is now ours.
        unsafe { (*ENCODER.0.get()).start_frame(super::console::write_frame) };
    }

    unsafe fn flush() {
        super::console::flush();
    }

    unsafe fn release() {
        // SAFETY: called after `acquire` by defmt's contract.
        unsafe { (*ENCODER.0.get()).end_frame(super::console::write_frame) };
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called between `acquire` and `release` by defmt's contract.
        unsafe { (*ENCODER.0.get()).write(bytes, super::console::write_frame) };
    }
}
