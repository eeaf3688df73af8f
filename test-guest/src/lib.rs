//! The test guest's pure parts, host-tested: reading guest RAM's extent from
//! the device tree, the fixed-size text buffer check details are written
//! into, and the expectations on an injected abort's syndrome.
//!
//! The bare-metal image itself is `main.rs` (+ `guest.rs`, `boot.s`).
#![cfg_attr(not(test), no_std)]

pub mod fdt;

use core::fmt;

/// A line of text without a heap: what does not fit is cut off.
#[derive(Clone, Copy)]
pub struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only whole `str`s are appended (see `write_str`), but a cut may
        // split a character: keep the valid prefix.
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let take = s.len().min(N - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Why a check failed: one line of detail (small enough to return by value).
pub type Detail = Text<112>;

/// Builds a [`Detail`] with `format!` syntax.
#[macro_export]
macro_rules! detail {
    ($($arg:tt)*) => {{
        let mut d = $crate::Detail::new();
        let _ = core::fmt::Write::write_fmt(&mut d, format_args!($($arg)*));
        d
    }};
}

/// ESR_EL1 fields (Arm ARM D23.2.42 "ESR_EL1"; data aborts: ISS encoding
/// for an exception from a Data Abort).
pub mod esr {
    /// Exception class, bits [31:26].
    pub const fn ec(esr: u64) -> u64 {
        (esr >> 26) & 0x3f
    }
    /// Data abort taken without a change in exception level (from EL1).
    pub const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
    /// Unknown reason: what an undefined instruction gets.
    pub const EC_UNKNOWN: u64 = 0x00;
    /// IL, bit 25: a 32-bit instruction.
    pub const fn il32(esr: u64) -> bool {
        esr & (1 << 25) != 0
    }
    /// Data fault status code, bits [5:0].
    pub const fn dfsc(esr: u64) -> u64 {
        esr & 0x3f
    }
    /// Synchronous external abort, not on a translation table walk.
    pub const DFSC_SYNC_EXTERNAL: u64 = 0x10;
    /// WnR, bit 6: the abort was caused by a write.
    pub const fn wnr(esr: u64) -> bool {
        esr & (1 << 6) != 0
    }
}

/// What the guest's exception handler recorded for one fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
}

/// Checks that an access by the instruction at `pc` to `addr` was answered
/// with the abort the hypervisor promises: a synchronous external abort
/// (EC 0x25, DFSC 0x10) with WnR = `write`, FAR = `addr`, ELR = `pc`.
pub fn check_external_abort(
    fault: Option<Fault>,
    addr: u64,
    pc: u64,
    write: bool,
) -> Result<(), Detail> {
    let Some(f) = fault else {
        return Err(detail!("{addr:#x}: no abort, the access went through"));
    };
    if esr::ec(f.esr) != esr::EC_DATA_ABORT_SAME_EL {
        return Err(detail!(
            "{addr:#x}: ESR {:#x}: EC {:#x}, expected 0x25",
            f.esr,
            esr::ec(f.esr)
        ));
    }
    if esr::dfsc(f.esr) != esr::DFSC_SYNC_EXTERNAL {
        return Err(detail!(
            "{addr:#x}: ESR {:#x}: DFSC {:#x}, expected 0x10",
            f.esr,
            esr::dfsc(f.esr)
        ));
    }
    if esr::wnr(f.esr) != write {
        return Err(detail!(
            "{addr:#x}: ESR {:#x}: WnR {}, expected {}",
            f.esr,
            esr::wnr(f.esr) as u8,
            write as u8
        ));
    }
    if f.far != addr {
        return Err(detail!("{addr:#x}: FAR {:#x}", f.far));
    }
    if f.elr != pc {
        return Err(detail!(
            "{addr:#x}: ELR {:#x}, the access was at {pc:#x}",
            f.elr
        ));
    }
    Ok(())
}

/// Checks that the instruction at `pc` (`what`) was answered with an
/// undefined-instruction exception at EL1: EC 0x00, IL 1, ELR = `pc`.
pub fn check_undefined(fault: Option<Fault>, what: &str, pc: u64) -> Result<(), Detail> {
    let Some(f) = fault else {
        return Err(detail!("{what}: executed, no exception"));
    };
    if esr::ec(f.esr) != esr::EC_UNKNOWN || !esr::il32(f.esr) {
        return Err(detail!(
            "{what}: ESR {:#x} (EC {:#x}), expected an undefined instruction (EC 0, IL 1)",
            f.esr,
            esr::ec(f.esr)
        ));
    }
    if f.elr != pc {
        return Err(detail!(
            "{what}: ELR {:#x}, the instruction is at {pc:#x}",
            f.elr
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn text_cuts_what_does_not_fit() {
        let mut t = Text::<8>::new();
        write!(t, "abc{}", 12345678).unwrap();
        assert_eq!(t.as_str(), "abc12345");
        let mut t = Text::<4>::new();
        t.write_str("aé€").unwrap(); // 1 + 2 + 3 bytes: the euro is cut
        assert_eq!(t.as_str(), "aé");
    }

    #[test]
    fn undefined_expectations() {
        let undef = Fault {
            esr: 0x0200_0000,
            far: 0,
            elr: 0x4200_2000,
        };
        assert!(check_undefined(Some(undef), "hlt", 0x4200_2000).is_ok());
        let err = |f: Option<Fault>| check_undefined(f, "hlt", 0x4200_2000).unwrap_err();
        assert!(err(None).as_str().contains("executed"));
        assert!(
            err(Some(Fault { esr: 0x0, ..undef }))
                .as_str()
                .contains("EC 0x0")
        );
        assert!(
            err(Some(Fault {
                esr: 0x6400_0000,
                ..undef
            }))
            .as_str()
            .contains("EC 0x19")
        );
        assert!(
            err(Some(Fault { elr: 8, ..undef }))
                .as_str()
                .contains("ELR 0x8")
        );
    }

    #[test]
    fn external_abort_expectations() {
        let load = Fault {
            esr: 0x9600_0010,
            far: 0x4000_0000,
            elr: 0x4200_1000,
        };
        assert!(check_external_abort(Some(load), 0x4000_0000, 0x4200_1000, false).is_ok());
        let store = Fault {
            esr: 0x9600_0050,
            ..load
        };
        assert!(check_external_abort(Some(store), 0x4000_0000, 0x4200_1000, true).is_ok());
        let fails = |f: Option<Fault>, write| {
            check_external_abort(f, 0x4000_0000, 0x4200_1000, write).unwrap_err()
        };
        assert!(fails(None, false).as_str().contains("went through"));
        assert!(fails(Some(store), false).as_str().contains("WnR 1"));
        assert!(
            fails(
                Some(Fault {
                    esr: 0x0200_0000,
                    ..load
                }),
                false
            )
            .as_str()
            .contains("EC 0x0")
        );
        assert!(
            fails(
                Some(Fault {
                    esr: 0x9600_0007,
                    ..load
                }),
                false
            )
            .as_str()
            .contains("DFSC 0x7")
        );
        assert!(
            fails(Some(Fault { far: 0, ..load }), false)
                .as_str()
                .contains("FAR 0x0")
        );
        assert!(
            fails(Some(Fault { elr: 4, ..load }), false)
                .as_str()
                .contains("ELR 0x4")
        );
    }
}
