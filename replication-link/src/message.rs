//! The messages and their fixed little-endian layouts.
//!
//! Every message starts with a one-byte [`Tag`]; the body that follows has a
//! fixed layout (the two variable parts, the interrupt list of an
//! [`EpochEnd`] and the data of a [`StateChunk`], are preceded by their
//! length). Layouts are given in the crate's `README.md` and pinned by the
//! const assertions and byte-exact unit tests below.

use heapless::Vec;

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, DecodeReason, EncodeError};

/// The four bytes that open every [`Hello`]: `b"TNDM"`.
pub const MAGIC: [u8; 4] = *b"TNDM";
/// The protocol version this crate speaks.
///
/// Version 2 added [`Released`] (tag `0x08`): a version 1 peer would refuse
/// that tag mid-run, so the handshake refuses the pairing up front.
pub const PROTOCOL_VERSION: u16 = 3;
/// Most interrupts (INTIDs) one [`EpochEnd`] carries.
pub const MAX_INTERRUPTS: usize = 16;
/// Most data bytes one [`StateChunk`] carries (a 4 KiB page is four chunks).
pub const STATE_CHUNK_MAX: usize = 1024;
/// Largest encoded message: a full [`StateChunk`].
pub const MAX_MESSAGE: usize = StateChunk::HEADER_SIZE + STATE_CHUNK_MAX;

/// A 32-byte digest (SHA-256 recommended; the link only compares bytes).
pub type Digest = [u8; 32];

/// A message tag: the first byte of every encoded message.
#[repr(u8)]
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// [`Hello`]
    Hello = 0x01,
    /// [`LogEntry`]
    LogEntry = 0x02,
    /// [`EpochEnd`]
    EpochEnd = 0x03,
    /// [`Ack`]
    Ack = 0x04,
    /// [`Heartbeat`]
    Heartbeat = 0x05,
    /// [`Takeover`]
    Takeover = 0x06,
    /// [`StateChunk`]
    StateChunk = 0x07,
    /// [`Released`]
    Released = 0x08,
}

impl Tag {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x01 => Self::Hello,
            0x02 => Self::LogEntry,
            0x03 => Self::EpochEnd,
            0x04 => Self::Ack,
            0x05 => Self::Heartbeat,
            0x06 => Self::Takeover,
            0x07 => Self::StateChunk,
            0x08 => Self::Released,
            _ => return None,
        })
    }
}

/// What a board is in the pairing.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs the guest for real and ships the log.
    Primary = 1,
    /// Replays the primary's log, ready to take over.
    Backup = 2,
    /// Host tool that stores a primary's log (plays the backup's part).
    Recorder = 3,
    /// Host tool that feeds a stored log to a backup (plays the primary's part).
    Replayer = 4,
}

impl Role {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Primary,
            2 => Self::Backup,
            3 => Self::Recorder,
            4 => Self::Replayer,
            _ => return None,
        })
    }

    /// Whether this role produces the log (primary or replayer).
    pub const fn is_source(self) -> bool {
        matches!(self, Self::Primary | Self::Replayer)
    }
}

/// Handshake: who I am and what I run. Sent by the link until the peer's
/// Hello arrives; the pairing is refused when the two differ (see
/// [`Hello::check_peer`]).
///
/// The layout of `Hello` is frozen across protocol versions, so two boards
/// of different versions can still tell each other why they do not pair.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x01` |
/// | 1 | 4 | magic `b"TNDM"` |
/// | 5 | 2 | protocol version |
/// | 7 | 1 | role |
/// | 8 | 1 | flags: bit 0 = `seen_peer`, others zero |
/// | 9 | 8 | session |
/// | 17 | 32 | hypervisor build digest |
/// | 49 | 32 | guest image digest |
/// | 81 | 32 | configuration digest |
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Protocol version ([`PROTOCOL_VERSION`] for this crate).
    pub version: u16,
    /// The sender's role.
    pub role: Role,
    /// Set by the link: the sender has already received the peer's Hello
    /// (so the peer need not answer). Not part of the identity.
    pub seen_peer: bool,
    /// Chosen by the sender at boot (any value that differs between boots,
    /// such as a counter reading): a new value tells the peer that the
    /// sender restarted.
    pub session: u64,
    /// Digest of the hypervisor build.
    pub build: Digest,
    /// Digest of the guest image (kernel, initramfs, DTB inputs).
    pub guest_image: Digest,
    /// Digest of the configuration (memory size, devices, epoch length ...).
    pub config: Digest,
}

/// Flag bit of [`Hello::seen_peer`].
const HELLO_SEEN_PEER: u8 = 0x01;

