//! Packets: a batch of messages with a sequence number and a CRC, the unit
//! that both framings carry.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | seq: sequence number of the first sequenced message |
//! | 4 | 1 | n: number of messages |
//! | 5 | … | n messages, back to back |
//! | len − 4 | 4 | CRC-32C (Castagnoli) of bytes 0 .. len − 4 |
//!
//! Sequenced messages in a packet are numbered `seq`, `seq + 1`, … in the
//! order they appear; control messages (`Hello`, `Ack`, `Heartbeat`) take no
//! number. Numbers wrap at 2³² ([`Seq`](crate::Seq)).
//!
//! CRC-32C rather than the IEEE CRC-32 of Ethernet: at the packet lengths
//! used here it has a larger Hamming distance (6 up to 5,243 bits, against
//! 4 or 5 for IEEE; Koopman 2002), it is independent of the Ethernet FCS so
//! it also catches errors made in DMA buffers and drivers, and ARMv8 has
//! instructions for it (`CRC32C*`) should the table lookup ever be too slow.

use crc::{CRC_32_ISCSI, Crc};

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, DecodeReason, EncodeError};
use crate::message::Message;

/// Largest packet: fills an Ethernet payload of 1500 bytes after the
/// framing's 2-byte length.
pub const MAX_PACKET: usize = 1498;
/// Packet header size (sequence number and message count).
pub const PACKET_HEADER: usize = 5;
/// Bytes a packet adds around its messages (header and CRC).
pub const PACKET_OVERHEAD: usize = PACKET_HEADER + 4;

const CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// Builds one packet in a caller's buffer.
pub struct PacketWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u8,
}

impl<'a> PacketWriter<'a> {
    /// Starts a packet whose first sequenced message is numbered `seq`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] when `buf` cannot hold even an empty
    /// packet ([`PACKET_OVERHEAD`] bytes).
    pub fn new(buf: &'a mut [u8], seq: u32) -> Result<Self, EncodeError> {
        if buf.len() < PACKET_OVERHEAD {
            return Err(EncodeError::BufferTooSmall {
                needed: PACKET_OVERHEAD,
            });
        }
        let mut w = Writer::new(buf);
        w.u32(seq)?;
        w.u8(0)?;
        Ok(Self {
            buf,
            len: PACKET_HEADER,
            count: 0,
        })
    }

    /// Bytes the packet would take if finished now.
    pub const fn len(&self) -> usize {
        self.len + 4
    }

    /// Number of messages added so far.
    pub const fn count(&self) -> u8 {
        self.count
    }

    /// Whether no message has been added.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether `msg` would still fit.
    pub fn fits(&self, msg: &Message) -> bool {
        self.count < u8::MAX && self.len() + msg.wire_size() <= self.buf.len()
    }

    /// Appends `msg`. On error the packet is unchanged.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] when it does not fit (room for the
    /// CRC is kept), [`EncodeError::TooLarge`] past 255 messages.
    pub fn push(&mut self, msg: &Message) -> Result<(), EncodeError> {
        if self.count == u8::MAX {
            return Err(EncodeError::TooLarge);
        }
        let room = self.buf.len().saturating_sub(4);
        let dst = self.buf.get_mut(self.len..room).unwrap_or(&mut []);
        let n = msg.encode(dst).map_err(|e| match e {
            EncodeError::BufferTooSmall { needed } => EncodeError::BufferTooSmall {
                needed: needed + self.len + 4,
            },
            other => other,
        })?;
        self.len += n;
        self.count += 1;
        Ok(())
    }

    /// Writes the count and the CRC; returns the packet's length.
    pub fn finish(self) -> usize {
        if let Some(c) = self.buf.get_mut(4) {
            *c = self.count;
        }
        let crc = crc32c(self.buf.get(..self.len).unwrap_or(&[]));
        if let Some(dst) = self.buf.get_mut(self.len..self.len + 4) {
            dst.copy_from_slice(&crc.to_le_bytes());
        }
        self.len + 4
    }
}

