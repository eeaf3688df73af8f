//! The guest bundle: one file holding the guest kernel, its initramfs and
//! its command line.
//!
//! The board's boot loader loads the bundle as its initrd (QEMU
//! `-initrd bundle.bin`, Raspberry Pi `initramfs bundle.bin followkernel`);
//! the hypervisor finds it through `/chosen/linux,initrd-start..end` in the
//! board's device tree. The host tool (`xtask`) writes bundles with
//! [`encode`]; the hypervisor reads them with [`parse`].
//!
//! The bundle comes from outside the hypervisor and is untrusted: [`parse`]
//! checks every offset and length with checked arithmetic and returns a
//! [`BundleError`], never panics.
//!
//! # Layout (version 2, all integers little endian)
//!
//! ```text
//! offset  size  field
//!      0     8  magic            b"TANDEMG1"
//!      8     4  version          2
//!     12     4  header_size      96 (bytes covered by header_check)
//!     16     8  total_size       bytes of the bundle (the file may be longer)
//!     24     8  kernel_offset    \
//!     32     8  kernel_len        |
//!     40     8  initramfs_offset  |  each offset a multiple of 4 KiB,
//!     48     8  initramfs_len     |  each part inside [header_size, total_size)
//!     56     8  cmdline_offset    |  and the parts disjoint
//!     64     8  cmdline_len      /
//!     72     8  image_hash       see [`image_hash`]
//!     80     8  reserved         0
//!     88     8  header_check     FNV-1a 64 of bytes [0, header_size) with
//!                                this field read as zero
//!  2 MiB        kernel (an uncompressed arm64 `Image`), then the initramfs,
//!               then the command line (UTF-8, no NUL, no terminator), each
//!               starting on a 4 KiB boundary, zero padding between them
//! ```
//!
//! [`encode`] puts the kernel 2 MiB into the file ([`KERNEL_OFFSET`]): a
//! boot loader that loads the bundle on a 2 MiB boundary (QEMU's virt puts
//! the initrd at RAM + 128 MiB) then puts the kernel where it may run in
//! place, and the hypervisor does not copy it (`guest::layout`). [`parse`]
//! takes any 4 KiB-aligned offsets.
//!
//! Version 1 had the kernel at 4 KiB and a byte-wise image hash; it is
//! refused by name (rebuild the bundle).
//!
//! The image hash identifies the guest (the pairing handshake refuses two
//! boards whose guests differ). It is stored at encode time; [`parse`] does
//! not recompute it, because hashing tens of MiB under QEMU TCG takes time:
//! [`Bundle::verify`] does, when the caller wants it.

use alloc::vec::Vec;
use core::fmt;

use crate::replica::digest::{
    FNV1A64_OFFSET, fnv1a64, fnv1a64_continue, fnv1a64_word, fnv1a64_words_continue,
};

/// The bundle's first eight bytes.
pub const MAGIC: [u8; 8] = *b"TANDEMG1";
/// The format version this module writes and reads.
pub const VERSION: u32 = 2;
/// Where [`encode`] puts the kernel in the file: the arm64 boot protocol's
/// 2 MiB alignment, so that the kernel can run where it was loaded.
pub const KERNEL_OFFSET: u64 = 2 << 20;
/// Bytes of the version-1 header.
pub const HEADER_SIZE: usize = 96;
/// Alignment of every part within the file.
pub const PART_ALIGN: u64 = 4096;

/// Offsets of the header fields.
mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_SIZE: usize = 12;
    pub const TOTAL_SIZE: usize = 16;
    /// Offset of part `i`'s (offset, len) pair: `PARTS + 16 * i`.
    pub const PARTS: usize = 24;
    pub const IMAGE_HASH: usize = 72;
    pub const HEADER_CHECK: usize = 88;
}

