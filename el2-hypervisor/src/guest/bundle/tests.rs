//! Tests of the guest bundle format.

use super::*;
use alloc::string::ToString;
use alloc::vec;

/// A fake arm64 `Image` of `len` bytes with the given header fields.
fn image(len: usize, text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
    let mut k = vec![0u8; len.max(64)];
    k[0..4].copy_from_slice(&0x1400_0000u32.to_le_bytes()); // b . (branch to self)
    k[8..16].copy_from_slice(&text_offset.to_le_bytes());
    k[16..24].copy_from_slice(&image_size.to_le_bytes());
    k[24..32].copy_from_slice(&flags.to_le_bytes());
    k[56..60].copy_from_slice(b"ARM\x64");
    for (i, b) in k.iter_mut().enumerate().skip(64) {
        *b = (i * 7 + 3) as u8;
    }
    k
}

fn kernel() -> Vec<u8> {
    image(5000, 0, 0x20_0000, 0b1010)
}

const CMDLINE: &str = "console=ttyAMA0 rdinit=/init clocksource.arm_arch_timer.evtstrm=0";

/// A small bundle (its kernel at 4 KiB, not [`KERNEL_OFFSET`]), so that
/// mutations land in its fields rather than in padding.
fn sample() -> Vec<u8> {
    encode_with_kernel_at(PART_ALIGN, &kernel(), b"070701 cpio archive bytes", CMDLINE)
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Recomputes the header checksum after a deliberate edit, so that the
/// check under test is the one that fires.
fn reseal(b: &mut [u8]) {
    let size = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let size = size.min(b.len());
    let check = header_check(&b[..size]);
    set_u64(b, field::HEADER_CHECK, check);
}

fn part_field(part: Part) -> usize {
    field::PARTS + 16 * Part::ALL.iter().position(|&p| p == part).unwrap()
}

/// Parses after an edit of the header, resealed.
fn parse_edited(edit: impl FnOnce(&mut Vec<u8>)) -> Result<(), BundleError> {
    let mut b = sample();
    edit(&mut b);
    reseal(&mut b);
    parse(&b).map(|_| ())
}

#[test]
fn round_trip() {
    let k = kernel();
    let bytes = encode(&k, b"070701 cpio archive bytes", CMDLINE);
    let b = parse(&bytes).unwrap();
    assert_eq!(b.kernel, &k[..]);
    assert_eq!(b.initramfs, b"070701 cpio archive bytes");
    assert_eq!(b.cmdline, CMDLINE);
    assert_eq!(b.kernel_text_offset, 0);
    assert_eq!(b.kernel_image_size, 0x20_0000);
    assert!(b.kernel_placed_anywhere, "flags 0b1010 has bit 3");
    let near_base = encode(&image(5000, 0, 0x20_0000, 0b0010), &[], "");
    assert!(!parse(&near_base).unwrap().kernel_placed_anywhere);
    assert_eq!(b.image_hash, image_hash(&k, b.initramfs, CMDLINE));
    assert!(b.verify());
    // Layout: header, then each part on a 4 KiB boundary.
    assert_eq!(&bytes[..8], b"TANDEMG1");
    for part in Part::ALL {
        assert_eq!(get_u64(&bytes, part_field(part)) % PART_ALIGN, 0);
    }
    // The kernel 2 MiB in, where the arm64 boot protocol lets it run.
    assert_eq!(get_u64(&bytes, part_field(Part::Kernel)), KERNEL_OFFSET);
    assert_eq!(KERNEL_OFFSET, 2 << 20);
    assert_eq!(get_u64(&bytes, field::TOTAL_SIZE), bytes.len() as u64);
}

#[test]
fn round_trip_without_initramfs_or_cmdline() {
    let k = kernel();
    let bytes = encode(&k, &[], "");
    let b = parse(&bytes).unwrap();
    assert_eq!((b.kernel, b.initramfs, b.cmdline), (&k[..], &[][..], ""));
    assert!(b.verify());
}

#[test]
fn trailing_padding_is_ignored() {
    let mut bytes = sample();
    bytes.extend_from_slice(&[0xff; 4096]);
    let b = parse(&bytes).unwrap();
    assert_eq!(b.cmdline, CMDLINE);
}

#[test]
fn image_hash_depends_on_boundaries_and_content() {
    let h = image_hash(b"ab", b"c", "d");
    assert_ne!(h, image_hash(b"a", b"bc", "d"));
    assert_ne!(h, image_hash(b"ab", b"c", "e"));
    assert_eq!(h, image_hash(b"ab", b"c", "d"));
}

#[test]
fn verify_detects_a_changed_part() {
    let mut bytes = sample();
    let at = get_u64(&bytes, part_field(Part::Initramfs)) as usize;
    bytes[at] ^= 1;
    let b = parse(&bytes).unwrap();
    assert!(!b.verify());
}

#[test]
fn bad_magic() {
    let mut b = sample();
    b[0] = b'X';
    assert_eq!(parse(&b), Err(BundleError::BadMagic));
    assert_eq!(parse(b"not a bundle at all"), Err(BundleError::BadMagic));
}

#[test]
fn unsupported_version() {
    let mut b = sample();
    set_u32(&mut b, field::VERSION, 3);
    assert_eq!(parse(&b), Err(BundleError::UnsupportedVersion(3)));
    // Version 1 (the kernel at 4 KiB, a byte-wise hash) is named as older.
    set_u32(&mut b, field::VERSION, 1);
    let e = parse(&b).unwrap_err();
    assert_eq!(e, BundleError::UnsupportedVersion(1));
    assert!(e.to_string().contains("older bundle format"), "{e}");
}

#[test]
fn bad_header_size() {
    for size in [0, 95, 4097, u32::MAX] {
        let mut b = sample();
        set_u32(&mut b, field::HEADER_SIZE, size);
        assert_eq!(parse(&b), Err(BundleError::BadHeaderSize(size)));
    }
}

#[test]
fn header_checksum() {
    let mut b = sample();
    b[field::TOTAL_SIZE] ^= 0x10;
    assert_eq!(parse(&b), Err(BundleError::HeaderChecksum));
}

#[test]
fn truncated() {
    let b = sample();
    assert_eq!(
        parse(&b[..5]),
        Err(BundleError::Truncated {
            what: "header",
            offset: 5
        })
    );
    assert_eq!(
        parse(&b[..50]),
        Err(BundleError::Truncated {
            what: "header",
            offset: 50
        })
    );
    let short = b.len() - 1;
    assert_eq!(
        parse(&b[..short]),
        Err(BundleError::Truncated {
            what: "bundle (header total_size)",
            offset: short as u64
        })
    );
    assert!(matches!(
        parse(&[]),
        Err(BundleError::Truncated { offset: 0, .. })
    ));
}

#[test]
fn part_out_of_bounds() {
    for part in Part::ALL {
        let f = part_field(part);
        // Past the end.
        let err = parse_edited(|b| set_u64(b, f, 0x10_0000));
        assert_eq!(err, Err(BundleError::PartOutOfBounds { part }));
        // offset + len overflows.
        let err = parse_edited(|b| {
            set_u64(b, f, 4096);
            set_u64(b, f + 8, u64::MAX - 10);
        });
        assert_eq!(err, Err(BundleError::PartOutOfBounds { part }));
        // Inside the header.
        let err = parse_edited(|b| set_u64(b, f, 0));
        assert_eq!(err, Err(BundleError::PartOutOfBounds { part }));
    }
}

#[test]
fn part_misaligned() {
    let f = part_field(Part::Cmdline);
    let err = parse_edited(|b| {
        let off = get_u64(b, f);
        set_u64(b, f, off - 8);
    });
    assert_eq!(
        err,
        Err(BundleError::PartMisaligned {
            part: Part::Cmdline
        })
    );
}

#[test]
fn parts_overlap() {
    let err = parse_edited(|b| {
        let k = get_u64(b, part_field(Part::Kernel));
        set_u64(b, part_field(Part::Initramfs), k);
    });
    assert_eq!(
        err,
        Err(BundleError::PartsOverlap {
            first: Part::Kernel,
            second: Part::Initramfs
        })
    );
}

#[test]
fn kernel_checks() {
    let mut not_image = kernel();
    not_image[56] = b'X';
    let cases = [
        (not_image, BundleError::KernelNotArm64Image),
        (vec![0u8; 10], BundleError::KernelNotArm64Image),
        (vec![0x1f, 0x8b, 8, 0, 0, 0], BundleError::KernelCompressed),
        (image(5000, 0, 0x20_0000, 1), BundleError::KernelBigEndian),
        (
            image(5000, 0, 0, 0),
            BundleError::KernelImageSize {
                image_size: 0,
                file_len: 5000,
            },
        ),
        (
            image(5000, 0, 4096, 0),
            BundleError::KernelImageSize {
                image_size: 4096,
                file_len: 5000,
            },
        ),
    ];
    for (k, want) in cases {
        assert_eq!(parse(&encode(&k, &[], "")), Err(want));
    }
    let b = encode(&image(5000, 0x8_0000, 0x1234_0000, 0), &[], "");
    let b = parse(&b).unwrap();
    assert_eq!(
        (b.kernel_text_offset, b.kernel_image_size),
        (0x8_0000, 0x1234_0000)
    );
}

#[test]
fn cmdline_checks() {
    let mut b = sample();
    let at = get_u64(&b, part_field(Part::Cmdline)) as usize;
    b[at] = 0xff;
    assert_eq!(parse(&b), Err(BundleError::CmdlineNotUtf8));
    let b = encode(&kernel(), &[], "a\0b");
    assert_eq!(parse(&b), Err(BundleError::CmdlineHasNul));
}

#[test]
fn messages_name_the_bundle() {
    let errors = [
        BundleError::BadMagic,
        BundleError::UnsupportedVersion(7),
        BundleError::BadHeaderSize(3),
        BundleError::HeaderChecksum,
        BundleError::Truncated {
            what: "header",
            offset: 5,
        },
        BundleError::PartOutOfBounds { part: Part::Kernel },
        BundleError::PartMisaligned {
            part: Part::Initramfs,
        },
        BundleError::PartsOverlap {
            first: Part::Kernel,
            second: Part::Cmdline,
        },
        BundleError::KernelNotArm64Image,
        BundleError::KernelCompressed,
        BundleError::KernelBigEndian,
        BundleError::KernelImageSize {
            image_size: 0,
            file_len: 1,
        },
        BundleError::CmdlineNotUtf8,
        BundleError::CmdlineHasNul,
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(msg.starts_with("guest bundle: "), "{msg}");
    }
    assert_eq!(
        BundleError::KernelNotArm64Image.to_string(),
        "guest bundle: kernel is not an arm64 Image (no ARM\\x64 magic at offset 56)"
    );
}

/// xorshift64*: a deterministic PRNG for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An edge value for a header field.
fn interesting(r: &mut Rng, len: usize) -> u64 {
    match r.below(8) {
        0 => 0,
        1 => u64::MAX,
        2 => len as u64,
        3 => (len as u64).wrapping_add(r.below(9) as u64).wrapping_sub(4),
        4 => r.below(8) as u64 * PART_ALIGN,
        5 => u64::MAX - r.below(4096) as u64,
        _ => r.next(),
    }
}

/// Writes `bytes` at `at` as far as the (possibly truncated) buffer goes.
fn overwrite(b: &mut [u8], at: usize, bytes: &[u8]) {
    for (i, &v) in bytes.iter().enumerate() {
        if let Some(dst) = b.get_mut(at + i) {
            *dst = v;
        }
    }
}

/// One random damage to a bundle.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    let len = b.len();
    match rng.below(6) {
        // A random byte anywhere.
        0 => {
            let at = rng.below(len + 1);
            overwrite(b, at, &[rng.next() as u8]);
        }
        // A bit flip in the header or the kernel's header.
        1 => {
            let at = rng.below(HEADER_SIZE + 1);
            let at = if at == HEADER_SIZE {
                4096 + rng.below(64)
            } else {
                at
            };
            if let Some(byte) = b.get_mut(at) {
                *byte ^= 1 << rng.below(8);
            }
        }
        // A header word set to an edge value.
        2 => {
            let at = 8 * rng.below(HEADER_SIZE / 8);
            let v = interesting(rng, len);
            overwrite(b, at, &v.to_le_bytes());
        }
        // A 32-bit field (or an Image header word) set to an edge value.
        3 => {
            let at = 4 * rng.below(HEADER_SIZE / 4);
            let at = if rng.below(4) == 0 {
                4096 + at % 64
            } else {
                at
            };
            let v = interesting(rng, len) as u32;
            overwrite(b, at, &v.to_le_bytes());
        }
        // Truncation.
        4 => {
            let keep = rng.below(len + 1);
            b.truncate(keep);
        }
        // Extension with garbage.
        _ => {
            for _ in 0..rng.below(300) {
                b.push(rng.next() as u8);
            }
        }
    }
}

