//! Error types: what went wrong, where, and whose fault it is.
//!
//! Decoding errors come from the wire (a peer, a noisy cable or an attacker)
//! and are always recoverable: the link drops the offending frame and waits
//! for the retransmission. Encoding and sending errors are the caller's.

use core::fmt;

/// Why a decoder refused its input.
///
/// `#[repr(u8)]` so that the reason fits a counter table or a one-byte log
/// record on the board. The values are stable; new reasons get new values.
#[repr(u8)]
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DecodeReason {
    /// The input ended before the structure did.
    Truncated = 1,
    /// A message tag byte that this version does not know.
    UnknownTag = 2,
    /// An [`InputKind`](crate::InputKind) byte that this version does not know.
    UnknownInputKind = 3,
    /// A [`Role`](crate::Role) byte that this version does not know.
    UnknownRole = 4,
    /// A `Hello` without the protocol magic.
    BadMagic = 5,
    /// An `EpochEnd` that lists more interrupts than the protocol allows.
    TooManyInterrupts = 6,
    /// A `StateChunk` longer than [`STATE_CHUNK_MAX`](crate::STATE_CHUNK_MAX)
    /// or extending past its transfer's total length.
    BadChunk = 7,
    /// Bytes left over after the last message of a packet.
    TrailingBytes = 8,
    /// The CRC-32C of a packet does not match its contents.
    BadCrc = 9,
    /// A frame or packet longer than the protocol's maximum.
    Oversized = 10,
    /// A stream frame that is not valid COBS.
    BadCobs = 11,
    /// An Ethernet frame with another EtherType.
    WrongEtherType = 12,
    /// An Ethernet frame addressed to another station.
    NotForUs = 13,
    /// A packet whose message count does not match its contents.
    CountMismatch = 14,
    /// A reserved field or flag bit that is not zero.
    Reserved = 15,
}

impl DecodeReason {
    /// A short lowercase description, for consoles and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::UnknownTag => "unknown message tag",
            Self::UnknownInputKind => "unknown input kind",
            Self::UnknownRole => "unknown role",
            Self::BadMagic => "bad magic",
            Self::TooManyInterrupts => "too many interrupts",
            Self::BadChunk => "bad state chunk bounds",
            Self::TrailingBytes => "trailing bytes",
            Self::BadCrc => "CRC mismatch",
            Self::Oversized => "oversized",
            Self::BadCobs => "invalid COBS encoding",
            Self::WrongEtherType => "wrong EtherType",
            Self::NotForUs => "not addressed to us",
            Self::CountMismatch => "message count mismatch",
            Self::Reserved => "reserved field not zero",
        }
    }
}

/// A decoder refused its input: the reason, and the byte offset (from the
/// start of the buffer given to the decoder) where it noticed.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct DecodeError {
    /// What was wrong.
    pub reason: DecodeReason,
    /// Where in the input it was found.
    pub offset: usize,
}

impl DecodeError {
    /// An error of `reason` at byte `offset`.
    pub const fn new(reason: DecodeReason, offset: usize) -> Self {
        Self { reason, offset }
    }

    /// The same error, seen from a buffer in which the decoded one starts at
    /// `base`.
    pub const fn shifted(self, base: usize) -> Self {
        Self {
            reason: self.reason,
            offset: self.offset.saturating_add(base),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason.as_str(), self.offset)
    }
}

impl core::error::Error for DecodeError {}

/// An encoder could not write its output.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// The output buffer is too small: `needed` bytes are required.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
    },
    /// The value cannot be represented on the wire (for example a packet
    /// with more than 255 messages, or a payload above the frame maximum).
    TooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Self::TooLarge => f.write_str("value too large for the wire format"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// [`Link::send`](crate::Link::send) refused a message. The message was not
/// queued; nothing was sent.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SendError {
    /// The send window is full: poll the link until the peer acknowledges
    /// older messages, then try again.
    WindowFull,
    /// `Hello`, `Ack` and `Heartbeat` belong to the link itself.
    ControlMessage,
    /// The link is closed (peer failed or handshake refused).
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WindowFull => "send window full",
            Self::ControlMessage => "control messages are sent by the link itself",
            Self::Closed => "link closed",
        })
    }
}

impl core::error::Error for SendError {}

/// A [`PacketTransport`](crate::PacketTransport) failed.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransportError<E> {
    /// The device below (UART, NIC, socket) reported an error.
    Io(E),
    /// The packet does not fit this transport's frame.
    TooLarge,
    /// The byte stream ended (end of file): the peer closed it.
    Closed,
}

impl<E: fmt::Debug> fmt::Display for TransportError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "link device error: {e:?}"),
            Self::TooLarge => f.write_str("packet larger than the transport's frame"),
            Self::Closed => f.write_str("link stream closed"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for TransportError<E> {}
