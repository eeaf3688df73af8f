//! What carries the replication link's packets on this board
//! ([`Medium`], the `Transport` of `el2_hypervisor::hw::ReplicaHw`): the
//! link UART (a second PL011, or the Pi 4's mini-UART) as a polled byte
//! stream (record, replay, a serial pair) or the virtio-net NIC (an
//! Ethernet pair). The link itself, its clock and
//! its counting are the library's (`replica::session::LinkPort`).

use super::virtio_net::{NetError, VirtioNet};
use board_support::mini_uart::MiniUart;
use board_support::pl011::Pl011;
use core::convert::Infallible;
use el2_hypervisor::replica::session::LinkPort;
use replication_link::framing::ethernet::BROADCAST;
use replication_link::link::Config;
use replication_link::message::Hello;
use replication_link::transport::{EthernetTransport, PacketTransport, Received, StreamTransport};
use replication_link::{EthernetFraming, TransportError};

/// The UART that carries the link.
pub enum LinkUart {
    /// A PL011 that is not the console (QEMU virt's second `-serial`).
    Pl011(Pl011),
    /// The BCM2835 mini-UART (QEMU raspi4b's second `-serial`).
    Mini(MiniUart),
}

impl LinkUart {
    fn read_byte(&self) -> Option<u8> {
        match self {
            Self::Pl011(u) => u.read_byte(),
            Self::Mini(u) => u.read_byte(),
        }
    }
    fn rx_ready(&self) -> bool {
        match self {
            Self::Pl011(u) => u.rx_ready(),
            Self::Mini(u) => u.rx_ready(),
        }
    }
    fn write_raw(&self, bytes: &[u8]) {
        match self {
            Self::Pl011(u) => u.write_raw(bytes),
            Self::Mini(u) => u.write_raw(bytes),
        }
    }
}

/// The link UART as an `embedded-io` byte stream.
pub struct UartIo(LinkUart);

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

/// What carries the link's packets.
#[allow(
    clippy::large_enum_variant,
    reason = "one per board, in a static: no heap, and the variants are within 25% of each other"
)]
pub enum Medium {
    Serial(StreamTransport<UartIo>),
    Ethernet(EthernetTransport<VirtioNet>),
}

/// Which kind of UART a serial link is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    Pl011,
    Mini,
}

/// The link over a UART.
///
/// # Safety
/// `base` is the link UART of that kind, used by nothing else.
/// `timing`: the PL011's baud rate, when no firmware set it
/// (`Board::link_pl011_timing`).
pub unsafe fn serial(
    kind: UartKind,
    base: u64,
    timing: Option<board_support::boards::UartTiming>,
    hello: Hello,
    config: Config,
) -> LinkPort<Medium> {
    // Enabled before our first Hello, so before the peer can have sent
    // anything that a FIFO reset would drop.
    let uart = match kind {
        UartKind::Pl011 => {
            // SAFETY: forwarded from the caller.
            let u = unsafe { Pl011::new(base as usize) };
            u.enable_at(timing);
            LinkUart::Pl011(u)
        }
        UartKind::Mini => {
            // SAFETY: forwarded from the caller.
            let u = unsafe { MiniUart::new(base as usize) };
            u.enable();
            LinkUart::Mini(u)
        }
    };
    LinkPort::new(
        Medium::Serial(StreamTransport::new(UartIo(uart))),
        hello,
        config,
    )
}

/// The link over a NIC: our frames go to the broadcast address (the two
/// boards are alone on their wire), and we take frames sent to our MAC or
/// broadcast.
pub fn ethernet(nic: VirtioNet, hello: Hello, config: Config) -> LinkPort<Medium> {
    let framing = EthernetFraming {
        local: nic.mac(),
        peer: BROADCAST,
    };
    LinkPort::new(
        Medium::Ethernet(EthernetTransport::new(nic, framing)),
        hello,
        config,
    )
}

/// The UART's errors (there are none) as the NIC's.
fn from_uart(e: TransportError<Infallible>) -> TransportError<NetError> {
    match e {
        TransportError::Io(never) => match never {},
        TransportError::TooLarge => TransportError::TooLarge,
        // `TransportError` is non-exhaustive: any other error ends the
        // poll as a closed stream would (the link port ignores both).
        _ => TransportError::Closed,
    }
}

impl PacketTransport for Medium {
    type Error = NetError;

    fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError<NetError>> {
        match self {
            Self::Serial(t) => t.send_packet(packet).map_err(from_uart),
            Self::Ethernet(t) => t.send_packet(packet),
        }
    }

    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<NetError>> {
        match self {
            Self::Serial(t) => t.recv_packet(buf).map_err(from_uart),
            Self::Ethernet(t) => t.recv_packet(buf),
        }
    }
}