impl Hello {
    /// Encoded size, tag included.
    pub const WIRE_SIZE: usize = 113;

    /// A Hello for this protocol version.
    pub const fn new(
        role: Role,
        session: u64,
        build: Digest,
        guest_image: Digest,
        config: Digest,
    ) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            role,
            seen_peer: false,
            session,
            build,
            guest_image,
            config,
        }
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.bytes(&MAGIC)?;
        w.u16(self.version)?;
        w.u8(self.role as u8)?;
        w.u8(if self.seen_peer { HELLO_SEEN_PEER } else { 0 })?;
        w.u64(self.session)?;
        w.bytes(&self.build)?;
        w.bytes(&self.guest_image)?;
        w.bytes(&self.config)
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        if r.array::<4>()? != MAGIC {
            return Err(DecodeError::new(DecodeReason::BadMagic, at));
        }
        let version = r.u16()?;
        let at = r.offset();
        let role = Role::from_u8(r.u8()?).ok_or(DecodeError::new(DecodeReason::UnknownRole, at))?;
        let at = r.offset();
        let flags = r.u8()?;
        if flags & !HELLO_SEEN_PEER != 0 {
            return Err(DecodeError::new(DecodeReason::Reserved, at));
        }
        Ok(Self {
            version,
            role,
            seen_peer: flags & HELLO_SEEN_PEER != 0,
            session: r.u64()?,
            build: r.array()?,
            guest_image: r.array()?,
            config: r.array()?,
        })
    }
}

/// What kind of environment input a [`LogEntry`] records.
///
/// Values not listed are reserved for later versions; a decoder of this
/// version refuses them ([`DecodeReason::UnknownInputKind`]).
#[repr(u8)]
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// A trapped counter read (CNTVCT_EL0, CNTPCT_EL0). `source` = the
    /// system register encoding, `detail` = 0.
    CounterRead = 1,
    /// A trapped virtual timer register read (CNTV_CTL/CVAL/TVAL).
    /// `source` = the system register encoding, `detail` = 0.
    TimerRegRead = 2,
    /// An emulated device MMIO read. `source` = the guest physical address,
    /// `detail` = the access size in bytes (1, 2, 4 or 8).
    MmioRead = 3,
    /// A firmware (PSCI/SMCCC) call result. `source` = the function ID,
    /// `detail` = the result register number (one entry per register).
    FirmwareResult = 4,
    /// Any other trapped system register read whose value is not a function
    /// of the guest's state. `source` = the system register encoding.
    SysRegRead = 5,
    /// The primary advanced idle guest time. `source` = 0, `value` = the
    /// new guest counter value.
    TimeAdvance = 6,
}

impl InputKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::CounterRead,
            2 => Self::TimerRegRead,
            3 => Self::MmioRead,
            4 => Self::FirmwareResult,
            5 => Self::SysRegRead,
            6 => Self::TimeAdvance,
            _ => return None,
        })
    }
}

/// One environment input the primary performed: the backup consumes
/// `value` instead of performing the access, after checking that `kind`,
/// `source`, `detail` and `count` match its own access.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x02` |
/// | 1 | 1 | kind ([`InputKind`]) |
/// | 2 | 1 | detail |
/// | 3 | 8 | epoch |
/// | 11 | 8 | count |
/// | 19 | 8 | source |
/// | 27 | 8 | value |
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// The epoch the access happened in.
    pub epoch: u64,
    /// Guest instructions retired in this epoch before the access.
    pub count: u64,
    /// What was read.
    pub kind: InputKind,
    /// Kind-specific: access size for MMIO, result register for firmware.
    pub detail: u8,
    /// Kind-specific: register encoding, address or function ID.
    pub source: u64,
    /// The value the guest observed.
    pub value: u64,
}

impl LogEntry {
    /// Encoded size, tag included.
    pub const WIRE_SIZE: usize = 35;

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.kind as u8)?;
        w.u8(self.detail)?;
        w.u64(self.epoch)?;
        w.u64(self.count)?;
        w.u64(self.source)?;
        w.u64(self.value)
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let kind = InputKind::from_u8(r.u8()?)
            .ok_or(DecodeError::new(DecodeReason::UnknownInputKind, at))?;
        Ok(Self {
            kind,
            detail: r.u8()?,
            epoch: r.u64()?,
            count: r.u64()?,
            source: r.u64()?,
            value: r.u64()?,
        })
    }
}