/// The arm64 `Image` header (Linux `Documentation/arch/arm64/booting.rst`).
mod image {
    pub const TEXT_OFFSET: usize = 8;
    pub const IMAGE_SIZE: usize = 16;
    pub const FLAGS: usize = 24;
    pub const MAGIC: usize = 56;
    pub const MAGIC_VALUE: [u8; 4] = *b"ARM\x64";
    pub const HEADER_LEN: usize = 64;
    /// `flags` bit 0: the kernel is big endian.
    pub const FLAG_BIG_ENDIAN: u64 = 1;
    /// `flags` bit 3, physical placement: 1 = the 2 MiB-aligned base may
    /// be anywhere in RAM; 0 = as close to the base of RAM as possible.
    pub const FLAG_PLACE_ANYWHERE: u64 = 1 << 3;
}

/// One of the three parts of a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Kernel,
    Initramfs,
    Cmdline,
}

impl Part {
    const ALL: [Part; 3] = [Part::Kernel, Part::Initramfs, Part::Cmdline];

    const fn name(self) -> &'static str {
        match self {
            Part::Kernel => "kernel",
            Part::Initramfs => "initramfs",
            Part::Cmdline => "command line",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a guest bundle was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleError {
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// A version this build does not read.
    UnsupportedVersion(u32),
    /// `header_size` is smaller than the header or larger than one page.
    BadHeaderSize(u32),
    /// The header's checksum does not match: the header is damaged.
    HeaderChecksum,
    /// The file ends at byte `offset`, before the end of `what`.
    Truncated { what: &'static str, offset: u64 },
    /// A part reaches outside the bundle or into its header.
    PartOutOfBounds { part: Part },
    /// A part does not start on a 4 KiB boundary.
    PartMisaligned { part: Part },
    /// Two parts share bytes.
    PartsOverlap { first: Part, second: Part },
    /// No `ARM\x64` magic at offset 56 of the kernel.
    KernelNotArm64Image,
    /// The kernel is gzip-compressed (a `vmlinuz`); the bundle needs the
    /// uncompressed `Image`.
    KernelCompressed,
    /// The kernel's header says it is big endian.
    KernelBigEndian,
    /// The kernel's `image_size` is zero (a pre-3.17 kernel) or smaller
    /// than the file itself.
    KernelImageSize { image_size: u64, file_len: u64 },
    /// The command line is not UTF-8.
    CmdlineNotUtf8,
    /// The command line contains a NUL byte.
    CmdlineHasNul,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("guest bundle: ")?;
        match *self {
            BundleError::BadMagic => {
                f.write_str("not a guest bundle (the file does not start with \"TANDEMG1\")")
            }
            BundleError::UnsupportedVersion(v) if v < VERSION => write!(
                f,
                "format version {v} is an older bundle format (this build reads {VERSION}); \
                 rebuild the bundle with this build's xtask"
            ),
            BundleError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "format version {v} is not supported (this build reads {VERSION})"
                )
            }
            BundleError::BadHeaderSize(s) => write!(
                f,
                "header size {s} is invalid (must be {HEADER_SIZE}..={PART_ALIGN})"
            ),
            BundleError::HeaderChecksum => {
                f.write_str("header checksum mismatch (the header is damaged)")
            }
            BundleError::Truncated { what, offset } => {
                write!(
                    f,
                    "truncated: the file ends at byte {offset}, inside the {what}"
                )
            }
            BundleError::PartOutOfBounds { part } => {
                write!(f, "the {part} lies outside the bundle or inside its header")
            }
            BundleError::PartMisaligned { part } => {
                write!(f, "the {part} does not start on a 4 KiB boundary")
            }
            BundleError::PartsOverlap { first, second } => {
                write!(f, "the {first} and the {second} overlap")
            }
            BundleError::KernelNotArm64Image => {
                f.write_str("kernel is not an arm64 Image (no ARM\\x64 magic at offset 56)")
            }
            BundleError::KernelCompressed => f.write_str(
                "kernel is gzip-compressed; put the uncompressed arm64 Image in the bundle",
            ),
            BundleError::KernelBigEndian => {
                f.write_str("kernel is a big-endian Image; the guest must be little endian")
            }
            BundleError::KernelImageSize {
                image_size,
                file_len,
            } => write!(
                f,
                "kernel header image_size {image_size:#x} is unusable \
                 (zero, or smaller than the {file_len:#x}-byte Image)"
            ),
            BundleError::CmdlineNotUtf8 => f.write_str("command line is not valid UTF-8"),
            BundleError::CmdlineHasNul => f.write_str("command line contains a NUL byte"),
        }
    }
}

