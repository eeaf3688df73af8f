//! Checks shared by the emulated MMIO devices, and what they answer when an
//! access cannot be performed.
//!
//! Every emulated device here has 32-bit registers in one 4 KiB page. The
//! guest is to blame for an access it cannot make; the arch layer answers it
//! with a synchronous external abort injected into the guest, never a
//! hypervisor failure.

use core::fmt;

use crate::esr::Width;

/// Size of a device's register window.
pub const PAGE_SIZE: u64 = 0x1000;

/// Why a device access was refused: the guest's fault, answered with an
/// abort injected into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MmioError {
    /// Wider than the device's registers (an 8-byte access to 32-bit registers).
    UnsupportedWidth(Width),
    /// Not aligned to its own width. Device memory already faults such an
    /// access at stage 1, so only a guest with a broken mapping gets here.
    Misaligned { offset: u64, width: Width },
    /// Beyond the device's page: the caller routed the access to the wrong device.
    OutsideDevice { offset: u64 },
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmioError::UnsupportedWidth(w) => {
                write!(f, "{}-byte access to 32-bit registers", w as u8)
            }
            MmioError::Misaligned { offset, width } => {
                write!(
                    f,
                    "{}-byte access at unaligned offset {offset:#x}",
                    width as u8
                )
            }
            MmioError::OutsideDevice { offset } => {
                write!(f, "offset {offset:#x} outside the device page")
            }
        }
    }
}

/// Where a checked access lands: the 32-bit register and the byte lane
/// within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WordAccess {
    /// Offset of the 32-bit register (a multiple of 4).
    pub register: u64,
    /// Byte position of the access within the register (0 to 3).
    pub lane: u32,
    pub width: Width,
}

impl WordAccess {
    /// True when the access starts at the register's first byte.
    pub const fn is_first_lane(&self) -> bool {
        self.lane == 0
    }

    /// The part of a register value the access reads.
    pub const fn extract(&self, register_value: u32) -> u64 {
        let v = (register_value >> (self.lane * 8)) as u64;
        match self.width {
            Width::Byte => v & 0xff,
            Width::Half => v & 0xffff,
            Width::Word | Width::Double => v,
        }
    }
}

/// Checks an access of `width` at `offset` in a page of 32-bit registers.
///
/// # Errors
/// [`MmioError`] for an 8-byte access, an unaligned one, or one past the page.
pub const fn check_word_access(offset: u64, width: Width) -> Result<WordAccess, MmioError> {
    if offset >= PAGE_SIZE {
        return Err(MmioError::OutsideDevice { offset });
    }
    if matches!(width, Width::Double) {
        return Err(MmioError::UnsupportedWidth(width));
    }
    if offset & (width as u64 - 1) != 0 {
        return Err(MmioError::Misaligned { offset, width });
    }
    Ok(WordAccess {
        register: offset & !3,
        lane: (offset & 3) as u32,
        width,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn word_half_and_byte_accesses_are_accepted() {
        let a = check_word_access(0x18, Width::Word).unwrap();
        assert_eq!((a.register, a.lane), (0x18, 0));
        let b = check_word_access(0x19, Width::Byte).unwrap();
        assert_eq!((b.register, b.lane), (0x18, 1));
        assert!(!b.is_first_lane());
        assert_eq!(b.extract(0x1234_5678), 0x56);
        let h = check_word_access(0x1a, Width::Half).unwrap();
        assert_eq!(h.extract(0x1234_5678), 0x1234);
    }

    #[test]
    fn bad_accesses_are_typed_errors() {
        assert_eq!(
            check_word_access(0, Width::Double),
            Err(MmioError::UnsupportedWidth(Width::Double))
        );
        assert_eq!(
            check_word_access(0x2, Width::Word),
            Err(MmioError::Misaligned {
                offset: 2,
                width: Width::Word
            })
        );
        assert_eq!(
            check_word_access(0x1000, Width::Byte),
            Err(MmioError::OutsideDevice { offset: 0x1000 })
        );
        assert_eq!(
            MmioError::UnsupportedWidth(Width::Double).to_string(),
            "8-byte access to 32-bit registers"
        );
    }
}
