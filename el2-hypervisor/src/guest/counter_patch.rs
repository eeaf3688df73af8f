//! Redirecting the guest kernel's `MRS Xt, CNTVCT_EL0` to `CNTPCT_EL0`.
//!
//! On a core without FEAT_ECV (Cortex-A72) EL2 cannot trap an EL1 read of
//! CNTVCT_EL0, so it returns the board's own counter; but with
//! `CNTHCTL_EL2.EL1PCTEN` = 0 an EL1 read of CNTPCT_EL0 does trap (ESR_EL2
//! EC 0x18) and is answered with guest time, as every trapped counter read.
//! A guest given the memory-mapped timer (`emul::timer_mem`) still reads
//! CNTVCT_EL0 directly before its clocksource is registered (Linux 6.1:
//! `random_get_entropy()`, SLUB's `get_any_partial()`). Before entry the
//! hypervisor rewrites every such read in the kernel's code into a read of
//! CNTPCT_EL0: the two encodings differ only in op2 (2 and 1; Arm ARM
//! D19.12, `emul::sysreg`), and with CNTVOFF_EL2 = 0 the two counters are
//! the same value, so the kernel sees what it expects.
//!
//! Where the code is: Debian's arm64 `Image` carries an EFI stub, a PE/COFF
//! header (`MZ` at 0, the PE header's offset at 0x3c). Linux's
//! `arch/arm64/kernel/efi-header.S` gives it a `.text` section from the end
//! of the header to `__initdata_begin`, at a file offset equal to its
//! address (the Image is loaded flat). That range holds the kernel text,
//! its read-only data and the init text; the read-only data embeds the
//! vDSO images (ELF files, page aligned), which run at EL0 and are not
//! patched: every embedded ELF image is skipped ([`Patched::skipped`]).
//! Nothing outside `.text` is touched.
//!
//! The rewrite is a function of the kernel's bytes alone, so two boards
//! with the same bundle run the same patched kernel. Malformed headers give
//! a [`PatchError`], never a panic.

use core::fmt;
use core::ops::Range;

use crate::emul::sysreg::{CNTPCT_EL0, CNTVCT_EL0, SysReg};

/// The encoding of `MRS X0, reg` (Arm ARM C6.2 "MRS": `1101 0101 0011`,
/// op0 in [20:19] with L = 1 at bit 21, op1 [18:16], CRn [15:12], CRm
/// [11:8], op2 [7:5], Rt [4:0]).
pub const fn mrs(reg: SysReg) -> u32 {
    0xd500_0000
        | 1 << 21
        | (reg.op0 as u32 & 3) << 19
        | (reg.op1 as u32 & 7) << 16
        | (reg.crn as u32 & 15) << 12
        | (reg.crm as u32 & 15) << 8
        | (reg.op2 as u32 & 7) << 5
}

/// `MRS Xt, CNTVCT_EL0` with Rt = 0.
pub const MRS_CNTVCT: u32 = mrs(CNTVCT_EL0);
/// `MRS Xt, CNTPCT_EL0` with Rt = 0.
pub const MRS_CNTPCT: u32 = mrs(CNTPCT_EL0);
/// The Rt field.
const RT_MASK: u32 = 0x1f;

/// The PE machine type of an AArch64 image (`IMAGE_FILE_MACHINE_ARM64`).
const MACHINE_ARM64: u16 = 0xaa64;
/// The PE format's limit on the number of sections.
const MAX_SECTIONS: u16 = 96;
/// Offset of the PE header's offset in the MS-DOS header.
const PE_OFFSET_AT: usize = 0x3c;
/// Bytes of the PE signature and the COFF file header.
const PE_HEADERS: usize = 4 + 20;
/// Bytes of one section header.
const SECTION_HEADER: usize = 40;
/// The granule at which an embedded ELF image (the vDSO) may start.
const ELF_ALIGN: usize = 4096;

/// Why the kernel's code could not be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// No `MZ` at offset 0: not an EFI-stub Image.
    NoPeHeader,
    /// The image ends at `len`, before the end of `what`.
    Truncated { what: &'static str, len: usize },
    /// The PE header's offset does not point at `PE\0\0`.
    BadPeSignature,
    /// The PE header is not for AArch64.
    NotArm64 { machine: u16 },
    /// More sections than the PE format allows.
    TooManySections(u16),
    /// The section table has no `.text`.
    NoTextSection,
    /// `.text`'s file offset differs from its address: not a flat Image.
    TextNotFlat { offset: u32, address: u32 },
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PatchError::NoPeHeader => f.write_str("no PE/COFF header (no MZ at offset 0)"),
            PatchError::Truncated { what, len } => {
                write!(f, "the image ({len} bytes) ends inside {what}")
            }
            PatchError::BadPeSignature => f.write_str("no PE signature where 0x3c points"),
            PatchError::NotArm64 { machine } => {
                write!(
                    f,
                    "the PE header is for machine {machine:#06x}, not AArch64"
                )
            }
            PatchError::TooManySections(n) => write!(f, "{n} PE sections (at most 96)"),
            PatchError::NoTextSection => f.write_str("no .text section in the PE header"),
            PatchError::TextNotFlat { offset, address } => write!(
                f,
                ".text at file offset {offset:#x} but address {address:#x}: not a flat Image"
            ),
        }
    }
}

