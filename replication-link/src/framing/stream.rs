//! Stream framing: each packet is COBS-encoded and followed by one 0x00.
//!
//! ```text
//! … garbage … | COBS(packet) | 00 | COBS(packet) | 00 | …
//! ```
//!
//! A receiver that starts mid-stream, or meets noise, loses at most the
//! frame in which it happened: the next 0x00 resynchronises it, and the
//! packet's CRC-32C rejects whatever the noise turned into.

use heapless::Vec;

use super::cobs;
use crate::error::{DecodeError, DecodeReason, EncodeError};
use crate::packet::MAX_PACKET;

/// The frame delimiter.
pub const DELIMITER: u8 = 0x00;
/// Largest stream frame: an encoded [`MAX_PACKET`] and its delimiter.
pub const MAX_STREAM_FRAME: usize = cobs::max_encoded_len(MAX_PACKET) + 1;

/// Encodes `packet` as one stream frame (COBS and delimiter) into `out`;
/// returns the frame's length.
///
/// # Errors
///
/// [`EncodeError::TooLarge`] for a packet above [`MAX_PACKET`],
/// [`EncodeError::BufferTooSmall`] when `out` cannot hold the frame.
pub fn encode_frame(packet: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    if packet.len() > MAX_PACKET {
        return Err(EncodeError::TooLarge);
    }
    let needed = cobs::max_encoded_len(packet.len()) + 1;
    let room = out
        .len()
        .checked_sub(1)
        .ok_or(EncodeError::BufferTooSmall { needed })?;
    let n = cobs::encode(packet, out.get_mut(..room).unwrap_or(&mut []))
        .map_err(|_| EncodeError::BufferTooSmall { needed })?;
    let slot = out
        .get_mut(n)
        .ok_or(EncodeError::BufferTooSmall { needed })?;
    *slot = DELIMITER;
    Ok(n + 1)
}

/// Collects stream bytes into frames and decodes them.
///
/// Holds one frame ([`MAX_STREAM_FRAME`] bytes). A frame that grows past it
/// is dropped whole and reported as [`DecodeReason::Oversized`] at its
/// delimiter. Empty frames (two delimiters in a row) are skipped silently.
pub struct StreamDeframer {
    buf: Vec<u8, MAX_STREAM_FRAME>,
    /// The current frame overflowed: discard until the next delimiter.
    overflow: bool,
    /// `buf` holds the packet returned last time: clear before reuse.
    stale: bool,
}

impl Default for StreamDeframer {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDeframer {
    /// An empty deframer, waiting for the start of a frame.
    pub const fn new() -> Self {
        Self {
            buf: Vec::new(),
            overflow: false,
            stale: false,
        }
    }

    /// Feeds bytes up to and including the next delimiter. Returns how many
    /// bytes of `data` it consumed and, when that completed a frame, the
    /// decoded packet (valid until the next call) or why the frame was bad.
    /// Bytes not consumed belong to the next call.
    ///
    /// # Errors
    ///
    /// The inner result is [`DecodeReason::BadCobs`] or
    /// [`DecodeReason::Oversized`] for a bad frame; offsets are from the
    /// start of the frame. The deframer is ready for the next frame either way.
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<Result<&[u8], DecodeError>>) {
        if self.stale {
            self.buf.clear();
            self.stale = false;
        }
        let (chunk, complete) = match data.iter().position(|&b| b == DELIMITER) {
            Some(end) => (data.get(..end).unwrap_or(&[]), true),
            None => (data, false),
        };
        if !self.overflow && self.buf.extend_from_slice(chunk).is_err() {
            self.overflow = true;
        }
        let consumed = chunk.len() + usize::from(complete);
        if !complete {
            return (consumed, None);
        }
        self.stale = true;
        if self.overflow {
            self.overflow = false;
            let e = DecodeError::new(DecodeReason::Oversized, MAX_STREAM_FRAME);
            return (consumed, Some(Err(e)));
        }
        if self.buf.is_empty() {
            return (consumed, None);
        }
        let result = match cobs::decode_in_place(&mut self.buf) {
            Ok(n) => Ok(self.buf.get(..n).unwrap_or(&[])),
            Err(e) => Err(e),
        };
        (consumed, Some(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(mut data: &[u8]) -> std::vec::Vec<Result<std::vec::Vec<u8>, DecodeReason>> {
        let mut d = StreamDeframer::new();
        let mut out = std::vec::Vec::new();
        while !data.is_empty() {
            let (used, got) = d.feed(data);
            assert!(used > 0 && used <= data.len());
            data = &data[used..];
            if let Some(r) = got {
                out.push(r.map(<[u8]>::to_vec).map_err(|e| e.reason));
            }
        }
        out
    }

    #[test]
    fn frame_bytes() {
        let mut out = [0u8; 16];
        let n = encode_frame(&[0x11, 0x00, 0x22], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x02, 0x11, 0x02, 0x22, 0x00]);
    }

    #[test]
    fn resynchronises_after_garbage() {
        let mut wire = vec![0x13, 0x37, 0x00, 0x00, 0x09];
        let mut f = [0u8; 16];
        let n = encode_frame(&[1, 0, 2], &mut f).unwrap();
        wire.extend_from_slice(&f[..n]);
        wire.extend_from_slice(&f[..n]);
        // The garbage (0x09) glued to the front of the first frame breaks it;
        // the next one is whole.
        let got = frames(&wire);
        assert_eq!(got.len(), 3);
        assert!(got[0].is_err());
        assert!(got[1].is_err());
        assert_eq!(got[2], Ok(vec![1, 0, 2]));
    }

    #[test]
    fn oversized_frame_is_dropped_whole() {
        let mut wire = vec![0x01; MAX_STREAM_FRAME + 10];
        wire.push(0);
        wire.extend_from_slice(&[0x02, 0x07, 0x00]);
        assert_eq!(
            frames(&wire),
            vec![Err(DecodeReason::Oversized), Ok(vec![0x07])]
        );
    }

    #[test]
    fn byte_at_a_time_matches_bulk() {
        let mut f = [0u8; 600];
        let packet: std::vec::Vec<u8> = (0..500u32).map(|i| (i % 7) as u8).collect();
        let n = encode_frame(&packet, &mut f).unwrap();
        let mut d = StreamDeframer::new();
        let mut got = None;
        for &b in &f[..n] {
            let (used, r) = d.feed(&[b]);
            assert_eq!(used, 1);
            if let Some(r) = r {
                got = Some(r.unwrap().to_vec());
            }
        }
        assert_eq!(got.unwrap(), packet);
    }

    #[test]
    fn too_large_packet_is_refused() {
        let mut out = [0u8; 2 * MAX_STREAM_FRAME];
        assert_eq!(
            encode_frame(&[1; MAX_PACKET + 1], &mut out),
            Err(EncodeError::TooLarge)
        );
        assert_eq!(
            encode_frame(&[1; 10], &mut out[..5]),
            Err(EncodeError::BufferTooSmall { needed: 12 })
        );
    }
}
