//! Exception syndromes (ESR_ELx) decoded into plain values.
//!
//! Arm ARM D23.2.41 "ESR_EL2": EC is bits [31:26], IL bit 25, ISS bits
//! [24:0]. This module names the classes the hypervisor meets and decodes
//! the data-abort ISS (D23.2.41, "ISS encoding for an exception from a Data
//! Abort") once, into an [`Access`], for device emulation.

use core::fmt;

/// Exception class (ESR_ELx.EC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    Unknown,
    WfxTrap,
    SimdFpTrap,
    IllegalState,
    Svc64,
    Hvc64,
    Smc64,
    SysRegTrap,
    SveTrap,
    InstrAbortLowerEl,
    InstrAbortSameEl,
    PcAlignment,
    DataAbortLowerEl,
    DataAbortSameEl,
    SpAlignment,
    SError,
    BreakpointLowerEl,
    SoftwareStepLowerEl,
    WatchpointLowerEl,
    Brk64,
    Other(u8),
}

impl ExceptionClass {
    pub const fn from_esr(esr: u64) -> Self {
        match ((esr >> 26) & 0x3f) as u8 {
            0x00 => Self::Unknown,
            0x01 => Self::WfxTrap,
            0x07 => Self::SimdFpTrap,
            0x0e => Self::IllegalState,
            0x15 => Self::Svc64,
            0x16 => Self::Hvc64,
            0x17 => Self::Smc64,
            0x18 => Self::SysRegTrap,
            0x19 => Self::SveTrap,
            0x20 => Self::InstrAbortLowerEl,
            0x21 => Self::InstrAbortSameEl,
            0x22 => Self::PcAlignment,
            0x24 => Self::DataAbortLowerEl,
            0x25 => Self::DataAbortSameEl,
            0x26 => Self::SpAlignment,
            0x2f => Self::SError,
            0x30 => Self::BreakpointLowerEl,
            0x32 => Self::SoftwareStepLowerEl,
            0x34 => Self::WatchpointLowerEl,
            0x3c => Self::Brk64,
            other => Self::Other(other),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown reason (undefined instruction)",
            Self::WfxTrap => "WFI/WFE trapped",
            Self::SimdFpTrap => "SIMD/FP access trapped",
            Self::IllegalState => "illegal execution state",
            Self::Svc64 => "SVC (AArch64)",
            Self::Hvc64 => "HVC (AArch64)",
            Self::Smc64 => "SMC (AArch64)",
            Self::SysRegTrap => "MSR/MRS/system instruction trapped",
            Self::SveTrap => "SVE access trapped",
            Self::InstrAbortLowerEl => "instruction abort from a lower EL",
            Self::InstrAbortSameEl => "instruction abort at EL2",
            Self::PcAlignment => "PC alignment fault",
            Self::DataAbortLowerEl => "data abort from a lower EL",
            Self::DataAbortSameEl => "data abort at EL2",
            Self::SpAlignment => "SP alignment fault",
            Self::SError => "SError",
            Self::BreakpointLowerEl => "breakpoint from a lower EL",
            Self::SoftwareStepLowerEl => "software step from a lower EL",
            Self::WatchpointLowerEl => "watchpoint from a lower EL",
            Self::Brk64 => "BRK instruction",
            Self::Other(_) => "other",
        }
    }
}

/// The raw EC field.
pub const fn ec_bits(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The ISS field.
pub const fn iss(esr: u64) -> u32 {
    (esr & 0x1ff_ffff) as u32
}

/// True when the trapped instruction was 32 bits long (ESR.IL).
pub const fn il32(esr: u64) -> bool {
    esr & (1 << 25) != 0
}

/// Width of a data access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    Byte = 1,
    Half = 2,
    Word = 4,
    Double = 8,
}

/// A guest data access to an address it has no mapping for, as decoded
/// from a data abort's syndrome: what device emulation receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Intermediate physical address (HPFAR_EL2.FIPA with FAR_EL2's page offset).
    pub ipa: u64,
    pub width: Width,
    pub write: bool,
    /// Transfer register number (31 means XZR for a write).
    pub reg: u8,
    /// Sign-extend a loaded value (ISS.SSE).
    pub sign_extend: bool,
    /// The destination is a 64-bit X register (ISS.SF).
    pub sixty_four: bool,
}

