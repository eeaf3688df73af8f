//! Access checks and register tables shared by the GICD and GICR frames.
//!
//! A frame is a table of [`Entry`]s, each a register or a register group
//! with the access widths the architecture allows it (IHI 0069H §12.1:
//! 32-bit registers are word-accessible, IPRIORITYR and friends also
//! byte-accessible, 64-bit registers also word-accessible by halves; no
//! register is halfword-accessible).
//! An access that touches no entry is RAZ/WI.

use super::VgicError;

/// Allowed-width masks: each width is its own bit (1, 2, 4, 8).
pub(super) const W1: u8 = 1;
pub(super) const W4: u8 = 4;
pub(super) const W8: u8 = 8;

/// A register (or group of registers) in a frame.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry<R> {
    pub start: u64,
    pub len: u64,
    /// Allowed widths, OR of [`W1`], [`W4`], [`W8`].
    pub widths: u8,
    pub reg: R,
}

impl<R> Entry<R> {
    pub const fn new(start: u64, len: u64, widths: u8, reg: R) -> Self {
        Entry {
            start,
            len,
            widths,
            reg,
        }
    }
}

/// Where an access landed: the register and the offset into it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hit<R> {
    pub reg: R,
    /// Byte offset of the access from the entry's start.
    pub rel: u64,
}

/// Checks `width` and alignment, and that the access lies in a frame of
/// `size` bytes.
pub(super) const fn check(offset: u64, width: u8, size: u64) -> Result<(), VgicError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(VgicError::BadWidth { width });
    }
    if offset & (width as u64 - 1) != 0 {
        return Err(VgicError::Misaligned { offset, width });
    }
    if offset >= size || size - offset < width as u64 {
        return Err(VgicError::OutOfRange { offset, width });
    }
    Ok(())
}

/// Looks up a checked access in `table`: `Ok(None)` is RAZ/WI.
///
/// # Errors
/// [`VgicError::UnsupportedWidth`] when the access touches a register
/// that does not allow its width, or straddles its start.
pub(super) fn find<R: Copy>(
    table: &[Entry<R>],
    offset: u64,
    width: u8,
) -> Result<Option<Hit<R>>, VgicError> {
    let end = offset + u64::from(width);
    let Some(entry) = table
        .iter()
        .find(|e| offset < e.start + e.len && end > e.start)
    else {
        return Ok(None);
    };
    if entry.widths & width == 0 || offset < entry.start || end > entry.start + entry.len {
        return Err(VgicError::UnsupportedWidth { offset, width });
    }
    Ok(Some(Hit {
        reg: entry.reg,
        rel: offset - entry.start,
    }))
}

/// The low `bits` bits set.
pub(super) const fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}
