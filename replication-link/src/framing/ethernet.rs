//! Ethernet framing: one packet (a batch of messages) per frame.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 6 | destination MAC |
//! | 6 | 6 | source MAC |
//! | 12 | 2 | EtherType `0x88B5`, big-endian (network order, as Ethernet requires) |
//! | 14 | 2 | packet length L, little-endian |
//! | 16 | L | packet |
//! | 16 + L | … | zero padding up to the 60-byte minimum frame |
//!
//! The FCS is the device's business. 0x88B5 is IEEE 802's "Local
//! Experimental EtherType 1", reserved for exactly this kind of private
//! protocol on a private segment; 0x88B6 is left to other experiments.
//! The length field is needed because short frames come back padded.
//! A payload of 1500 bytes (the standard MTU) holds a packet of up to
//! [`MAX_PACKET`] = 1498 bytes.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, DecodeReason, EncodeError};
use crate::packet::MAX_PACKET;

/// The EtherType of the link's frames (IEEE 802 Local Experimental 1).
pub const ETHERTYPE: u16 = 0x88B5;
/// A MAC address.
pub type Mac = [u8; 6];
/// The broadcast address.
pub const BROADCAST: Mac = [0xFF; 6];
/// Bytes before the packet: addresses, EtherType, length.
pub const ETH_HEADER: usize = 16;
/// Largest frame without FCS: 14-byte header and a 1500-byte payload.
pub const MAX_FRAME: usize = 1514;
/// Smallest frame without FCS; shorter frames are padded.
pub const MIN_FRAME: usize = 60;

const _: () = assert!(ETH_HEADER + MAX_PACKET == MAX_FRAME);

/// The two ends' addresses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EthernetFraming {
    /// Our address: frames to it (or to broadcast) are accepted.
    pub local: Mac,
    /// Where our frames go (the peer's address, or [`BROADCAST`]).
    pub peer: Mac,
}

impl EthernetFraming {
    /// Wraps `packet` in a frame into `out`; returns the frame length
    /// (at least [`MIN_FRAME`]).
    ///
    /// # Errors
    ///
    /// [`EncodeError::TooLarge`] above [`MAX_PACKET`],
    /// [`EncodeError::BufferTooSmall`] when `out` cannot hold the frame.
    pub fn encode(&self, packet: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = u16::try_from(packet.len())
            .ok()
            .filter(|_| packet.len() <= MAX_PACKET)
            .ok_or(EncodeError::TooLarge)?;
        let total = (ETH_HEADER + packet.len()).max(MIN_FRAME);
        let dst = out
            .get_mut(..total)
            .ok_or(EncodeError::BufferTooSmall { needed: total })?;
        let mut w = Writer::new(dst);
        w.bytes(&self.peer)?;
        w.bytes(&self.local)?;
        w.bytes(&ETHERTYPE.to_be_bytes())?;
        w.u16(len)?;
        w.bytes(packet)?;
        let used = w.len();
        if let Some(pad) = out.get_mut(used..total) {
            pad.fill(0);
        }
        Ok(total)
    }

    /// Finds the packet in a received frame (FCS already stripped).
    ///
    /// # Errors
    ///
    /// [`Truncated`](DecodeReason::Truncated) for a frame shorter than its
    /// header or its length field,
    /// [`NotForUs`](DecodeReason::NotForUs) for another destination,
    /// [`WrongEtherType`](DecodeReason::WrongEtherType),
    /// [`Oversized`](DecodeReason::Oversized) for a frame above
    /// [`MAX_FRAME`] or a length above [`MAX_PACKET`].
    pub fn decode<'a>(&self, frame: &'a [u8]) -> Result<&'a [u8], DecodeError> {
        if frame.len() > MAX_FRAME {
            return Err(DecodeError::new(DecodeReason::Oversized, MAX_FRAME));
        }
        let mut r = Reader::new(frame);
        let dst: Mac = r.array()?;
        let _src: Mac = r.array()?;
        let ethertype = u16::from_be_bytes(r.array()?);
        if ethertype != ETHERTYPE {
            return Err(DecodeError::new(DecodeReason::WrongEtherType, 12));
        }
        if dst != self.local && dst != BROADCAST {
            return Err(DecodeError::new(DecodeReason::NotForUs, 0));
        }
        let len = usize::from(r.u16()?);
        if len > MAX_PACKET {
            return Err(DecodeError::new(DecodeReason::Oversized, 14));
        }
        r.bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [2, 0, 0, 0, 0, 0xA];
    const B: Mac = [2, 0, 0, 0, 0, 0xB];

    #[test]
    fn frame_bytes_and_padding() {
        let f = EthernetFraming { local: A, peer: B };
        let mut out = [0xEEu8; 100];
        let n = f.encode(&[0x42, 0x43], &mut out).unwrap();
        assert_eq!(n, MIN_FRAME);
        assert_eq!(&out[..6], &B);
        assert_eq!(&out[6..12], &A);
        assert_eq!(&out[12..18], &[0x88, 0xB5, 2, 0, 0x42, 0x43]);
        assert!(out[18..60].iter().all(|&b| b == 0));
        let g = EthernetFraming { local: B, peer: A };
        assert_eq!(g.decode(&out[..n]).unwrap(), &[0x42, 0x43]);
        // Not for A.
        assert_eq!(
            f.decode(&out[..n]).unwrap_err(),
            DecodeError::new(DecodeReason::NotForUs, 0)
        );
    }

    #[test]
    fn malformed_frames_are_refused() {
        let f = EthernetFraming { local: A, peer: B };
        let mut frame = [0u8; 64];
        frame[..6].copy_from_slice(&A);
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(
            f.decode(&frame).unwrap_err().reason,
            DecodeReason::WrongEtherType
        );
        frame[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        frame[14..16].copy_from_slice(&100u16.to_le_bytes());
        assert_eq!(
            f.decode(&frame).unwrap_err(),
            DecodeError::new(DecodeReason::Truncated, 16)
        );
        frame[14..16].copy_from_slice(&1499u16.to_le_bytes());
        assert_eq!(
            f.decode(&frame).unwrap_err().reason,
            DecodeReason::Oversized
        );
        assert_eq!(
            f.decode(&frame[..10]).unwrap_err().reason,
            DecodeReason::Truncated
        );
        let mut out = [0u8; MAX_FRAME + 10];
        assert_eq!(
            f.encode(&[0; MAX_PACKET + 1], &mut out),
            Err(EncodeError::TooLarge)
        );
        assert_eq!(f.encode(&[0; MAX_PACKET], &mut out), Ok(MAX_FRAME));
        assert_eq!(
            f.encode(&[0; 10], &mut out[..20]),
            Err(EncodeError::BufferTooSmall { needed: 60 })
        );
    }
}
