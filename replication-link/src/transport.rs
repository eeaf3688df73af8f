//! Transports move whole packets. Two are provided: [`StreamTransport`] over
//! any `embedded-io` byte stream (a UART, a host socket), and
//! [`EthernetTransport`] over any [`FrameDevice`] (a virtio-net or GENET
//! driver, a host raw socket). [`Link`](crate::Link) needs only
//! [`PacketTransport`].

use embedded_io::{Read, ReadReady, Write};

use crate::error::{DecodeError, TransportError};
use crate::framing::ethernet::{EthernetFraming, MAX_FRAME};
use crate::framing::stream::{MAX_STREAM_FRAME, StreamDeframer, encode_frame};
use crate::packet::MAX_PACKET;

/// What a non-blocking receive found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Nothing complete yet.
    Nothing,
    /// A packet of this many bytes is at the start of the caller's buffer.
    /// Its CRC has not been checked yet.
    Packet(usize),
    /// A frame arrived but its framing was bad; it was dropped.
    Rejected(DecodeError),
}

/// Carries packets of up to [`MAX_PACKET`] bytes. Loss, duplication,
/// reordering and corruption are allowed; the [`Link`](crate::Link) copes.
pub trait PacketTransport {
    /// The device's error.
    type Error: core::fmt::Debug;

    /// Sends one packet.
    ///
    /// # Errors
    ///
    /// [`TransportError::Io`] from the device, [`TransportError::TooLarge`]
    /// above [`MAX_PACKET`].
    fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError<Self::Error>>;

    /// Receives one packet into `buf` (at least [`MAX_PACKET`] bytes long)
    /// if one is complete. Never blocks.
    ///
    /// # Errors
    ///
    /// [`TransportError::Io`] from the device, [`TransportError::Closed`]
    /// when a stream reached its end.
    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<Self::Error>>;
}

/// A device that sends and receives whole Ethernet frames (FCS excluded).
pub trait FrameDevice {
    /// The device's error.
    type Error: core::fmt::Debug;
    /// Sends one frame of at most [`MAX_FRAME`] bytes.
    ///
    /// # Errors
    ///
    /// Whatever the device reports.
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), Self::Error>;
    /// Copies one received frame into `buf` (at least [`MAX_FRAME`] bytes)
    /// and returns its length, or `None` when none is waiting. Never blocks.
    ///
    /// # Errors
    ///
    /// Whatever the device reports.
    fn recv_frame(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error>;
}

/// Bytes read from the stream per `read` call.
const READ_CHUNK: usize = 64;

/// Packets over a byte stream, COBS-framed ([`crate::framing::stream`]).
///
/// Reads only while [`ReadReady::read_ready`] says a read will not block,
/// so [`recv_packet`](PacketTransport::recv_packet) never blocks. Writes
/// block until the frame is written and flushed.
pub struct StreamTransport<T> {
    io: T,
    deframer: StreamDeframer,
    tx: [u8; MAX_STREAM_FRAME],
    pending: [u8; READ_CHUNK],
    pending_at: usize,
    pending_len: usize,
}

impl<T: Read + Write + ReadReady> StreamTransport<T> {
    /// Wraps a byte stream.
    pub const fn new(io: T) -> Self {
        Self {
            io,
            deframer: StreamDeframer::new(),
            tx: [0; MAX_STREAM_FRAME],
            pending: [0; READ_CHUNK],
            pending_at: 0,
            pending_len: 0,
        }
    }

    /// The stream inside.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Feeds the bytes read but not yet consumed to the deframer.
    fn feed_pending(&mut self, buf: &mut [u8]) -> Option<Received> {
        while self.pending_at < self.pending_len {
            let data = self
                .pending
                .get(self.pending_at..self.pending_len)
                .unwrap_or(&[]);
            let (used, got) = self.deframer.feed(data);
            self.pending_at = self.pending_at.saturating_add(used.max(1));
            match got {
                None => {}
                Some(Err(e)) => return Some(Received::Rejected(e)),
                Some(Ok(packet)) => {
                    return Some(match buf.get_mut(..packet.len()) {
                        Some(dst) => {
                            dst.copy_from_slice(packet);
                            Received::Packet(packet.len())
                        }
                        None => Received::Rejected(DecodeError::new(
                            crate::DecodeReason::Oversized,
                            buf.len(),
                        )),
                    });
                }
            }
        }
        None
    }
}

impl<T: Read + Write + ReadReady> PacketTransport for StreamTransport<T> {
    type Error = T::Error;

    fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError<T::Error>> {
        let n = encode_frame(packet, &mut self.tx).map_err(|_| TransportError::TooLarge)?;
        let frame = self.tx.get(..n).unwrap_or(&[]);
        self.io.write_all(frame).map_err(TransportError::Io)?;
        self.io.flush().map_err(TransportError::Io)
    }

    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<T::Error>> {
        // Bounded so that a peer streaming without pause cannot hold us here.
        for _ in 0..(2 * MAX_STREAM_FRAME / READ_CHUNK + 2) {
            if let Some(r) = self.feed_pending(buf) {
                return Ok(r);
            }
            if !self.io.read_ready().map_err(TransportError::Io)? {
                return Ok(Received::Nothing);
            }
            let n = self
                .io
                .read(&mut self.pending)
                .map_err(TransportError::Io)?;
            if n == 0 {
                return Err(TransportError::Closed);
            }
            self.pending_at = 0;
            self.pending_len = n.min(READ_CHUNK);
        }
        Ok(Received::Nothing)
    }
}

/// Packets over Ethernet frames ([`crate::framing::ethernet`]).
pub struct EthernetTransport<D> {
    device: D,
    framing: EthernetFraming,
    frame: [u8; MAX_FRAME],
}

impl<D: FrameDevice> EthernetTransport<D> {
    /// Wraps a frame device with our and the peer's addresses.
    pub const fn new(device: D, framing: EthernetFraming) -> Self {
        Self {
            device,
            framing,
            frame: [0; MAX_FRAME],
        }
    }

    /// The device inside.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.device
    }
}

impl<D: FrameDevice> PacketTransport for EthernetTransport<D> {
    type Error = D::Error;

    fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError<D::Error>> {
        let n = self
            .framing
            .encode(packet, &mut self.frame)
            .map_err(|_| TransportError::TooLarge)?;
        self.device
            .send_frame(self.frame.get(..n).unwrap_or(&[]))
            .map_err(TransportError::Io)
    }

    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<D::Error>> {
        let Some(n) = self
            .device
            .recv_frame(&mut self.frame)
            .map_err(TransportError::Io)?
        else {
            return Ok(Received::Nothing);
        };
        let frame = self.frame.get(..n).unwrap_or(&[]);
        Ok(match self.framing.decode(frame) {
            Err(e) => Received::Rejected(e),
            Ok(packet) => match buf.get_mut(..packet.len()) {
                Some(dst) => {
                    dst.copy_from_slice(packet);
                    Received::Packet(packet.len())
                }
                None => {
                    Received::Rejected(DecodeError::new(crate::DecodeReason::Oversized, MAX_PACKET))
                }
            },
        })
    }
}
