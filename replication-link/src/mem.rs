//! In-memory transports for tests and host tools: a byte pipe (two
//! `embedded-io` ends, for [`StreamTransport`](crate::StreamTransport)) and
//! a frame pipe (two [`FrameDevice`] ends, for
//! [`EthernetTransport`](crate::EthernetTransport)). No heap: the pipe owns
//! fixed queues and its ends borrow it.
//!
//! ```
//! use replication_link::mem::BytePipe;
//! use embedded_io::{Read, Write};
//!
//! let pipe: BytePipe<64> = BytePipe::new();
//! let (mut a, mut b) = pipe.ends();
//! a.write_all(b"hi").unwrap();
//! let mut buf = [0u8; 2];
//! b.read_exact(&mut buf).unwrap();
//! assert_eq!(&buf, b"hi");
//! ```

use core::cell::RefCell;

use heapless::{Deque, Vec};

use crate::framing::ethernet::MAX_FRAME;
use crate::transport::FrameDevice;

/// Errors of the in-memory ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MemError {
    /// A write found the queue full (a real device would block).
    Full,
    /// A read found the queue empty (a real device would block).
    Empty,
}

impl core::fmt::Display for MemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Full => "in-memory pipe full",
            Self::Empty => "in-memory pipe empty",
        })
    }
}

impl core::error::Error for MemError {}

impl embedded_io::Error for MemError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Self::Full => embedded_io::ErrorKind::OutOfMemory,
            Self::Empty => embedded_io::ErrorKind::Other,
        }
    }
}

/// Two byte queues of `N` bytes each, one per direction.
pub struct BytePipe<const N: usize> {
    queues: [RefCell<Deque<u8, N>>; 2],
}

impl<const N: usize> Default for BytePipe<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> BytePipe<N> {
    /// An empty pipe.
    pub const fn new() -> Self {
        Self {
            queues: [RefCell::new(Deque::new()), RefCell::new(Deque::new())],
        }
    }

    /// The two ends: what one writes, the other reads.
    pub fn ends(&self) -> (ByteEnd<'_, N>, ByteEnd<'_, N>) {
        let [q0, q1] = &self.queues;
        (ByteEnd { rx: q0, tx: q1 }, ByteEnd { rx: q1, tx: q0 })
    }
}

/// One end of a [`BytePipe`].
pub struct ByteEnd<'a, const N: usize> {
    rx: &'a RefCell<Deque<u8, N>>,
    tx: &'a RefCell<Deque<u8, N>>,
}

impl<const N: usize> embedded_io::ErrorType for ByteEnd<'_, N> {
    type Error = MemError;
}

impl<const N: usize> embedded_io::Read for ByteEnd<'_, N> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, MemError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut q = self.rx.borrow_mut();
        if q.is_empty() {
            return Err(MemError::Empty);
        }
        let mut n = 0;
        for slot in buf.iter_mut() {
            match q.pop_front() {
                Some(b) => *slot = b,
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }
}

impl<const N: usize> embedded_io::ReadReady for ByteEnd<'_, N> {
    fn read_ready(&mut self) -> Result<bool, MemError> {
        Ok(!self.rx.borrow().is_empty())
    }
}

impl<const N: usize> embedded_io::Write for ByteEnd<'_, N> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, MemError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut q = self.tx.borrow_mut();
        let mut n = 0;
        for &b in buf {
            if q.push_back(b).is_err() {
                break;
            }
            n += 1;
        }
        if n == 0 { Err(MemError::Full) } else { Ok(n) }
    }

    fn flush(&mut self) -> Result<(), MemError> {
        Ok(())
    }
}

type Frame = Vec<u8, MAX_FRAME>;

/// Two queues of `F` frames each, one per direction. A full queue drops
/// the frame, as a network card would.
pub struct FramePipe<const F: usize> {
    queues: [RefCell<Deque<Frame, F>>; 2],
}

impl<const F: usize> Default for FramePipe<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const F: usize> FramePipe<F> {
    /// An empty pipe.
    pub const fn new() -> Self {
        Self {
            queues: [RefCell::new(Deque::new()), RefCell::new(Deque::new())],
        }
    }

    /// The two ends: what one sends, the other receives.
    pub fn ends(&self) -> (FrameEnd<'_, F>, FrameEnd<'_, F>) {
        let [q0, q1] = &self.queues;
        (FrameEnd { rx: q0, tx: q1 }, FrameEnd { rx: q1, tx: q0 })
    }
}

/// One end of a [`FramePipe`].
pub struct FrameEnd<'a, const F: usize> {
    rx: &'a RefCell<Deque<Frame, F>>,
    tx: &'a RefCell<Deque<Frame, F>>,
}

impl<const F: usize> FrameDevice for FrameEnd<'_, F> {
    type Error = MemError;

    fn send_frame(&mut self, frame: &[u8]) -> Result<(), MemError> {
        let frame = Frame::from_slice(frame).map_err(|_| MemError::Full)?;
        // A full queue drops the frame.
        let _ = self.tx.borrow_mut().push_back(frame);
        Ok(())
    }

    fn recv_frame(&mut self, buf: &mut [u8]) -> Result<Option<usize>, MemError> {
        let Some(frame) = self.rx.borrow_mut().pop_front() else {
            return Ok(None);
        };
        let dst = buf.get_mut(..frame.len()).ok_or(MemError::Full)?;
        dst.copy_from_slice(&frame);
        Ok(Some(frame.len()))
    }
}