/// Why a data abort cannot be emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// ISS.ISV = 0: the syndrome does not describe the instruction (load/store
    /// pair, writeback, SIMD): not emulated, the guest gets an abort.
    NoSyndrome,
    /// Not a translation/access-flag/permission fault at stage 2 (DFSC).
    NotAStage2Fault(u8),
}

/// Decodes a data abort from a lower EL (EC 0x24).
///
/// `hpfar` is HPFAR_EL2 (FIPA in bits [47:4] holds IPA[51:12]), `far` is
/// FAR_EL2, whose bits [11:0] give the offset in the page.
///
/// # Errors
/// [`AccessError`] when the access cannot be emulated from the syndrome.
pub fn decode_data_abort(esr: u64, hpfar: u64, far: u64) -> Result<Access, AccessError> {
    let iss = iss(esr);
    let dfsc = (iss & 0x3f) as u8;
    // DFSC 0b0001xx translation fault, 0b0010xx access flag, 0b0011xx permission.
    if !(0x04..=0x0f).contains(&dfsc) {
        return Err(AccessError::NotAStage2Fault(dfsc));
    }
    if iss & (1 << 24) == 0 {
        return Err(AccessError::NoSyndrome);
    }
    let width = match (iss >> 22) & 0x3 {
        0 => Width::Byte,
        1 => Width::Half,
        2 => Width::Word,
        _ => Width::Double,
    };
    let ipa = ((hpfar >> 4) & 0xff_ffff_ffff) << 12 | (far & 0xfff);
    Ok(Access {
        ipa,
        width,
        write: iss & (1 << 6) != 0,
        reg: ((iss >> 16) & 0x1f) as u8,
        sign_extend: iss & (1 << 21) != 0,
        sixty_four: iss & (1 << 15) != 0,
    })
}

/// The IPA (its page) of a stage-2 *translation* fault: a data or
/// instruction abort from a lower EL whose status code is a translation
/// fault at any level (DFSC/IFSC 0b0001xx), the guest's stage-1 table
/// walks included (S1PTW: HPFAR holds the table's IPA). `None` for any
/// other exception or fault. `hpfar` reads HPFAR_EL2, only for such a
/// fault (every trap asks: the register read stays off the others).
pub fn stage2_translation_fault(esr: u64, hpfar: impl FnOnce() -> u64) -> Option<u64> {
    let ec = ec_bits(esr);
    let fsc = iss(esr) & 0x3f;
    if (ec == 0x24 || ec == 0x20) && fsc & 0x3c == 0x04 {
        Some(((hpfar() >> 4) & 0xff_ffff_ffff) << 12)
    } else {
        None
    }
}

impl Access {
    /// Turns a value read from a device into what the guest register gets:
    /// truncated to the access width, sign-extended if asked, and cut to 32
    /// bits for a W register.
    pub const fn load_value(&self, raw: u64) -> u64 {
        let bits = (self.width as u32) * 8;
        let mut v = if bits == 64 {
            raw
        } else {
            raw & ((1u64 << bits) - 1)
        };
        if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            v = (((v << shift) as i64) >> shift) as u64;
        }
        if !self.sixty_four {
            v &= 0xffff_ffff;
        }
        v
    }

    /// The value a store writes, truncated to the access width.
    pub const fn store_value(&self, reg_value: u64) -> u64 {
        let bits = (self.width as u32) * 8;
        if bits == 64 {
            reg_value
        } else {
            reg_value & ((1u64 << bits) - 1)
        }
    }
}

