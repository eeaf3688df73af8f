//! # replication-link
//!
//! The wire protocol and link state machine that carry the primary's log of
//! environment inputs to the backup (DESIGN.md §5): a handshake that refuses
//! to pair mismatched boards, reliable in-order exactly-once delivery over a
//! lossy link, heartbeats and failure detection.
//!
//! ## Design principles
//!
//! - **Never a wrong message.** Every packet carries a CRC-32C; a message is
//!   delivered only in sequence order, once. Loss, duplication, reordering
//!   and corruption cost retransmissions, never correctness; a peer that
//!   stays silent is declared failed.
//! - **Fixed layouts, fixed memory.** Every message has a documented
//!   little-endian layout pinned by const assertions and byte-exact tests.
//!   No heap: buffers and queues are `heapless` or arrays, sized at compile
//!   time (table below).
//! - **Decoding never panics.** Malformed, truncated or oversized input is a
//!   typed [`DecodeError`] with a [`DecodeReason`] and a byte offset.
//!   The crate has no `unsafe` and no indexing that can panic; fuzz targets
//!   (`fuzz/`) and a bounded random-input test hold it to that.
//! - **One protocol, any medium.** The [`Link`] speaks to a
//!   [`PacketTransport`]: COBS-framed over an `embedded-io` byte stream
//!   ([`StreamTransport`]: UART, socket) or one packet per Ethernet frame
//!   ([`EthernetTransport`], EtherType 0x88B5).
//! - **Time is an input.** Every timer reads the `now` (microseconds) that
//!   the caller passes, so tests control time and the board uses its own
//!   counter.
//!
//! ## Layers
//!
//! | layer | module | unit |
//! | --- | --- | --- |
//! | messages | [`message`] | one [`Message`], fixed layout |
//! | packet | [`packet`] | seq + n messages + CRC-32C |
//! | framing | [`framing::stream`], [`framing::ethernet`] | COBS + 0x00, or one Ethernet frame |
//! | transport | [`transport`] | moves packets over a device |
//! | reliability | [`reliable`], [`failure_detector`] | go-back-N window, receiver, liveness |
//! | endpoint | [`link`] | handshake, events, timers |
//!
//! ## Messages
//!
//! | tag | message | class | bytes |
//! | --- | --- | --- | --- |
//! | `0x01` | [`Hello`] | link control | 113 |
//! | `0x02` | [`LogEntry`] | sequenced | 35 |
//! | `0x03` | [`EpochEnd`] | sequenced | 34 + 4 × interrupts |
//! | `0x04` | [`Ack`] | link control | 5 |
//! | `0x05` | [`Heartbeat`] | link control | 17 |
//! | `0x06` | [`Takeover`] | sequenced | 17 |
//! | `0x07` | [`StateChunk`] | sequenced | 23 + data |
//! | `0x08` | [`Released`] (since protocol version 2) | sequenced | 9 |
//!
//! Sequenced messages are numbered, delivered in order, exactly once, and
//! acknowledged; the link's own control messages are not. Each type's
//! documentation has its byte layout.
//!
//! ## Memory per endpoint (bytes, 64-bit target)
//!
//! | item | size |
//! | --- | --- |
//! | one [`Message`] (sized for the largest, a 1 KiB [`StateChunk`]) | 1,064 |
//! | [`Link<W>`] | 3,448 + 1,064 × W |
//! | [`Link`] with the default window W = 64 | 71,528 |
//! | [`Link<16>`] | 20,456 |
//! | [`StreamTransport`] (frame being decoded, frame being sent) | 3,120 + the stream |
//! | [`EthernetTransport`] (one frame buffer) | 1,526 + the device |
//!
//! The window slots are sized for the largest message; the unit test
//! `memory_table_holds` checks these figures.
//!
//! ## Example
//!
//! ```
//! use replication_link::mem::BytePipe;
//! use replication_link::*;
//!
//! let hello = |role| Hello::new(role, 1, [1; 32], [2; 32], [3; 32]);
//! let pipe: BytePipe<8192> = BytePipe::new();
//! let (a, b) = pipe.ends();
//! let (mut ta, mut tb) = (StreamTransport::new(a), StreamTransport::new(b));
//! let mut primary: Link<8> = Link::new(hello(Role::Primary), Config::DEFAULT);
//! let mut backup: Link<8> = Link::new(hello(Role::Backup), Config::DEFAULT);
//!
//! let entry = LogEntry {
//!     epoch: 0, count: 1234, kind: InputKind::CounterRead,
//!     detail: 0, source: 0x5F02, value: 0xABCD,
//! };
//! let seq = primary.send(Message::LogEntry(entry)).unwrap();
//! let mut got = None;
//! for now in (0..10_000).step_by(100) {
//!     while let Some(ev) = primary.poll(now, &mut ta).unwrap() {
//!         assert!(matches!(ev, Event::Established(_)));
//!     }
//!     while let Some(ev) = backup.poll(now, &mut tb).unwrap() {
//!         if let Event::Delivered(m) = ev { got = Some(m); }
//!     }
//! }
//! assert_eq!(got, Some(Message::LogEntry(entry)));
//! assert!(primary.is_acked(seq)); // the output rule may let an output go
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
pub mod error;
pub mod failure_detector;
pub mod framing;
pub mod handshake;
pub mod link;
pub mod mem;
pub mod message;
pub mod packet;
pub mod reliable;
pub mod transport;

pub use error::{DecodeError, DecodeReason, EncodeError, SendError, TransportError};
pub use failure_detector::{FailureDetector, Liveness, Timeouts};
pub use framing::ethernet::{ETHERTYPE, EthernetFraming, Mac};
pub use handshake::Refusal;
pub use link::{Config, DEFAULT_WINDOW, DEFAULT_WINDOW_BYTES, Event, Link, LinkState, Stats};
pub use message::{
    Ack, Digest, EpochEnd, Heartbeat, Hello, InputKind, LogEntry, MAX_INTERRUPTS, MAX_MESSAGE,
    Message, PROTOCOL_VERSION, Released, Role, STATE_CHUNK_MAX, StateChunk, Takeover,
};
pub use packet::{MAX_PACKET, Packet, PacketWriter};
pub use reliable::Seq;
pub use transport::{EthernetTransport, FrameDevice, PacketTransport, Received, StreamTransport};

#[cfg(test)]
mod tests;