/// A parsed bundle: views into the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bundle<'a> {
    /// The uncompressed arm64 `Image`.
    pub kernel: &'a [u8],
    /// The initramfs (a cpio archive, possibly compressed); empty when the
    /// bundle has none.
    pub initramfs: &'a [u8],
    /// The guest kernel command line.
    pub cmdline: &'a str,
    /// The identity of the guest image as stored in the header (see
    /// [`image_hash`]); not recomputed by [`parse`], see [`Bundle::verify`].
    pub image_hash: u64,
    /// From the `Image` header: where the kernel expects to be placed above
    /// a 2 MiB-aligned base.
    pub kernel_text_offset: u64,
    /// From the `Image` header: bytes the kernel occupies once loaded,
    /// BSS included. This much must be reserved in guest RAM.
    pub kernel_image_size: u64,
    /// From the `Image` header (`flags` bit 3): the kernel may run at any
    /// 2 MiB-aligned base, so it may run where the boot loader put it;
    /// otherwise it wants the base of RAM (the in-repo test guest, which
    /// is not position-independent).
    pub kernel_placed_anywhere: bool,
}

impl Bundle<'_> {
    /// Recomputes the image hash over the three parts and compares it with
    /// the one in the header. Costs one pass over the whole bundle.
    pub fn verify(&self) -> bool {
        image_hash(self.kernel, self.initramfs, self.cmdline) == self.image_hash
    }
}

/// The identity of a guest image: word-wise FNV-1a 64
/// ([`fnv1a64_words_continue`]) over, in order, the kernel's length, the
/// kernel, the initramfs' length, the initramfs, the command line's length
/// and the command line. The lengths make the boundaries (and a part's
/// zero padding to a word) count; the header layout does not enter the
/// hash. Not a cryptographic hash: it tells accidental differences apart.
/// Word-wise because the hypervisor recomputes it over tens of MiB under
/// QEMU TCG before the guest starts (byte-wise it took 0.3 s of the boot).
pub fn image_hash(kernel: &[u8], initramfs: &[u8], cmdline: &str) -> u64 {
    let mut h = FNV1A64_OFFSET;
    for part in [kernel, initramfs, cmdline.as_bytes()] {
        h = fnv1a64_word(h, part.len() as u64);
        h = fnv1a64_words_continue(h, part);
    }
    h
}

/// FNV-1a 64 over a header with its `header_check` field read as zero.
fn header_check(header: &[u8]) -> u64 {
    let (before, rest) = header.split_at(field::HEADER_CHECK.min(header.len()));
    let after = rest.get(8..).unwrap_or(&[]);
    let h = fnv1a64(before);
    let h = fnv1a64_continue(h, &[0; 8]);
    fnv1a64_continue(h, after)
}

/// Writes a version-2 bundle, its kernel at [`KERNEL_OFFSET`].
///
/// Nothing is validated: a kernel that is not an arm64 `Image` or a command
/// line with a NUL byte gives a bundle that [`parse`] refuses. Callers that
/// want a user-facing error run [`parse`] on the result.
pub fn encode(kernel: &[u8], initramfs: &[u8], cmdline: &str) -> Vec<u8> {
    encode_with_kernel_at(KERNEL_OFFSET, kernel, initramfs, cmdline)
}