/// The end of an epoch: where the primary stopped, which interrupts it
/// injects there, the fingerprint of the guest state, and the guest time
/// at which the next epoch starts.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x03` |
/// | 1 | 8 | epoch |
/// | 9 | 8 | count (guest instructions in the epoch) |
/// | 17 | 8 | pc |
/// | 25 | 8 | fingerprint |
/// | 33 | 8 | time (the next epoch's base guest time, counter ticks) |
/// | 41 | 1 | n, number of interrupts (at most 16) |
/// | 42 | 4 × n | INTIDs, in injection order |
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EpochEnd {
    /// The epoch that ends.
    pub epoch: u64,
    /// Guest instructions retired in the epoch.
    pub count: u64,
    /// Guest PC at the boundary.
    pub pc: u64,
    /// Hash of the guest state at the boundary (divergence detection).
    pub fingerprint: u64,
    /// Guest time (counter ticks) at the first instruction of the next
    /// epoch: inside an epoch guest time is this base plus a function of
    /// the instruction count, so that no counter read is logged.
    pub time: u64,
    /// Interrupts to inject at the boundary (GIC INTIDs).
    pub interrupts: Vec<u32, MAX_INTERRUPTS>,
}

impl EpochEnd {
    /// Encoded size without interrupts, tag included.
    pub const HEADER_SIZE: usize = 42;

    /// Encoded size of this epoch end.
    pub fn wire_size(&self) -> usize {
        Self::HEADER_SIZE + 4 * self.interrupts.len()
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.epoch)?;
        w.u64(self.count)?;
        w.u64(self.pc)?;
        w.u64(self.fingerprint)?;
        w.u64(self.time)?;
        // The Vec's capacity (16) bounds the length, so it fits a u8.
        w.u8(u8::try_from(self.interrupts.len()).map_err(|_| EncodeError::TooLarge)?)?;
        for intid in &self.interrupts {
            w.u32(*intid)?;
        }
        Ok(())
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let epoch = r.u64()?;
        let count = r.u64()?;
        let pc = r.u64()?;
        let fingerprint = r.u64()?;
        let time = r.u64()?;
        let at = r.offset();
        let n = usize::from(r.u8()?);
        if n > MAX_INTERRUPTS {
            return Err(DecodeError::new(DecodeReason::TooManyInterrupts, at));
        }
        let mut interrupts = Vec::new();
        for _ in 0..n {
            let intid = r.u32()?;
            interrupts
                .push(intid)
                .map_err(|_| DecodeError::new(DecodeReason::TooManyInterrupts, at))?;
        }
        Ok(Self {
            epoch,
            count,
            pc,
            fingerprint,
            time,
            interrupts,
        })
    }
}

/// Cumulative acknowledgement: every sequenced message numbered below
/// `up_to` has arrived. Sent by the link; never delivered to the caller.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x04` |
/// | 1 | 4 | up_to (next sequence number expected) |
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ack {
    /// The next sequence number the receiver expects.
    pub up_to: u32,
}

impl Ack {
    /// Encoded size, tag included.
    pub const WIRE_SIZE: usize = 5;
}

/// Liveness signal, sent when the link has been quiet for the heartbeat
/// interval. Sent by the link; never delivered to the caller.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x05` |
/// | 1 | 8 | sender's clock, microseconds |
/// | 9 | 8 | sender's current epoch (informative) |
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// The sender's clock when it sent this, in microseconds.
    pub time_us: u64,
    /// The sender's current epoch (for consoles and post-mortems).
    pub epoch: u64,
}

impl Heartbeat {
    /// Encoded size, tag included.
    pub const WIRE_SIZE: usize = 17;
}

/// The sender (a former backup) has become primary: it replayed the log up
/// to `count` in `epoch` and runs on from there. A former primary that
/// receives it must stop (split-brain guard).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x06` |
/// | 1 | 8 | epoch |
/// | 9 | 8 | count |
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Takeover {
    /// The epoch in which the sender went live.
    pub epoch: u64,
    /// The guest instruction count in that epoch where it went live.
    pub count: u64,
}

impl Takeover {
    /// Encoded size, tag included.
    pub const WIRE_SIZE: usize = 17;
}

/// A piece of guest state for a backup that joins a running primary.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x07` |
/// | 1 | 4 | transfer id |
/// | 5 | 8 | offset of this chunk in the transfer |
/// | 13 | 8 | total length of the transfer |
/// | 21 | 2 | n, data length (at most 1024) |
/// | 23 | n | data |
///
/// A decoder refuses `offset + n > total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StateChunk {
    /// Which transfer this belongs to (a new id for each attempt).
    pub transfer: u32,
    /// Byte offset of `data` in the transfer.
    pub offset: u64,
    /// Total bytes in the transfer.
    pub total: u64,
    /// The bytes.
    pub data: Vec<u8, STATE_CHUNK_MAX>,
}

