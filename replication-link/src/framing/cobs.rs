//! Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999): removes every
//! zero byte from a packet at a cost of one byte per 254, so that 0x00 can
//! delimit frames on a byte stream and a receiver resynchronises at the
//! next zero after any garbage.

use crate::error::{DecodeError, DecodeReason, EncodeError};

/// Largest COBS encoding of `n` bytes.
pub const fn max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// Encodes `src` into `dst` (no delimiter); returns the encoded length.
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] when `dst` is shorter than
/// [`max_encoded_len`]`(src.len())`.
pub fn encode(src: &[u8], dst: &mut [u8]) -> Result<usize, EncodeError> {
    let needed = max_encoded_len(src.len());
    if dst.len() < needed {
        return Err(EncodeError::BufferTooSmall { needed });
    }
    let mut code_at = 0;
    let mut code: u8 = 1;
    let mut w = 1;
    for &b in src {
        if b == 0 {
            put(dst, code_at, code);
            code_at = w;
            w += 1;
            code = 1;
        } else {
            put(dst, w, b);
            w += 1;
            code += 1;
            if code == 0xFF {
                put(dst, code_at, code);
                code_at = w;
                w += 1;
                code = 1;
            }
        }
    }
    put(dst, code_at, code);
    Ok(w)
}

/// Stores `b` at `i` when in bounds (the caller has checked the size).
fn put(dst: &mut [u8], i: usize, b: u8) {
    if let Some(slot) = dst.get_mut(i) {
        *slot = b;
    }
}

/// Decodes a COBS frame (delimiter removed) in place; returns the decoded
/// length. The decoded bytes are `buf[..len]`.
///
/// # Errors
///
/// [`DecodeReason::BadCobs`] at the offset of a zero byte inside the frame,
/// or of a code that runs past its end.
pub fn decode_in_place(buf: &mut [u8]) -> Result<usize, DecodeError> {
    let len = buf.len();
    let mut r = 0;
    let mut w = 0;
    while r < len {
        let code = buf.get(r).copied().unwrap_or(0);
        if code == 0 {
            return Err(DecodeError::new(DecodeReason::BadCobs, r));
        }
        let block_end = r + usize::from(code);
        if block_end > len {
            return Err(DecodeError::new(DecodeReason::BadCobs, r));
        }
        r += 1;
        while r < block_end {
            let b = buf.get(r).copied().unwrap_or(0);
            if b == 0 {
                return Err(DecodeError::new(DecodeReason::BadCobs, r));
            }
            put(buf, w, b);
            w += 1;
            r += 1;
        }
        if code != 0xFF && r < len {
            put(buf, w, 0);
            w += 1;
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &[u8], want: &[u8]) {
        let mut enc = [0u8; 600];
        let n = encode(src, &mut enc).unwrap();
        assert_eq!(&enc[..n], want);
        assert!(!enc[..n].contains(&0));
        let mut dec = enc;
        let m = decode_in_place(&mut dec[..n]).unwrap();
        assert_eq!(&dec[..m], src);
    }

    #[test]
    fn wikipedia_examples() {
        check(&[], &[0x01]);
        check(&[0x00], &[0x01, 0x01]);
        check(&[0x00, 0x00], &[0x01, 0x01, 0x01]);
        check(&[0x11, 0x22, 0x00, 0x33], &[0x03, 0x11, 0x22, 0x02, 0x33]);
        check(&[0x11, 0x00, 0x00, 0x00], &[0x02, 0x11, 0x01, 0x01, 0x01]);
        let ones: std::vec::Vec<u8> = (1..=254).collect();
        let mut want = vec![0xFF];
        want.extend_from_slice(&ones);
        want.push(0x01);
        check(&ones, &want);
        let mut src: std::vec::Vec<u8> = (1..=255).collect();
        src.push(0);
        let mut want = vec![0xFF];
        want.extend(1..=254);
        want.extend([0x02, 0xFF, 0x01]);
        check(&src, &want);
    }

    #[test]
    fn bad_frames_are_refused() {
        assert_eq!(
            decode_in_place(&mut [0x03, 0x11]).unwrap_err(),
            DecodeError::new(DecodeReason::BadCobs, 0)
        );
        assert_eq!(
            decode_in_place(&mut [0x03, 0x00, 0x11]).unwrap_err(),
            DecodeError::new(DecodeReason::BadCobs, 1)
        );
        assert_eq!(
            decode_in_place(&mut [0x01, 0x00]).unwrap_err(),
            DecodeError::new(DecodeReason::BadCobs, 1)
        );
    }

    #[test]
    fn small_output_buffer_is_an_error() {
        assert_eq!(
            encode(&[1, 2, 3], &mut [0u8; 3]),
            Err(EncodeError::BufferTooSmall { needed: 4 })
        );
    }
}