/// Tens of thousands of damaged bundles: parse returns, never panics. Half
/// of them get a fresh header checksum so that the checks past it run.
#[test]
fn mutated_bundles_never_panic() {
    let base = sample();
    let mut rng = Rng(0x7a4d_656d_6775_6731);
    let (mut ok, mut errors) = (0u32, [0u32; 16]);
    for round in 0..40_000 {
        let mut b = base.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut b);
        }
        if round % 2 == 0 && b.len() >= HEADER_SIZE {
            reseal(&mut b);
        }
        match parse(&b) {
            Ok(parsed) => {
                ok += 1;
                let _ = parsed.verify();
                assert!(parsed.kernel.len() >= 64);
            }
            Err(e) => {
                let _ = e.to_string();
                let slot = match e {
                    BundleError::BadMagic => 0,
                    BundleError::UnsupportedVersion(_) => 1,
                    BundleError::BadHeaderSize(_) => 2,
                    BundleError::HeaderChecksum => 3,
                    BundleError::Truncated { .. } => 4,
                    BundleError::PartOutOfBounds { .. } => 5,
                    BundleError::PartMisaligned { .. } => 6,
                    BundleError::PartsOverlap { .. } => 7,
                    BundleError::KernelNotArm64Image => 8,
                    BundleError::KernelCompressed => 9,
                    BundleError::KernelBigEndian => 10,
                    BundleError::KernelImageSize { .. } => 11,
                    BundleError::CmdlineNotUtf8 => 12,
                    BundleError::CmdlineHasNul => 13,
                };
                errors[slot] += 1;
            }
        }
    }
    std::eprintln!("mutated bundles: {ok} parsed, errors by kind {errors:?}");
    // The mutations reach deep into the parser, not just the magic check.
    assert!(ok > 100, "only {ok} mutated bundles parsed");
    let reached = errors.iter().filter(|&&n| n > 0).count();
    assert!(reached >= 11, "errors reached: {errors:?}");
}

#[test]
fn the_image_hash_sees_every_byte_and_where_parts_end() {
    let k = kernel();
    let h = image_hash(&k, b"initramfs", "cmd");
    // Any one byte changed, wherever it sits in its word.
    for at in [0, 7, 8, 63, k.len() - 1] {
        let mut changed = k.clone();
        changed[at] ^= 0x80;
        assert_ne!(image_hash(&changed, b"initramfs", "cmd"), h, "byte {at}");
    }
    // A part's zero padding to a whole word is not the part's bytes, and
    // a byte moved from one part to the next is another image.
    assert_ne!(image_hash(&k, b"a", ""), image_hash(&k, b"a\0", ""));
    assert_ne!(image_hash(&k, b"ab", "c"), image_hash(&k, b"a", "bc"));
}
