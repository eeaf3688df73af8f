//! The replication link on the board: a `replication_link::Link` over the
//! second PL011 (polled), with the physical counter as its clock.

use crate::arch::timer;
use board_support::pl011::Pl011;
use core::convert::Infallible;
use replication_link::failure_detector::Timeouts;
use replication_link::link::{Config, Event, Link};
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

/// Record/replay link timing: the board's clock is QEMU's icount virtual
/// time and the host tools can be slow, so failure detection is lenient.
pub const RECORD_REPLAY: Config = Config {
    heartbeat_interval_us: 100_000,
    retransmit_after_us: 200_000,
    hello_interval_us: 100_000,
    timeouts: Timeouts {
        suspect_after_us: 30_000_000,
        fail_after_us: 60_000_000,
    },
    batch_limit: 512,
};

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

    /// Queues a sequenced message, polling while the send window is full.
    pub fn send(&mut self, msg: Message, mut on_event: impl FnMut(Event)) {
        loop {
            match self.link.send(msg.clone()) {
                Ok(_) => return,
                Err(_) => {
                    if let Some(e) = self.poll() {
                        on_event(e);
                    }
                }
            }
        }
    }
}
