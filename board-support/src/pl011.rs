//! ARM PrimeCell UART (PL011), the console on QEMU virt and the Raspberry Pi 4.
//!
//! Register map: ARM DDI 0183G (PL011 Technical Reference Manual), 3.2
//! "Summary of registers". Only what a polled console needs is used: the
//! data register and the flag register's FIFO bits. The firmware (or QEMU)
//! has already set the baud rate.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields! [u32,
    /// UARTFR, TRM 3.3.3.
    pub FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy sending.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// UARTLCR_H, TRM 3.3.7.
    pub LCR_H [
        /// Word length: 0b11 is 8 bits.
        WLEN OFFSET(5) NUMBITS(2) [Eight = 0b11],
        /// FIFOs enabled (16 deep) rather than one-byte holding registers.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// UARTCR, TRM 3.3.8.
    pub CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    #[allow(non_snake_case)]
    pub Registers {
        (0x00 => pub DR: ReadWrite<u32>),
        (0x04 => pub RSR_ECR: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x18 => pub FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => pub IBRD: ReadWrite<u32>),
        (0x28 => pub FBRD: ReadWrite<u32>),
        (0x2c => pub LCR_H: ReadWrite<u32, LCR_H::Register>),
        (0x30 => pub CR: ReadWrite<u32, CR::Register>),
        (0x34 => pub IFLS: ReadWrite<u32>),
        (0x38 => pub IMSC: ReadWrite<u32>),
        (0x3c => pub RIS: ReadOnly<u32>),
        (0x40 => pub MIS: ReadOnly<u32>),
        (0x44 => pub ICR: WriteOnly<u32>),
        (0x48 => @END),
    }
}

/// The PL011's register window: 4 KiB, ended by the PrimeCell
/// identification registers (TRM 3.2: UARTPCellID3 at 0xFFC). Device trees
/// may give a smaller `reg` (the Pi 4's says 0x200); the device decodes this.
pub const WINDOW_SIZE: u64 = 0x1000;
const _: () = assert!(core::mem::size_of::<Registers>() as u64 <= WINDOW_SIZE);

/// The baud-rate divisors (UARTIBRD, UARTFBRD) for `baud` from a
/// `clock_hz` reference clock: TRM 3.3.6, BAUDDIV = clock / (16 * baud),
/// its integer part in IBRD (16 bits, not 0) and its fraction in FBRD as
/// round(fraction * 64) (6 bits). `None` for a rate the divisors cannot make.
pub fn divisors(clock_hz: u32, baud: u32) -> Option<(u32, u32)> {
    if baud == 0 {
        return None;
    }
    // BAUDDIV * 64, rounded: 4 * clock / baud (= 64 * clock / (16 * baud)).
    let div64 = (4 * u64::from(clock_hz) + u64::from(baud) / 2) / u64::from(baud);
    let (ibrd, fbrd) = (div64 >> 6, div64 & 0x3f);
    (1..=0xffff)
        .contains(&ibrd)
        .then_some((ibrd as u32, fbrd as u32))
}

/// A polled PL011.
pub struct Pl011 {
    regs: &'static Registers,
}

// SAFETY: the handle is an MMIO address; moving it to another core is fine,
// and the user serialises access (the hypervisor keeps it behind a lock).
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be the address of a PL011's register block, mapped as
    /// device memory (or with the MMU off), and nothing else may drive the
    /// same UART concurrently.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: the caller guarantees `base` points at a PL011 register
            // block that stays mapped for the life of the program.
            regs: unsafe { &*(base as *const Registers) },
        }
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        while self.regs.FR.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.DR.set(byte as u32);
    }

    /// Sends bytes, turning `\n` into `\r\n` for terminals.
    pub fn write_text(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }

    /// Sends bytes as they are.
    pub fn write_raw(&self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }

    /// Enables the UART with its FIFOs on: 8-bit words, no parity, one
    /// stop bit (TRM 3.3.8: disable, program LCR_H, enable). Call once,
    /// before the peer sends:
    /// - UARTEN must be set: out of reset QEMU's PL011 has only TXE and RXE
    ///   set, and with UARTEN clear it sends one byte per DR write and
    ///   never resumes a transmission its chardev could not take at once
    ///   (a real PL011 sends nothing at all);
    /// - a write that changes FEN empties the receive FIFO (DESIGN section
    ///   9), and QEMU does so without telling the chardev behind it, which
    ///   then delivers nothing more until a DR read says there is room:
    ///   hence one read of DR at the end, its byte dropped (seen: a link
    ///   whose peer had sent before this board turned its FIFO on stayed
    ///   silent).
    pub fn enable(&self) {
        self.enable_at(None);
    }

    /// [`Pl011::enable`], first setting the baud rate when `timing` says
    /// (a UART no firmware set up: the Pi 4's UART2-5). The divisors are
    /// written before LCR_H, whose write latches them (TRM 3.3.6).
    pub fn enable_at(&self, timing: Option<crate::boards::UartTiming>) {
        self.regs.CR.set(0);
        if let Some((ibrd, fbrd)) = timing.and_then(|t| divisors(t.clock_hz, t.baud)) {
            self.regs.IBRD.set(ibrd);
            self.regs.FBRD.set(fbrd);
        }
        self.regs.LCR_H.write(LCR_H::WLEN::Eight + LCR_H::FEN::SET);
        self.regs
            .CR
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        let _ = self.regs.DR.get();
    }

    /// Makes sure the UART is enabled for sending and receiving, leaving
    /// its other settings (line control, flow control) as the firmware set
    /// them. QEMU starts a PL011 with UARTEN clear when no firmware ran
    /// (`-kernel`); see [`Pl011::enable`] for what that does to sending.
    pub fn ensure_enabled(&self) {
        self.regs
            .CR
            .modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// A received byte, if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        if self.regs.FR.is_set(FR::RXFE) {
            None
        } else {
            Some(self.regs.DR.get() as u8)
        }
    }

    /// Whether a received byte is waiting.
    pub fn rx_ready(&self) -> bool {
        !self.regs.FR.is_set(FR::RXFE)
    }

    /// Waits until every queued byte has left the UART.
    pub fn flush(&self) {
        while self.regs.FR.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_text(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::divisors;

    #[test]
    fn divisors_match_the_trm_example_and_the_pi4_link() {
        // TRM 3.3.6's example: 4 MHz, 230400 baud -> 1.085: IBRD 1, FBRD 5.
        assert_eq!(divisors(4_000_000, 230_400), Some((1, 5)));
        // The Pi 4's 48 MHz UART clock: 115200 -> 26.042 (26, 3);
        // 921600 -> 3.255 (3, 16).
        assert_eq!(divisors(48_000_000, 115_200), Some((26, 3)));
        assert_eq!(divisors(48_000_000, 921_600), Some((3, 16)));
        assert_eq!(divisors(48_000_000, 0), None);
        assert_eq!(divisors(1_000, 115_200), None, "below 1");
    }
}