/// A received packet whose CRC and every message have been checked.
#[derive(Copy, Clone, Debug)]
pub struct Packet<'a> {
    seq: u32,
    count: u8,
    body: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Encodes `msgs` as one packet into `buf`; returns its length.
    ///
    /// # Errors
    ///
    /// As [`PacketWriter::push`].
    pub fn encode(seq: u32, msgs: &[Message], buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = PacketWriter::new(buf, seq)?;
        for m in msgs {
            w.push(m)?;
        }
        Ok(w.finish())
    }

    /// Checks a packet: length, CRC, and that it holds exactly `n` valid
    /// messages. Decoding the messages again through
    /// [`messages`](Self::messages) then cannot fail.
    ///
    /// # Errors
    ///
    /// [`Oversized`](DecodeReason::Oversized) above [`MAX_PACKET`],
    /// [`Truncated`](DecodeReason::Truncated) below [`PACKET_OVERHEAD`],
    /// [`BadCrc`](DecodeReason::BadCrc),
    /// [`CountMismatch`](DecodeReason::CountMismatch) when the bytes hold
    /// fewer messages than announced, [`TrailingBytes`](DecodeReason::TrailingBytes)
    /// when they hold more, or any message error; offsets are from the start
    /// of the packet.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_PACKET {
            return Err(DecodeError::new(DecodeReason::Oversized, MAX_PACKET));
        }
        let crc_at = bytes
            .len()
            .checked_sub(4)
            .filter(|&at| at >= PACKET_HEADER)
            .ok_or(DecodeError::new(DecodeReason::Truncated, bytes.len()))?;
        let (covered, crc) = bytes.split_at(crc_at);
        let mut r = Reader::new(crc);
        if r.u32()? != crc32c(covered) {
            return Err(DecodeError::new(DecodeReason::BadCrc, crc_at));
        }
        let mut r = Reader::new(covered);
        let seq = r.u32()?;
        let count = r.u8()?;
        let body = r.rest();
        let mut r = Reader::new(body);
        for _ in 0..count {
            if r.remaining() == 0 {
                return Err(DecodeError::new(DecodeReason::CountMismatch, 4));
            }
            Message::decode_from(&mut r).map_err(|e| e.shifted(PACKET_HEADER))?;
        }
        if r.remaining() != 0 {
            return Err(DecodeError::new(
                DecodeReason::TrailingBytes,
                r.offset() + PACKET_HEADER,
            ));
        }
        Ok(Self { seq, count, body })
    }

    /// Sequence number of the first sequenced message.
    pub const fn seq(&self) -> u32 {
        self.seq
    }

    /// Number of messages.
    pub const fn count(&self) -> u8 {
        self.count
    }

    /// The messages, in order.
    pub fn messages(&self) -> Messages<'a> {
        Messages {
            r: Reader::new(self.body),
            left: self.count,
        }
    }
}

/// Iterator over the messages of a [`Packet`].
pub struct Messages<'a> {
    r: Reader<'a>,
    left: u8,
}

impl Iterator for Messages<'_> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked by `Packet::parse`; a failure here ends the iteration.
        Message::decode_from(&mut self.r).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Ack, Released, Takeover};

    #[test]
    fn packet_bytes() {
        let msgs = [
            Message::Ack(Ack { up_to: 3 }),
            Message::Takeover(Takeover { epoch: 1, count: 2 }),
            Message::Released(Released { output: 0x105 }),
        ];
        let mut buf = [0u8; 64];
        let n = Packet::encode(0x10, &msgs, &mut buf).unwrap();
        assert_eq!(n, PACKET_OVERHEAD + 5 + 17 + 9);
        assert_eq!(&buf[..5], &[0x10, 0, 0, 0, 3]);
        assert_eq!(&buf[5..10], &[0x04, 3, 0, 0, 0]);
        assert_eq!(&buf[27..36], &[0x08, 0x05, 0x01, 0, 0, 0, 0, 0, 0]);
        let crc = crc32c(&buf[..n - 4]);
        assert_eq!(&buf[n - 4..n], &crc.to_le_bytes());
        let p = Packet::parse(&buf[..n]).unwrap();
        assert_eq!(p.seq(), 0x10);
        assert_eq!(p.messages().collect::<std::vec::Vec<_>>(), msgs);
    }

    #[test]
    fn crc32c_check_value() {
        // The catalogue check value of CRC-32/ISCSI.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let mut buf = [0u8; 64];
        let n = Packet::encode(7, &[Message::Ack(Ack { up_to: 9 })], &mut buf).unwrap();
        for bit in 0..n * 8 {
            let mut bad = buf;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                Packet::parse(&bad[..n]).unwrap_err().reason,
                DecodeReason::BadCrc
            );
        }
    }

    fn sealed(bytes: &[u8]) -> std::vec::Vec<u8> {
        let mut v = bytes.to_vec();
        v.extend_from_slice(&crc32c(bytes).to_le_bytes());
        v
    }

    #[test]
    fn count_and_trailing_mismatch() {
        let p = sealed(&[0, 0, 0, 0, 2, 0x04, 1, 0, 0, 0]);
        assert_eq!(
            Packet::parse(&p).unwrap_err(),
            DecodeError::new(DecodeReason::CountMismatch, 4)
        );
        let p = sealed(&[0, 0, 0, 0, 1, 0x04, 1, 0, 0, 0, 0x04]);
        assert_eq!(
            Packet::parse(&p).unwrap_err(),
            DecodeError::new(DecodeReason::TrailingBytes, 10)
        );
        let p = sealed(&[0, 0, 0, 0, 1, 0x04, 1, 0]);
        assert_eq!(
            Packet::parse(&p).unwrap_err(),
            DecodeError::new(DecodeReason::Truncated, 6)
        );
        assert_eq!(
            Packet::parse(&[1, 2, 3]).unwrap_err().reason,
            DecodeReason::Truncated
        );
        assert_eq!(
            Packet::parse(&[0; MAX_PACKET + 1]).unwrap_err().reason,
            DecodeReason::Oversized
        );
    }

    #[test]
    fn writer_refuses_what_does_not_fit_and_stays_valid() {
        let mut buf = [0u8; PACKET_OVERHEAD + 20];
        let mut w = PacketWriter::new(&mut buf, 0).unwrap();
        w.push(&Message::Takeover(Takeover { epoch: 1, count: 2 }))
            .unwrap();
        let big = Message::Takeover(Takeover { epoch: 3, count: 4 });
        assert!(!w.fits(&big));
        assert!(matches!(
            w.push(&big),
            Err(EncodeError::BufferTooSmall { needed: 43 })
        ));
        let n = w.finish();
        assert_eq!(Packet::parse(&buf[..n]).unwrap().count(), 1);
    }
}
