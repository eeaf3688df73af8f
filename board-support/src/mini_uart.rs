//! The BCM2835/BCM2711 auxiliary mini-UART (the Pi 4's UART1; QEMU
//! `-M raspi4b`'s second `-serial`), polled.
//!
//! Register map: BCM2711 ARM Peripherals, 2.2 "Mini UART" (offsets from
//! the AUX block at bus 0x7e21_5000; the device tree's node, and so
//! `base` here, is the mini-UART's own block at AUX + 0x40). Its baud
//! rate is derived from the VPU core clock (2.2.1: baud = core_clock /
//! (8 * (AUX_MU_BAUD + 1))): on a real board the core clock must be fixed
//! (`enable_uart=1` does that) or the rate drifts; QEMU ignores it.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_bitfields! [u32,
    /// AUX_MU_LSR_REG, 2.2.2.
    pub LSR [
        /// The transmit FIFO can take at least one byte.
        TX_EMPTY OFFSET(5) NUMBITS(1) [],
        /// The receive FIFO holds at least one byte.
        DATA_READY OFFSET(0) NUMBITS(1) []
    ],
    /// AUX_MU_LCR_REG, 2.2.2: bits 1:0 = 0b11 is 8-bit mode (the
    /// datasheet documents bit 0 only; both must be set).
    pub LCR [
        DATA_SIZE OFFSET(0) NUMBITS(2) [Eight = 0b11]
    ],
    /// AUX_MU_CNTL_REG, 2.2.2.
    pub CNTL [
        TX_ENABLE OFFSET(1) NUMBITS(1) [],
        RX_ENABLE OFFSET(0) NUMBITS(1) []
    ],
    /// AUX_MU_IIR_REG writes, 2.2.2: clear the FIFOs.
    pub IIR [
        CLEAR_TX OFFSET(2) NUMBITS(1) [],
        CLEAR_RX OFFSET(1) NUMBITS(1) []
    ],
    /// AUXENB, 2.2.2 (AUX + 0x04).
    pub ENABLES [
        MINI_UART OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    #[allow(non_snake_case)]
    pub Registers {
        (0x00 => pub IO: ReadWrite<u32>),
        (0x04 => pub IER: ReadWrite<u32>),
        (0x08 => pub IIR: ReadWrite<u32, IIR::Register>),
        (0x0c => pub LCR: ReadWrite<u32, LCR::Register>),
        (0x10 => pub MCR: ReadWrite<u32>),
        (0x14 => pub LSR: ReadOnly<u32, LSR::Register>),
        (0x18 => pub MSR: ReadOnly<u32>),
        (0x1c => pub SCRATCH: ReadWrite<u32>),
        (0x20 => pub CNTL: ReadWrite<u32, CNTL::Register>),
        (0x24 => pub STAT: ReadOnly<u32>),
        (0x28 => pub BAUD: ReadWrite<u32>),
        (0x2c => @END),
    }
}

/// The mini-UART's block is this far into the AUX block, whose AUXENB
/// register turns it on.
pub const OFFSET_IN_AUX: usize = 0x40;
/// AUXENB's offset in the AUX block.
const AUX_ENABLES: usize = 0x04;

/// A polled mini-UART.
pub struct MiniUart {
    regs: &'static Registers,
    enables: &'static ReadWrite<u32, ENABLES::Register>,
}

// SAFETY: the handle is an MMIO address; the user serialises access.
unsafe impl Send for MiniUart {}

impl MiniUart {
    /// # Safety
    /// `base` must be the mini-UART's register block (AUX + 0x40) of a
    /// BCM2835-family AUX block, mapped as device memory (or with the MMU
    /// off), and nothing else may drive the mini-UART or AUXENB.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: forwarded from the caller: `base` is the mini-UART block,
        // and AUXENB sits at a fixed offset before it in the same AUX block.
        unsafe {
            Self {
                regs: &*(base as *const Registers),
                enables: &*((base - OFFSET_IN_AUX + AUX_ENABLES)
                    as *const ReadWrite<u32, ENABLES::Register>),
            }
        }
    }

    /// Turns the mini-UART on (AUXENB), 8-bit words, no interrupts, both
    /// FIFOs emptied, transmitter and receiver on. The baud rate is left
    /// as the firmware set it. Call once, before the peer sends.
    pub fn enable(&self) {
        self.enables.modify(ENABLES::MINI_UART::SET);
        self.regs.CNTL.set(0);
        self.regs.IER.set(0);
        self.regs.LCR.write(LCR::DATA_SIZE::Eight);
        self.regs.IIR.write(IIR::CLEAR_RX::SET + IIR::CLEAR_TX::SET);
        self.regs
            .CNTL
            .write(CNTL::RX_ENABLE::SET + CNTL::TX_ENABLE::SET);
    }

    /// Sends bytes as they are, waiting for room in the transmit FIFO.
    pub fn write_raw(&self, bytes: &[u8]) {
        for &b in bytes {
            while !self.regs.LSR.is_set(LSR::TX_EMPTY) {
                core::hint::spin_loop();
            }
            self.regs.IO.set(u32::from(b));
        }
    }

    /// A received byte, if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        self.rx_ready().then(|| self.regs.IO.get() as u8)
    }

    /// Whether a received byte is waiting.
    pub fn rx_ready(&self) -> bool {
        self.regs.LSR.is_set(LSR::DATA_READY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_offsets_are_the_datasheets() {
        // 2.2.2: AUX_MU_IO_REG at AUX + 0x40 ... AUX_MU_BAUD_REG at AUX + 0x68.
        assert_eq!(core::mem::offset_of!(Registers, LSR) + OFFSET_IN_AUX, 0x54);
        assert_eq!(core::mem::offset_of!(Registers, CNTL) + OFFSET_IN_AUX, 0x60);
        assert_eq!(core::mem::offset_of!(Registers, BAUD) + OFFSET_IN_AUX, 0x68);
    }
}