/// [`encode`] with the kernel at the first multiple of `kernel_align`
/// (itself a multiple of [`PART_ALIGN`]) past the header: the tests'
/// small bundles.
fn encode_with_kernel_at(
    kernel_align: u64,
    kernel: &[u8],
    initramfs: &[u8],
    cmdline: &str,
) -> Vec<u8> {
    let parts = [kernel, initramfs, cmdline.as_bytes()];
    let mut out = Vec::with_capacity(
        parts
            .iter()
            .fold(HEADER_SIZE, |n, p| n.saturating_add(p.len()))
            .saturating_add(kernel_align as usize + 2 * PART_ALIGN as usize),
    );
    out.resize(HEADER_SIZE, 0);
    let mut table = [(0u64, 0u64); 3];
    for (i, (slot, part)) in table.iter_mut().zip(parts).enumerate() {
        let align = if i == 0 { kernel_align } else { PART_ALIGN };
        let aligned = (out.len() as u64).next_multiple_of(align);
        out.resize(aligned as usize, 0);
        *slot = (aligned, part.len() as u64);
        out.extend_from_slice(part);
    }
    let total = out.len() as u64;

    let mut header = [0u8; HEADER_SIZE];
    put(&mut header, field::MAGIC, &MAGIC);
    put(&mut header, field::VERSION, &VERSION.to_le_bytes());
    put(
        &mut header,
        field::HEADER_SIZE,
        &(HEADER_SIZE as u32).to_le_bytes(),
    );
    put(&mut header, field::TOTAL_SIZE, &total.to_le_bytes());
    for (i, (offset, len)) in table.iter().enumerate() {
        put(&mut header, field::PARTS + 16 * i, &offset.to_le_bytes());
        put(&mut header, field::PARTS + 16 * i + 8, &len.to_le_bytes());
    }
    let hash = image_hash(kernel, initramfs, cmdline);
    put(&mut header, field::IMAGE_HASH, &hash.to_le_bytes());
    let check = header_check(&header);
    put(&mut header, field::HEADER_CHECK, &check.to_le_bytes());
    put(&mut out, 0, &header);
    out
}

