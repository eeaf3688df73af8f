use super::*;
use alloc::vec;
use alloc::vec::Vec;

const TEXT: usize = 0x1000;
const TEXT_LEN: usize = 0x3000;
const DATA: usize = TEXT + TEXT_LEN;
const LEN: usize = DATA + 0x1000;
const PE: usize = 0x40;
const OPTIONAL: usize = 0xa0;
const TABLE: usize = PE + 24 + OPTIONAL;

fn put16(img: &mut [u8], at: usize, v: u16) {
    img[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(img: &mut [u8], at: usize, v: u32) {
    img[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn word(img: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(img[at..at + 4].try_into().unwrap())
}

/// A flat image with a PE header as Linux's efi-header.S writes it: a
/// `.text` section at 0x1000..0x4000 and a `.data` after it.
fn image() -> Vec<u8> {
    let mut img = vec![0u8; LEN];
    img[..2].copy_from_slice(b"MZ");
    put32(&mut img, 0x3c, PE as u32);
    img[PE..PE + 4].copy_from_slice(b"PE\0\0");
    put16(&mut img, PE + 4, 0xaa64);
    put16(&mut img, PE + 6, 2);
    put16(&mut img, PE + 20, OPTIONAL as u16);
    for (i, (name, at, len)) in [
        (b".text\0\0\0", TEXT, TEXT_LEN),
        (b".data\0\0\0", DATA, 0x1000),
    ]
    .into_iter()
    .enumerate()
    {
        let s = TABLE + 40 * i;
        img[s..s + 8].copy_from_slice(name);
        put32(&mut img, s + 8, len as u32);
        put32(&mut img, s + 12, at as u32);
        put32(&mut img, s + 16, len as u32);
        put32(&mut img, s + 20, at as u32);
    }
    img
}

#[test]
fn the_encodings_are_the_assemblers() {
    // `mrs x0, cntvct_el0` and `mrs x0, cntpct_el0` as GNU as writes them.
    assert_eq!(MRS_CNTVCT, 0xd53b_e040);
    assert_eq!(MRS_CNTPCT, 0xd53b_e020);
}

#[test]
fn the_text_range_is_the_pe_text_section() {
    assert_eq!(text_range(&image()), Ok(TEXT..TEXT + TEXT_LEN));
}

#[test]
fn a_read_inside_text_is_redirected_and_keeps_its_register() {
    let mut img = image();
    put32(&mut img, TEXT + 8, MRS_CNTVCT | 3);
    put32(&mut img, TEXT + TEXT_LEN - 4, MRS_CNTVCT | 30);
    // A read of another register, and the CNTVCTSS_EL0 (op2 = 6) read of
    // an ECV alternative, stay.
    put32(&mut img, TEXT + 12, MRS_CNTPCT | 1);
    put32(&mut img, TEXT + 16, MRS_CNTVCT | 6 << 5);
    let done = patch(&mut img).unwrap();
    assert_eq!(
        done,
        Patched {
            redirected: 2,
            skipped: 0
        }
    );
    assert_eq!(word(&img, TEXT + 8), MRS_CNTPCT | 3);
    assert_eq!(word(&img, TEXT + TEXT_LEN - 4), MRS_CNTPCT | 30);
    assert_eq!(word(&img, TEXT + 12), MRS_CNTPCT | 1);
    assert_eq!(word(&img, TEXT + 16), MRS_CNTVCT | 6 << 5);
}

#[test]
fn a_read_outside_text_or_misaligned_is_left() {
    let mut img = image();
    put32(&mut img, DATA + 8, MRS_CNTVCT);
    put32(&mut img, 0x800, MRS_CNTVCT);
    put32(&mut img, TEXT + 0x22, MRS_CNTVCT);
    let before = img.clone();
    assert_eq!(patch(&mut img), Ok(Patched::default()));
    assert_eq!(img, before);
}

#[test]
fn reads_in_an_embedded_elf_image_the_vdso_are_left() {
    let mut img = image();
    let elf = TEXT + 0x1000;
    img[elf..elf + 6].copy_from_slice(b"\x7fELF\x02\x01");
    // Section headers at 0x800, 4 of 64 bytes: the ELF ends at +0x900.
    put32(&mut img, elf + 0x28, 0x800);
    put16(&mut img, elf + 0x3a, 64);
    put16(&mut img, elf + 0x3c, 4);
    put32(&mut img, elf + 0x100, MRS_CNTVCT);
    put32(&mut img, elf + 0x8fc, MRS_CNTVCT);
    put32(&mut img, elf + 0x900, MRS_CNTVCT | 2);
    let done = patch(&mut img).unwrap();
    assert_eq!(
        done,
        Patched {
            redirected: 1,
            skipped: 2
        }
    );
    assert_eq!(word(&img, elf + 0x100), MRS_CNTVCT);
    assert_eq!(word(&img, elf + 0x900), MRS_CNTPCT | 2);
}

#[test]
fn an_elf_header_that_lies_reaches_the_end_of_text_not_past_it() {
    let mut img = image();
    let elf = TEXT + 0x1000;
    img[elf..elf + 6].copy_from_slice(b"\x7fELF\x02\x01");
    img[elf + 0x28..elf + 0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    put16(&mut img, elf + 0x3a, 0xffff);
    put16(&mut img, elf + 0x3c, 0xffff);
    put32(&mut img, elf + 0x1ffc, MRS_CNTVCT);
    put32(&mut img, TEXT, MRS_CNTVCT);
    let done = patch(&mut img).unwrap();
    assert_eq!(
        done,
        Patched {
            redirected: 1,
            skipped: 1
        }
    );
}

#[test]
fn headers_that_lie_are_errors() {
    assert_eq!(patch(&mut [0u8; 64]), Err(PatchError::NoPeHeader));
    assert!(matches!(
        patch(&mut b"MZ".to_vec()),
        Err(PatchError::Truncated { .. })
    ));

    let mut img = image();
    put32(&mut img, 0x3c, u32::MAX);
    assert!(matches!(patch(&mut img), Err(PatchError::Truncated { .. })));

    let mut img = image();
    put32(&mut img, 0x3c, 0x100);
    assert_eq!(patch(&mut img), Err(PatchError::BadPeSignature));

    let mut img = image();
    put16(&mut img, PE + 4, 0x8664);
    assert_eq!(
        patch(&mut img),
        Err(PatchError::NotArm64 { machine: 0x8664 })
    );

    let mut img = image();
    put16(&mut img, PE + 6, 0xffff);
    assert_eq!(patch(&mut img), Err(PatchError::TooManySections(0xffff)));

    // A section table past the end of the file.
    let mut img = image();
    put16(&mut img, PE + 20, 0xffff);
    assert!(matches!(patch(&mut img), Err(PatchError::Truncated { .. })));

    // A .text that reaches past the end of the file, or at its end.
    let mut img = image();
    put32(&mut img, TABLE + 16, u32::MAX);
    assert!(matches!(patch(&mut img), Err(PatchError::Truncated { .. })));
    let mut img = image();
    put32(&mut img, TABLE + 12, u32::MAX);
    put32(&mut img, TABLE + 20, u32::MAX);
    assert!(matches!(patch(&mut img), Err(PatchError::Truncated { .. })));

    let mut img = image();
    put32(&mut img, TABLE + 20, 0x2000);
    assert_eq!(
        patch(&mut img),
        Err(PatchError::TextNotFlat {
            offset: 0x2000,
            address: TEXT as u32
        })
    );

    let mut img = image();
    img[TABLE + 1] = b'T';
    assert_eq!(patch(&mut img), Err(PatchError::NoTextSection));
}