impl StateChunk {
    /// Encoded size without data, tag included.
    pub const HEADER_SIZE: usize = 23;

    /// Encoded size of this chunk.
    pub fn wire_size(&self) -> usize {
        Self::HEADER_SIZE + self.data.len()
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32(self.transfer)?;
        w.u64(self.offset)?;
        w.u64(self.total)?;
        w.u16(u16::try_from(self.data.len()).map_err(|_| EncodeError::TooLarge)?)?;
        w.bytes(&self.data)
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transfer = r.u32()?;
        let offset = r.u64()?;
        let total = r.u64()?;
        let at = r.offset();
        let n = r.u16()?;
        let in_bounds = offset
            .checked_add(u64::from(n))
            .is_some_and(|end| end <= total);
        if usize::from(n) > STATE_CHUNK_MAX || !in_bounds {
            return Err(DecodeError::new(DecodeReason::BadChunk, at));
        }
        let data = Vec::from_slice(r.bytes(usize::from(n))?)
            .map_err(|_| DecodeError::new(DecodeReason::BadChunk, at))?;
        Ok(Self {
            transfer,
            offset,
            total,
            data,
        })
    }
}

/// How much guest output the primary has let leave the board: `output`
/// bytes in total, counted from the start of the run. The primary sends it
/// (at epoch boundaries) so that a backup may drop the output of its own
/// guest that is already out, and keep only what it would have to emit if
/// it took over now (the output rule, DESIGN.md §5 and §10): without it
/// the backup's buffer would grow without bound.
///
/// Sequenced, so it arrives after every log message sent before it; a
/// backup takes the largest value seen (it never goes down).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | tag `0x08` |
/// | 1 | 8 | output: bytes released in total |
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Released {
    /// Bytes of guest output released in total, from the start.
    pub output: u64,
}

impl Released {
    /// Encoded size, tag included.
    pub const WIRE_SIZE: usize = 9;
}

/// Every message of the protocol.
///
/// A `Message` is a fixed-size value (1,064 bytes on a 64-bit target,
/// sized by a full [`StateChunk`]) so that it lives in fixed queues with no
/// heap.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(
    clippy::large_enum_variant,
    reason = "no heap to box into: the size is fixed and documented"
)]
pub enum Message {
    /// Handshake (link control).
    Hello(Hello),
    /// An environment input (sequenced).
    LogEntry(LogEntry),
    /// An epoch boundary (sequenced).
    EpochEnd(EpochEnd),
    /// Cumulative acknowledgement (link control).
    Ack(Ack),
    /// Liveness (link control).
    Heartbeat(Heartbeat),
    /// A backup went live (sequenced).
    Takeover(Takeover),
    /// State transfer (sequenced).
    StateChunk(StateChunk),
    /// How much output the primary released (sequenced).
    Released(Released),
}

impl Message {
    /// The tag byte this message starts with.
    pub const fn tag(&self) -> Tag {
        match self {
            Self::Hello(_) => Tag::Hello,
            Self::LogEntry(_) => Tag::LogEntry,
            Self::EpochEnd(_) => Tag::EpochEnd,
            Self::Ack(_) => Tag::Ack,
            Self::Heartbeat(_) => Tag::Heartbeat,
            Self::Takeover(_) => Tag::Takeover,
            Self::StateChunk(_) => Tag::StateChunk,
            Self::Released(_) => Tag::Released,
        }
    }

    /// Whether the message takes a sequence number and is delivered
    /// reliably, in order, exactly once. `Hello`, `Ack` and `Heartbeat`
    /// are the link's own and are not.
    pub const fn is_sequenced(&self) -> bool {
        !matches!(self, Self::Hello(_) | Self::Ack(_) | Self::Heartbeat(_))
    }

    /// Encoded size in bytes, tag included.
    pub fn wire_size(&self) -> usize {
        match self {
            Self::Hello(_) => Hello::WIRE_SIZE,
            Self::LogEntry(_) => LogEntry::WIRE_SIZE,
            Self::EpochEnd(m) => m.wire_size(),
            Self::Ack(_) => Ack::WIRE_SIZE,
            Self::Heartbeat(_) => Heartbeat::WIRE_SIZE,
            Self::Takeover(_) => Takeover::WIRE_SIZE,
            Self::StateChunk(m) => m.wire_size(),
            Self::Released(_) => Released::WIRE_SIZE,
        }
    }