/// Writes `bytes` at `at` (encoder only: positions are ours, not input).
fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at.saturating_add(bytes.len())) {
        dst.copy_from_slice(bytes);
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Reads a header field that [`parse`] already proved present; a missing
/// one is reported as truncation, never a panic.
fn header_u64(header: &[u8], at: usize) -> Result<u64, BundleError> {
    read_u64(header, at).ok_or(BundleError::Truncated {
        what: "header",
        offset: header.len() as u64,
    })
}

/// Parses a guest bundle.
///
/// Checks the magic, version, header checksum, that every part lies inside
/// the bundle on a 4 KiB boundary without overlapping another, that the
/// kernel is a little-endian arm64 `Image` and that the command line is
/// UTF-8 without NUL. The image hash is read, not recomputed
/// ([`Bundle::verify`]).
///
/// # Errors
/// A [`BundleError`] naming the first check that failed.
pub fn parse(bytes: &[u8]) -> Result<Bundle<'_>, BundleError> {
    let file_len = bytes.len() as u64;
    let truncated = |what| BundleError::Truncated {
        what,
        offset: file_len,
    };
    let magic = bytes.get(..MAGIC.len()).ok_or(truncated("header"))?;
    if magic != MAGIC {
        return Err(BundleError::BadMagic);
    }
    let version = read_u32(bytes, field::VERSION).ok_or(truncated("header"))?;
    if version != VERSION {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let header_size = read_u32(bytes, field::HEADER_SIZE).ok_or(truncated("header"))?;
    if (header_size as usize) < HEADER_SIZE || u64::from(header_size) > PART_ALIGN {
        return Err(BundleError::BadHeaderSize(header_size));
    }
    let header = bytes
        .get(..header_size as usize)
        .ok_or(truncated("header"))?;
    if header_u64(header, field::HEADER_CHECK)? != header_check(header) {
        return Err(BundleError::HeaderChecksum);
    }
    let total = header_u64(header, field::TOTAL_SIZE)?;
    let bundle = usize::try_from(total)
        .ok()
        .and_then(|t| bytes.get(..t))
        .ok_or(truncated("bundle (header total_size)"))?;

    let mut spans = Part::ALL.map(|part| (part, 0u64, 0u64));
    for (i, span) in spans.iter_mut().enumerate() {
        let part = span.0;
        let offset = header_u64(header, field::PARTS + 16 * i)?;
        let len = header_u64(header, field::PARTS + 16 * i + 8)?;
        let end = offset
            .checked_add(len)
            .ok_or(BundleError::PartOutOfBounds { part })?;
        if offset < u64::from(header_size) || end > total {
            return Err(BundleError::PartOutOfBounds { part });
        }
        if offset % PART_ALIGN != 0 {
            return Err(BundleError::PartMisaligned { part });
        }
        *span = (part, offset, end);
    }
    check_disjoint(&spans)?;
    let [kernel, initramfs, cmdline] = spans.map(|(_, start, end)| slice(bundle, start, end));
    let (kernel, initramfs, cmdline) = (kernel?, initramfs?, cmdline?);

    let (kernel_text_offset, kernel_image_size, kernel_placed_anywhere) = check_kernel(kernel)?;
    let cmdline = core::str::from_utf8(cmdline).map_err(|_| BundleError::CmdlineNotUtf8)?;
    if cmdline.contains('\0') {
        return Err(BundleError::CmdlineHasNul);
    }
    Ok(Bundle {
        kernel,
        initramfs,
        cmdline,
        image_hash: header_u64(header, field::IMAGE_HASH)?,
        kernel_text_offset,
        kernel_image_size,
        kernel_placed_anywhere,
    })
}

/// `bytes[start..end]`, bounds already checked by the caller but checked
/// again rather than trusted.
fn slice(bytes: &[u8], start: u64, end: u64) -> Result<&[u8], BundleError> {
    let start = usize::try_from(start).ok();
    let end = usize::try_from(end).ok();
    start
        .zip(end)
        .and_then(|(s, e)| bytes.get(s..e))
        .ok_or(BundleError::Truncated {
            what: "bundle",
            offset: bytes.len() as u64,
        })
}

/// Parts as `[start, end)` spans must not share a byte (empty parts share
/// nothing).
fn check_disjoint(spans: &[(Part, u64, u64); 3]) -> Result<(), BundleError> {
    for (i, &(first, s1, e1)) in spans.iter().enumerate() {
        for &(second, s2, e2) in spans.iter().skip(i + 1) {
            if s1 < e2 && s2 < e1 {
                return Err(BundleError::PartsOverlap { first, second });
            }
        }
    }
    Ok(())
}

/// Checks the arm64 `Image` header; returns `(text_offset, image_size,
/// placed anywhere)`.
fn check_kernel(kernel: &[u8]) -> Result<(u64, u64, bool), BundleError> {
    if kernel.starts_with(&[0x1f, 0x8b]) {
        return Err(BundleError::KernelCompressed);
    }
    let header = kernel
        .get(..image::HEADER_LEN)
        .ok_or(BundleError::KernelNotArm64Image)?;
    if header.get(image::MAGIC..image::MAGIC + 4) != Some(&image::MAGIC_VALUE[..]) {
        return Err(BundleError::KernelNotArm64Image);
    }
    let word = |at| read_u64(header, at).ok_or(BundleError::KernelNotArm64Image);
    let (text_offset, image_size, flags) = (
        word(image::TEXT_OFFSET)?,
        word(image::IMAGE_SIZE)?,
        word(image::FLAGS)?,
    );
    if flags & image::FLAG_BIG_ENDIAN != 0 {
        return Err(BundleError::KernelBigEndian);
    }
    let file_len = kernel.len() as u64;
    if image_size == 0 || image_size < file_len {
        return Err(BundleError::KernelImageSize {
            image_size,
            file_len,
        });
    }
    Ok((
        text_offset,
        image_size,
        flags & image::FLAG_PLACE_ANYWHERE != 0,
    ))
}

#[cfg(test)]
mod tests;