/// What [`patch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Patched {
    /// Reads rewritten to CNTPCT_EL0.
    pub redirected: usize,
    /// Reads left as they are inside embedded ELF images (the vDSO).
    pub skipped: usize,
}

fn u16_at(image: &[u8], at: usize, what: &'static str) -> Result<u16, PatchError> {
    let b = at
        .checked_add(2)
        .and_then(|end| image.get(at..end))
        .ok_or(PatchError::Truncated {
            what,
            len: image.len(),
        })?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(image: &[u8], at: usize, what: &'static str) -> Result<u32, PatchError> {
    let b = at
        .checked_add(4)
        .and_then(|end| image.get(at..end))
        .ok_or(PatchError::Truncated {
            what,
            len: image.len(),
        })?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The file range of the PE `.text` section, word aligned.
pub fn text_range(image: &[u8]) -> Result<Range<usize>, PatchError> {
    if image.get(..2) != Some(b"MZ") {
        return Err(PatchError::NoPeHeader);
    }
    let pe = u32_at(image, PE_OFFSET_AT, "the MS-DOS header")? as usize;
    if u32_at(image, pe, "the PE signature")? != u32::from_le_bytes(*b"PE\0\0") {
        return Err(PatchError::BadPeSignature);
    }
    let coff = pe + 4;
    let machine = u16_at(image, coff, "the COFF header")?;
    if machine != MACHINE_ARM64 {
        return Err(PatchError::NotArm64 { machine });
    }
    let sections = u16_at(image, coff + 2, "the COFF header")?;
    if sections > MAX_SECTIONS {
        return Err(PatchError::TooManySections(sections));
    }
    let optional = u16_at(image, coff + 16, "the COFF header")? as usize;
    let table = pe + PE_HEADERS + optional;
    for i in 0..sections as usize {
        let at = table + i * SECTION_HEADER;
        let name = image.get(at..at + 8).ok_or(PatchError::Truncated {
            what: "the section table",
            len: image.len(),
        })?;
        if name != b".text\0\0\0" {
            continue;
        }
        let address = u32_at(image, at + 12, "the section table")?;
        let size = u32_at(image, at + 16, "the section table")?;
        let offset = u32_at(image, at + 20, "the section table")?;
        if offset != address {
            return Err(PatchError::TextNotFlat { offset, address });
        }
        let start = offset as usize;
        let end = start + size as usize;
        if end > image.len() {
            return Err(PatchError::Truncated {
                what: "the .text section",
                len: image.len(),
            });
        }
        // Instructions are word aligned in the image.
        return Ok(start.next_multiple_of(4)..end & !3);
    }
    Err(PatchError::NoTextSection)
}

/// The extent of an ELF image starting at `at` (its section header table's
/// end, where `ld` puts it), or `None` if there is none there. A header
/// whose table lies past `limit` counts as reaching `limit`.
fn embedded_elf(image: &[u8], at: usize, limit: usize) -> Option<usize> {
    let ident = image.get(at..at.checked_add(16)?)?;
    if ident[..4] != *b"\x7fELF" || ident[5] != 1 {
        return None;
    }
    let field = |off: usize, len: usize| -> Option<u64> {
        let b = image.get(at + off..at + off + len)?;
        let mut v = [0u8; 8];
        v[..len].copy_from_slice(b);
        Some(u64::from_le_bytes(v))
    };
    let (shoff, shentsize, shnum) = match ident[4] {
        1 => (field(0x20, 4)?, field(0x2e, 2)?, field(0x30, 2)?),
        2 => (field(0x28, 8)?, field(0x3a, 2)?, field(0x3c, 2)?),
        _ => return None,
    };
    let end = shentsize
        .checked_mul(shnum)
        .and_then(|t| t.checked_add(shoff))
        .and_then(|t| usize::try_from(t).ok())
        .and_then(|t| t.checked_add(at))
        .unwrap_or(limit);
    Some(end.clamp(at + 16, limit))
}

/// Rewrites every `MRS Xt, CNTVCT_EL0` in the PE `.text` of `image` (outside
/// embedded ELF images) into `MRS Xt, CNTPCT_EL0`.
pub fn patch(image: &mut [u8]) -> Result<Patched, PatchError> {
    let text = text_range(image)?;
    let mut done = Patched::default();
    let mut skip_until = text.start;
    let mut at = text.start;
    while at < text.end {
        if at.is_multiple_of(ELF_ALIGN)
            && at >= skip_until
            && let Some(end) = embedded_elf(image, at, text.end)
        {
            skip_until = end;
        }
        let word = &mut image[at..at + 4];
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        if w & !RT_MASK == MRS_CNTVCT {
            if at < skip_until {
                done.skipped += 1;
            } else {
                word.copy_from_slice(&(MRS_CNTPCT | (w & RT_MASK)).to_le_bytes());
                done.redirected += 1;
            }
        }
        at += 4;
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