/// A full exception report, as printed when the hypervisor itself faults.
pub struct Report {
    pub esr: u64,
    pub elr: u64,
    pub far: u64,
    pub spsr: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ec = ExceptionClass::from_esr(self.esr);
        writeln!(
            f,
            "ESR_EL2  {:#018x}  EC {:#04x}: {}, IL={}, ISS {:#09x}",
            self.esr,
            ec_bits(self.esr),
            ec.name(),
            il32(self.esr) as u8,
            iss(self.esr)
        )?;
        writeln!(f, "ELR_EL2  {:#018x}", self.elr)?;
        writeln!(f, "FAR_EL2  {:#018x}", self.far)?;
        write!(
            f,
            "SPSR_EL2 {:#018x}  M={:#x} (EL{}{}) DAIF={:04b}",
            self.spsr,
            self.spsr & 0xf,
            (self.spsr >> 2) & 3,
            if self.spsr & 1 == 1 { "h" } else { "t" },
            (self.spsr >> 6) & 0xf
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn esr(ec: u64, iss: u64) -> u64 {
        (ec << 26) | (1 << 25) | iss
    }

    #[test]
    fn stage2_translation_faults_give_their_ipa_page() {
        let hpfar = 0x4321_5000 >> 8; // FIPA = IPA[47:12] in bits [43:4]
        for level in 0..4 {
            // A data abort without a syndrome (ISV = 0: LDP, DC ZVA), a
            // load with one, an instruction fetch, a stage-1 walk (S1PTW).
            for (ec, extra) in [(0x24, 0), (0x24, 1 << 24), (0x20, 0), (0x24, 1 << 7)] {
                assert_eq!(
                    stage2_translation_fault(esr(ec, extra | 0x04 | level), || hpfar),
                    Some(0x4321_5000),
                    "EC {ec:#x} level {level}"
                );
            }
        }
        // Access flag, permission, external abort: not translation faults.
        for fsc in [0x08, 0x0b, 0x0f, 0x10, 0x00, 0x21] {
            assert_eq!(stage2_translation_fault(esr(0x24, fsc), || hpfar), None);
        }
        // Other classes (same-EL aborts, an SMC) with a translation FSC.
        for ec in [0x25, 0x21, 0x17, 0x18] {
            assert_eq!(stage2_translation_fault(esr(ec, 0x07), || hpfar), None);
        }
    }

    #[test]
    fn classes() {
        assert_eq!(
            ExceptionClass::from_esr(esr(0x16, 0)),
            ExceptionClass::Hvc64
        );
        assert_eq!(
            ExceptionClass::from_esr(esr(0x18, 0)),
            ExceptionClass::SysRegTrap
        );
        assert_eq!(
            ExceptionClass::from_esr(esr(0x11, 0)),
            ExceptionClass::Other(0x11)
        );
        assert_eq!(
            ExceptionClass::from_esr(0x0200_0000),
            ExceptionClass::Unknown
        );
    }

    #[test]
    fn decodes_a_word_store_from_w3() {
        // ISV, SAS=2 (word), SRT=3, WnR, DFSC=0x07 (translation fault level 3).
        let iss = (1 << 24) | (2 << 22) | (3 << 16) | (1 << 6) | 0x07;
        let a = decode_data_abort(esr(0x24, iss), 0x0090_0000 >> 8 << 4, 0x0900_0018).unwrap();
        assert_eq!(a.ipa, 0x0900_0018);
        assert_eq!(a.width, Width::Word);
        assert!(a.write && !a.sixty_four);
        assert_eq!(a.reg, 3);
        assert_eq!(a.store_value(0x1234_5678_9abc_def0), 0x9abc_def0);
    }

    #[test]
    fn sign_extends_a_byte_load_into_x() {
        let iss = (1 << 24) | (1 << 21) | (5 << 16) | (1 << 15) | 0x06;
        let a = decode_data_abort(esr(0x24, iss), 0, 0x10).unwrap();
        assert_eq!(a.width, Width::Byte);
        assert_eq!(a.load_value(0x80), 0xffff_ffff_ffff_ff80);
        let w = Access {
            sixty_four: false,
            ..a
        };
        assert_eq!(w.load_value(0x80), 0xffff_ff80);
    }

    #[test]
    fn no_syndrome_and_external_aborts_are_refused() {
        assert_eq!(
            decode_data_abort(esr(0x24, 0x07), 0, 0),
            Err(AccessError::NoSyndrome)
        );
        assert_eq!(
            decode_data_abort(esr(0x24, (1 << 24) | 0x10), 0, 0),
            Err(AccessError::NotAStage2Fault(0x10))
        );
    }

    #[test]
    fn report_names_the_class() {
        let r = Report {
            esr: 0x0200_0000,
            elr: 0x4020_1000,
            far: 0,
            spsr: 0x3c9,
        };
        let s = r.to_string();
        assert!(s.contains("EC 0x00: unknown reason"), "{s}");
        assert!(s.contains("ELR_EL2  0x0000000040201000"), "{s}");
        assert!(s.contains("(EL2h) DAIF=1111"), "{s}");
    }
}