    /// Encodes the message at the start of `buf`; returns the bytes written.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] when `buf` is shorter than
    /// [`wire_size`](Self::wire_size); nothing useful is left in `buf` then.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let needed = self.wire_size();
        if buf.len() < needed {
            return Err(EncodeError::BufferTooSmall { needed });
        }
        let mut w = Writer::new(buf);
        self.encode_into(&mut w)?;
        Ok(w.len())
    }

    pub(crate) fn encode_into(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(self.tag() as u8)?;
        match self {
            Self::Hello(m) => m.encode_body(w),
            Self::LogEntry(m) => m.encode_body(w),
            Self::EpochEnd(m) => m.encode_body(w),
            Self::Ack(m) => w.u32(m.up_to),
            Self::Heartbeat(m) => {
                w.u64(m.time_us)?;
                w.u64(m.epoch)
            }
            Self::Takeover(m) => {
                w.u64(m.epoch)?;
                w.u64(m.count)
            }
            Self::StateChunk(m) => m.encode_body(w),
            Self::Released(m) => w.u64(m.output),
        }
    }

    /// Decodes one message from the start of `buf`; returns it and the
    /// number of bytes it took. Bytes after it are left alone.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] whose offset is relative to `buf`:
    /// [`Truncated`](DecodeReason::Truncated) when `buf` ends early,
    /// [`UnknownTag`](DecodeReason::UnknownTag),
    /// [`UnknownInputKind`](DecodeReason::UnknownInputKind),
    /// [`UnknownRole`](DecodeReason::UnknownRole),
    /// [`BadMagic`](DecodeReason::BadMagic),
    /// [`Reserved`](DecodeReason::Reserved),
    /// [`TooManyInterrupts`](DecodeReason::TooManyInterrupts) or
    /// [`BadChunk`](DecodeReason::BadChunk) for values out of range.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let msg = Self::decode_from(&mut r)?;
        Ok((msg, r.offset()))
    }

    /// Decodes a buffer that holds exactly one message.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode), plus
    /// [`TrailingBytes`](DecodeReason::TrailingBytes) when bytes follow it.
    pub fn decode_exact(buf: &[u8]) -> Result<Self, DecodeError> {
        let (msg, used) = Self::decode(buf)?;
        if used != buf.len() {
            return Err(DecodeError::new(DecodeReason::TrailingBytes, used));
        }
        Ok(msg)
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let tag = Tag::from_u8(r.u8()?).ok_or(DecodeError::new(DecodeReason::UnknownTag, at))?;
        Ok(match tag {
            Tag::Hello => Self::Hello(Hello::decode_body(r)?),
            Tag::LogEntry => Self::LogEntry(LogEntry::decode_body(r)?),
            Tag::EpochEnd => Self::EpochEnd(EpochEnd::decode_body(r)?),
            Tag::Ack => Self::Ack(Ack { up_to: r.u32()? }),
            Tag::Heartbeat => Self::Heartbeat(Heartbeat {
                time_us: r.u64()?,
                epoch: r.u64()?,
            }),
            Tag::Takeover => Self::Takeover(Takeover {
                epoch: r.u64()?,
                count: r.u64()?,
            }),
            Tag::StateChunk => Self::StateChunk(StateChunk::decode_body(r)?),
            Tag::Released => Self::Released(Released { output: r.u64()? }),
        })
    }
}

// Layouts fixed at compile time: the sums of the field sizes in the tables.
const _: () = assert!(Hello::WIRE_SIZE == 1 + 4 + 2 + 1 + 1 + 8 + 3 * 32);
const _: () = assert!(LogEntry::WIRE_SIZE == 1 + 1 + 1 + 4 * 8);
const _: () = assert!(EpochEnd::HEADER_SIZE == 1 + 5 * 8 + 1);
const _: () = assert!(Ack::WIRE_SIZE == 1 + 4);
const _: () = assert!(Heartbeat::WIRE_SIZE == 1 + 2 * 8);
const _: () = assert!(Takeover::WIRE_SIZE == 1 + 2 * 8);
const _: () = assert!(StateChunk::HEADER_SIZE == 1 + 4 + 8 + 8 + 2);
const _: () = assert!(Released::WIRE_SIZE == 1 + 8);
// A `Released` does not size a `Message`: the memory table stands.
const _: () = assert!(core::mem::size_of::<Released>() < core::mem::size_of::<StateChunk>());
const _: () = assert!(MAX_INTERRUPTS <= u8::MAX as usize);
const _: () = assert!(STATE_CHUNK_MAX <= u16::MAX as usize);

#[cfg(test)]
mod tests;
