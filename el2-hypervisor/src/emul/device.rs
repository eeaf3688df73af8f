//! The one interface every emulated MMIO device has: it receives a decoded
//! access (offset in its window, width, direction, the value of a store)
//! and answers with the value read, the effect of a write, or a fault the
//! guest is to blame for.
//!
//! After Bao's `struct emul_access` (`src/core/inc/emul.h`): the data abort
//! is decoded once ([`crate::esr::decode_data_abort`]); the device sees
//! only what it needs. What a register transfer does with a loaded value
//! (sign extension, a W register) stays with
//! [`crate::esr::Access::load_value`]; a store's value arrives already cut
//! to the access width ([`crate::esr::Access::store_value`]).
//!
//! A device never acts on the world itself: a write that must reach
//! outside the model (the UART transmitting a byte) comes back as a
//! [`WriteEffect`] for the board to act on, so that the device stays a pure
//! function of the accesses it is given.
//!
//! Where an address goes is [`super::device_map`]'s business.

use core::fmt;

use super::mmio::MmioError;
use super::timer_mem::TimerMemError;
use crate::esr::{Access, Width};
use crate::vgic::VgicError;

/// Which way an access goes, with a store's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioOp {
    /// A load.
    Read,
    /// A store of this value, already cut to the access width.
    Write(u64),
}

/// A guest access as the machine sees it: at a guest-physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestAccess {
    pub ipa: u64,
    pub width: Width,
    pub op: MmioOp,
}

impl GuestAccess {
    /// The access a decoded data abort describes. `rt_value` is the
    /// transfer register's value (0 for register 31, XZR); only a store
    /// uses it, cut to the access width.
    pub const fn from_abort(access: &Access, rt_value: u64) -> Self {
        let op = if access.write {
            MmioOp::Write(access.store_value(rt_value))
        } else {
            MmioOp::Read
        };
        GuestAccess {
            ipa: access.ipa,
            width: access.width,
            op,
        }
    }

    /// The same access, as a device sees it: at `offset` in its window.
    pub const fn at_offset(self, offset: u64) -> DeviceAccess {
        DeviceAccess {
            offset,
            width: self.width,
            op: self.op,
        }
    }
}

/// An access as a device sees it: at an offset in its own window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAccess {
    pub offset: u64,
    pub width: Width,
    pub op: MmioOp,
}

/// What a write does beyond the device's own registers, for the board to
/// act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum WriteEffect {
    /// Nothing beyond the device's state.
    None,
    /// The device transmits this byte (the console UART's DR): the guest's
    /// output, which the board sends on (or holds, by the output rule).
    Transmit(u8),
}

/// A completed access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Completion {
    /// A load's value: the accessed bytes, zero-extended, for
    /// [`Access::load_value`]. A function of the emulated state, so the
    /// same on both boards of a pair: not an environment input.
    Read(u64),
    /// A load whose value comes from outside the board's deterministic
    /// model (a byte the console UART received): an environment input,
    /// which a pair logs.
    Outside(u64),
    /// A store, done, and what it asks of the board.
    Written(WriteEffect),
}

/// Why an access was refused. Every one is the guest's doing: the board
/// answers it with a synchronous external abort injected into the guest,
/// as a bus error on a real board would be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceFault {
    /// No emulated device answers at this address.
    Unmapped { ipa: u64 },
    /// The UART refused the access (its width or alignment).
    Uart(MmioError),
    /// The vGIC refused the access (its width, alignment, or frame).
    Gic(VgicError),
    /// The memory-mapped timer refused the access (its width, or no
    /// register there).
    Timer(TimerMemError),
}

impl From<MmioError> for DeviceFault {
    fn from(e: MmioError) -> Self {
        DeviceFault::Uart(e)
    }
}

impl From<VgicError> for DeviceFault {
    fn from(e: VgicError) -> Self {
        DeviceFault::Gic(e)
    }
}

impl fmt::Display for DeviceFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceFault::Unmapped { ipa } => write!(f, "no device at {ipa:#x}"),
            DeviceFault::Uart(e) => write!(f, "console UART: {e}"),
            DeviceFault::Gic(e) => write!(f, "vGIC: {e}"),
            DeviceFault::Timer(e) => write!(f, "memory-mapped timer: {e}"),
        }
    }
}

/// An emulated device behind a window of guest-physical addresses.
pub trait MmioDevice {
    /// A load of `width` bytes at `offset` in the window: the bytes read.
    ///
    /// # Errors
    /// [`DeviceFault`] when the device refuses the access.
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DeviceFault>;

    /// Whether a load at `offset` reads what came from outside the board's
    /// model rather than the emulated state (by default nothing does).
    fn reads_outside(&self, offset: u64) -> bool {
        let _ = offset;
        false
    }

    /// A store of `value` (already cut to `width`) at `offset`.
    ///
    /// # Errors
    /// [`DeviceFault`] when the device refuses the access; a refused
    /// store changes nothing.
    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<WriteEffect, DeviceFault>;

    /// One decoded access, either way.
    ///
    /// # Errors
    /// As [`MmioDevice::read`] and [`MmioDevice::write`].
    fn access(&mut self, a: DeviceAccess) -> Result<Completion, DeviceFault> {
        match a.op {
            MmioOp::Read if self.reads_outside(a.offset) => {
                self.read(a.offset, a.width).map(Completion::Outside)
            }
            MmioOp::Read => self.read(a.offset, a.width).map(Completion::Read),
            MmioOp::Write(v) => self.write(a.offset, a.width, v).map(Completion::Written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn abort(write: bool, width: Width, sixty_four: bool) -> Access {
        Access {
            ipa: 0x0900_0000,
            width,
            write,
            reg: 1,
            sign_extend: false,
            sixty_four,
        }
    }

    #[test]
    fn a_store_carries_its_value_cut_to_the_width() {
        let a = GuestAccess::from_abort(&abort(true, Width::Byte, false), 0x1234_5641);
        assert_eq!(a.op, MmioOp::Write(0x41));
        assert_eq!(a.ipa, 0x0900_0000);
        let a = GuestAccess::from_abort(&abort(true, Width::Double, true), u64::MAX);
        assert_eq!(a.op, MmioOp::Write(u64::MAX));
    }

    #[test]
    fn a_load_ignores_the_register() {
        let a = GuestAccess::from_abort(&abort(false, Width::Word, false), 0xdead);
        assert_eq!(a.op, MmioOp::Read);
        let d = a.at_offset(0x18);
        assert_eq!((d.offset, d.width, d.op), (0x18, Width::Word, MmioOp::Read));
    }

    #[test]
    fn faults_name_the_device() {
        let f: DeviceFault = MmioError::UnsupportedWidth(Width::Double).into();
        assert_eq!(
            f.to_string(),
            "console UART: 8-byte access to 32-bit registers"
        );
        assert_eq!(
            DeviceFault::Unmapped { ipa: 0x1000 }.to_string(),
            "no device at 0x1000"
        );
    }
}
