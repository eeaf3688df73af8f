//! The replication link on the board: a `replication_link::Link` over the
//! second PL011 (polled), with the physical counter as its clock.

use crate::arch::timer;
use board_support::pl011::Pl011;
use core::convert::Infallible;
use el2_hypervisor::replica::engine::PeerGone;
use el2_hypervisor::replica::link_timing::RECORD_REPLAY;
use replication_link::SendError;
use replication_link::link::{Event, Link};
use replication_link::message::{Hello, Message};
use replication_link::transport::StreamTransport;

/// The link UART as an `embedded-io` byte stream.
pub struct UartIo(Pl011);

impl embedded_io::ErrorType for UartIo {
    type Error = Infallible;
}

impl embedded_io::Read for UartIo {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        while n == 0 {
            while let Some(slot) = buf.get_mut(n) {
                match self.0.read_byte() {
                    Some(b) => {
                        *slot = b;
                        n += 1;
                    }
                    None => break,
                }
            }
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for UartIo {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.rx_ready())
    }
}

impl embedded_io::Write for UartIo {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.write_raw(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The link endpoint and its transport.
pub struct LinkPort {
    pub link: Link,
    transport: StreamTransport<UartIo>,
}

/// Microseconds on the physical counter.
pub fn now_us() -> u64 {
    let f = timer::frequency().max(1);
    ((timer::counter() as u128 * 1_000_000) / f as u128) as u64
}

impl LinkPort {
    /// # Safety
    /// `base` is the link PL011, used by nothing else.
    pub unsafe fn new(base: u64, hello: Hello) -> Self {
        // SAFETY: forwarded from the caller.
        let uart = unsafe { Pl011::new(base as usize) };
        Self {
            link: Link::new(hello, RECORD_REPLAY),
            transport: StreamTransport::new(UartIo(uart)),
        }
    }

    /// Runs the link once; returns the next event, if any.
    pub fn poll(&mut self) -> Option<Event> {
        // The UART never fails (Infallible); a malformed packet is the
        // link's business and never an error here.
        self.link.poll(now_us(), &mut self.transport).ok().flatten()
    }

    /// Queues a sequenced message, polling (and handing each event to
    /// `on_event`) while the send window is full; `PeerGone` once the link
    /// is closed, or when `on_event` says so.
    pub fn send(
        &mut self,
        msg: Message,
        mut on_event: impl FnMut(Event) -> Result<(), PeerGone>,
    ) -> Result<(), PeerGone> {
        loop {
            match self.link.send(msg.clone()) {
                Ok(_) => return Ok(()),
                Err(SendError::Closed) => return Err(PeerGone),
                Err(_) => {
                    if let Some(e) = self.poll() {
                        on_event(e)?;
                    }
                }
            }
        }
    }
}
