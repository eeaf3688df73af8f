//! The guest's console: an emulated Arm PrimeCell UART (PL011).
//!
//! Register map and bits: PL011 Technical Reference Manual (Arm DDI 0183),
//! chapter 3 "Programmers Model". Enough of it for Linux's `amba-pl011`
//! driver, both as early console (`earlycon=pl011`, which polls FR and
//! writes DR with byte stores, without ever setting CR.UARTEN) and as the
//! interrupt-driven tty.
//!
//! The model, and why:
//! - Transmission is instantaneous: a DR write hands the byte back to the
//!   caller (the output), the TX FIFO is always empty (FR.TXFE=1, TXFF=0,
//!   BUSY=0). Bytes go out whatever CR.UARTEN/TXE say, because the early
//!   console never enables the UART (QEMU's pl011 does the same).
//! - TXRIS follows QEMU's `hw/char/pl011.c`: it is latched by every DR
//!   write (the FIFO has just drained past any trigger level, the event the
//!   TRM's transition-based TX interrupt signals) and cleared only by ICR.
//!   Linux fills the FIFO before unmasking TXIM and keeps TXIM masked
//!   when its buffer is empty, so the latched bit never storms.
//! - RXRIS is a level: set while the RX FIFO holds a byte (trigger level 1,
//!   as in QEMU), whatever ICR says; the receive-timeout, error and modem
//!   interrupts never assert. Linux treats RX and RT alike and reads until
//!   FR.RXFE.
//! - The RX FIFO holds 16 bytes with LCR_H.FEN set (the depth Linux infers
//!   from the revision in UARTPeriphID2), one without. The hypervisor feeds
//!   it with [`Pl011::push_rx`], which refuses a byte when full (no overrun
//!   is ever emulated: the byte stays with the caller).
//! - Loopback (CR.LBE), IrDA, DMA and flow control are stored, not emulated.
//!
//! Everything is a function of the guest's accesses and the bytes pushed,
//! so two boards that see the same inputs see the same device.

use board_support::pl011::WINDOW_SIZE;
use heapless::Deque;

use super::device::{DeviceFault, MmioDevice, WriteEffect};
use super::mmio::{MmioError, WordAccess, check_word_access};
use crate::esr::Width;

/// Register offsets (TRM table 3-1).
pub mod reg {
    pub const DR: u64 = 0x000;
    /// Read: UARTRSR (receive status); write: UARTECR (clear errors).
    pub const RSR_ECR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const ILPR: u64 = 0x020;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
    /// UARTPeriphID0; PeriphID1-3 and PCellID0-3 follow every 4 bytes.
    pub const PERIPH_ID0: u64 = 0xfe0;
}

/// UARTFR bits (TRM 3.3.3).
pub mod fr {
    pub const BUSY: u32 = 1 << 3;
    pub const RXFE: u32 = 1 << 4;
    pub const TXFF: u32 = 1 << 5;
    pub const RXFF: u32 = 1 << 6;
    pub const TXFE: u32 = 1 << 7;
}

/// Interrupt bits shared by UARTIMSC, UARTRIS, UARTMIS and UARTICR (TRM 3.3.12-3.3.15).
pub mod int {
    pub const RX: u32 = 1 << 4;
    pub const TX: u32 = 1 << 5;
    pub const RT: u32 = 1 << 6;
    /// The eleven interrupt bits, [10:0].
    pub const ALL: u32 = 0x7ff;
}

/// UARTLCR_H.FEN: FIFOs enabled.
pub const LCR_H_FEN: u32 = 1 << 4;

/// UARTPeriphID0-3 then UARTPCellID0-3 (TRM 3.3.17-3.3.18), the bytes QEMU's
/// pl011 reports: part 0x011, designer 0x41 (Arm), revision 1 (PeriphID2
/// bits [7:4]), so the periphid Linux's amba bus assembles is 0x00141011;
/// PrimeCell ID 0xB105F00D.
pub const ID_BYTES: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// RX FIFO depth with LCR_H.FEN set: 16 bytes before r1p5, which is also
/// what Linux's `get_fifosize_arm` picks for any revision below 3.
pub const FIFO_DEPTH: usize = 16;

/// Reset values (TRM table 3-1): CR has TXE and RXE set, IFLS selects half-full.
const CR_RESET: u16 = 0x0300;
const IFLS_RESET: u8 = 0x12;

/// The emulated UART.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pl011 {
    rx: Deque<u8, FIFO_DEPTH>,
    ilpr: u8,
    ibrd: u16,
    fbrd: u8,
    lcr_h: u8,
    cr: u16,
    ifls: u8,
    imsc: u16,
    dmacr: u8,
    /// TXRIS, latched by a DR write, cleared by ICR.
    tx_ris: bool,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// The emulated state as words, for the boundary fingerprint: every
    /// register, the TX interrupt latch, and the receive FIFO (its length
    /// and bytes in order).
    pub fn state_words(&self) -> [u64; 4] {
        let rx = self
            .rx
            .iter()
            .fold(crate::replica::digest::FNV1A64_OFFSET, |h, b| {
                crate::replica::digest::fnv1a64_continue(h, &[*b])
            });
        [
            u64::from(self.ilpr)
                | u64::from(self.ibrd) << 8
                | u64::from(self.fbrd) << 24
                | u64::from(self.lcr_h) << 32
                | u64::from(self.ifls) << 40
                | u64::from(self.dmacr) << 48
                | u64::from(self.tx_ris) << 56,
            u64::from(self.cr) | u64::from(self.imsc) << 16,
            self.rx.len() as u64,
            rx,
        ]
    }

    /// The UART as it comes out of reset.
    pub const fn new() -> Self {
        Pl011 {
            rx: Deque::new(),
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            dmacr: 0,
            tx_ris: false,
        }
    }

    /// A guest load from `offset` in the UART's page. Reading DR consumes a
    /// byte from the RX FIFO. The value is the accessed bytes, for
    /// [`crate::esr::Access::load_value`].
    ///
    /// # Errors
    /// [`MmioError`] for an 8-byte, unaligned or out-of-page access.
    pub fn read(&mut self, offset: u64, width: Width) -> Result<u64, MmioError> {
        let a = check_word_access(offset, width)?;
        let value = match a.register {
            // Only a load that includes the data byte pops it.
            reg::DR if a.is_first_lane() => self.pop_rx(),
            reg::DR => 0,
            _ => self.register(a.register),
        };
        Ok(a.extract(value))
    }

    /// A guest store to `offset`. Returns the byte to transmit when the
    /// store was to DR. A store that does not start at a register's first
    /// byte is ignored, as are stores to read-only and unknown registers.
    ///
    /// # Errors
    /// [`MmioError`] for an 8-byte, unaligned or out-of-page access.
    pub fn write(
        &mut self,
        offset: u64,
        width: Width,
        value: u64,
    ) -> Result<Option<u8>, MmioError> {
        let a = check_word_access(offset, width)?;
        if !a.is_first_lane() {
            return Ok(None);
        }
        let v = a.extract(value as u32) as u32;
        Ok(self.store(a, v))
    }

    /// Offers a received byte to the guest. Returns false, keeping nothing,
    /// when the RX FIFO is full: the caller keeps the byte and offers it
    /// again later.
    pub fn push_rx(&mut self, byte: u8) -> bool {
        if self.rx.len() >= self.rx_depth() {
            return false;
        }
        self.rx.push_back(byte).is_ok()
    }

    /// How many bytes [`Pl011::push_rx`] would accept now.
    pub fn rx_room(&self) -> usize {
        self.rx_depth().saturating_sub(self.rx.len())
    }

    /// UARTRIS: raw interrupt status.
    pub fn raw_interrupts(&self) -> u32 {
        let mut ris = 0;
        if self.tx_ris {
            ris |= int::TX;
        }
        if !self.rx.is_empty() {
            ris |= int::RX;
        }
        ris
    }

    /// UARTMIS: the interrupts the guest has unmasked that are asserted.
    pub fn masked_interrupts(&self) -> u32 {
        self.raw_interrupts() & u32::from(self.imsc)
    }

    /// The level of the UART's interrupt line (UARTINTR), for the vGIC.
    pub fn irq_level(&self) -> bool {
        self.masked_interrupts() != 0
    }

    fn rx_depth(&self) -> usize {
        if u32::from(self.lcr_h) & LCR_H_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    fn flags(&self) -> u32 {
        let mut f = fr::TXFE;
        if self.rx.is_empty() {
            f |= fr::RXFE;
        }
        if self.rx.len() >= self.rx_depth() {
            f |= fr::RXFF;
        }
        f
    }

    /// DR on a read: the data byte, with no error bits ([11:8]) ever set.
    /// An empty FIFO reads 0.
    fn pop_rx(&mut self) -> u32 {
        self.rx.pop_front().map_or(0, u32::from)
    }

    /// The value of any register but DR, without side effects.
    fn register(&self, offset: u64) -> u32 {
        match offset {
            // No receive errors are ever recorded.
            reg::RSR_ECR => 0,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr.into(),
            reg::IBRD => self.ibrd.into(),
            reg::FBRD => self.fbrd.into(),
            reg::LCR_H => self.lcr_h.into(),
            reg::CR => self.cr.into(),
            reg::IFLS => self.ifls.into(),
            reg::IMSC => self.imsc.into(),
            reg::RIS => self.raw_interrupts(),
            reg::MIS => self.masked_interrupts(),
            reg::DMACR => self.dmacr.into(),
            o if (reg::PERIPH_ID0..WINDOW_SIZE).contains(&o) => {
                ID_BYTES[((o - reg::PERIPH_ID0) / 4) as usize].into()
            }
            // ICR is write-only; unknown offsets read as zero.
            _ => 0,
        }
    }

    /// A store of `v` (already cut to the access width) at lane 0.
    fn store(&mut self, a: WordAccess, v: u32) -> Option<u8> {
        match a.register {
            reg::DR => {
                self.tx_ris = true;
                return Some(v as u8);
            }
            // ECR: clears receive errors, of which there are none.
            reg::RSR_ECR => {}
            reg::ILPR => self.ilpr = v as u8,
            reg::IBRD => self.ibrd = v as u16,
            reg::FBRD => self.fbrd = (v & 0x3f) as u8,
            reg::LCR_H => self.lcr_h = v as u8,
            reg::CR => self.cr = v as u16,
            reg::IFLS => self.ifls = (v & 0x3f) as u8,
            reg::IMSC => self.imsc = (v & int::ALL) as u16,
            reg::ICR if v & int::TX != 0 => self.tx_ris = false,
            reg::DMACR => self.dmacr = (v & 0x7) as u8,
            // Other ICR bits, FR, RIS, MIS, the ID registers and unknown offsets.
            _ => {}
        }
        None
    }
}

/// The UART as a device of the guest: a DR store transmits its byte.
impl MmioDevice for Pl011 {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DeviceFault> {
        Ok(Pl011::read(self, offset, width)?)
    }

    /// DR holds what the UART received: the one thing of its that comes
    /// from outside (its flags, TX side and interrupts are the model's).
    fn reads_outside(&self, offset: u64) -> bool {
        offset & !0x3 == reg::DR
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<WriteEffect, DeviceFault> {
        Ok(match Pl011::write(self, offset, width, value)? {
            Some(byte) => WriteEffect::Transmit(byte),
            None => WriteEffect::None,
        })
    }
}

#[cfg(test)]
mod state_tests {
    use super::*;

    #[test]
    fn state_words_follow_registers_and_the_receive_fifo() {
        let base = Pl011::new();
        let w = base.state_words();
        let mut u = base.clone();
        u.lcr_h = 0x70;
        assert_ne!(u.state_words(), w);
        let mut u = base.clone();
        u.imsc = 0x10;
        assert_ne!(u.state_words(), w);
        let mut u = base.clone();
        u.tx_ris = true;
        assert_ne!(u.state_words(), w);
        let (mut a, mut b) = (base.clone(), base.clone());
        a.push_rx(1);
        a.push_rx(2);
        b.push_rx(2);
        b.push_rx(1);
        assert_ne!(a.state_words(), w);
        assert_ne!(a.state_words(), b.state_words(), "order counts");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(u: &mut Pl011, off: u64) -> u64 {
        u.read(off, Width::Word).unwrap()
    }

    fn wr(u: &mut Pl011, off: u64, v: u64) -> Option<u8> {
        u.write(off, Width::Word, v).unwrap()
    }

    #[test]
    fn reset_state() {
        let mut u = Pl011::new();
        assert_eq!(rd(&mut u, reg::FR), u64::from(fr::TXFE | fr::RXFE));
        assert_eq!(rd(&mut u, reg::CR), 0x300);
        assert_eq!(rd(&mut u, reg::IFLS), 0x12);
        assert_eq!(rd(&mut u, reg::RIS), 0);
        assert!(!u.irq_level());
        assert_eq!(u, Pl011::default());
    }

    #[test]
    fn earlycon_byte_store_to_dr_is_output() {
        let mut u = Pl011::new();
        // writeb(c, DR) with the UART never enabled; FR polled as a halfword.
        assert_eq!(u.write(reg::DR, Width::Byte, 0x41).unwrap(), Some(b'A'));
        assert_eq!(
            u.read(reg::FR, Width::Half).unwrap() as u32 & (fr::TXFF | fr::BUSY),
            0
        );
        // A word store emits only the low byte.
        assert_eq!(wr(&mut u, reg::DR, 0xabc_0a42), Some(0x42));
    }

    #[test]
    fn configuration_registers_read_back() {
        let mut u = Pl011::new();
        for (off, v) in [
            (reg::ILPR, 0x12),
            (reg::IBRD, 0x1234),
            (reg::FBRD, 0x2a),
            (reg::LCR_H, 0x70),
            (reg::CR, 0x0301),
            (reg::IFLS, 0x24),
            (reg::IMSC, 0x50),
            (reg::DMACR, 0x0),
        ] {
            assert_eq!(wr(&mut u, off, v), None);
            assert_eq!(rd(&mut u, off), v, "offset {off:#x}");
        }
        // Fields are cut to their widths.
        wr(&mut u, reg::FBRD, 0xff);
        assert_eq!(rd(&mut u, reg::FBRD), 0x3f);
        wr(&mut u, reg::IMSC, 0xffff_ffff);
        assert_eq!(rd(&mut u, reg::IMSC), 0x7ff);
        wr(&mut u, reg::IBRD, 0x1_0005);
        assert_eq!(rd(&mut u, reg::IBRD), 5);
    }

    #[test]
    fn primecell_ids() {
        let mut u = Pl011::new();
        let ids: [u64; 8] = core::array::from_fn(|i| rd(&mut u, reg::PERIPH_ID0 + 4 * i as u64));
        assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        let periphid = ids[..4].iter().rev().fold(0, |acc, b| acc << 8 | b);
        assert_eq!(periphid, 0x0014_1011);
        let cellid = ids[4..].iter().rev().fold(0, |acc, b| acc << 8 | b);
        assert_eq!(cellid, 0xb105_f00d);
        // Read-only: a store changes nothing.
        wr(&mut u, reg::PERIPH_ID0, 0);
        assert_eq!(rd(&mut u, reg::PERIPH_ID0), 0x11);
    }

    #[test]
    fn rx_fifo_feeds_dr_and_fr() {
        let mut u = Pl011::new();
        wr(&mut u, reg::LCR_H, u64::from(LCR_H_FEN | 0x60));
        assert_eq!(u.rx_room(), FIFO_DEPTH);
        for b in b"hi" {
            assert!(u.push_rx(*b));
        }
        assert_eq!(rd(&mut u, reg::FR) as u32 & (fr::RXFE | fr::RXFF), 0);
        assert_eq!(rd(&mut u, reg::DR), u64::from(b'h'));
        assert_eq!(u.read(reg::DR, Width::Half).unwrap(), u64::from(b'i'));
        assert_ne!(rd(&mut u, reg::FR) as u32 & fr::RXFE, 0);
        // Empty FIFO reads 0 and stays empty.
        assert_eq!(rd(&mut u, reg::DR), 0);
        assert_eq!(rd(&mut u, reg::RSR_ECR), 0);
    }

    #[test]
    fn rx_fifo_full_refuses_and_depth_follows_fen() {
        let mut u = Pl011::new();
        // FIFOs off (reset): a one-byte holding register.
        assert!(u.push_rx(1));
        assert!(!u.push_rx(2));
        assert_ne!(rd(&mut u, reg::FR) as u32 & fr::RXFF, 0);
        wr(&mut u, reg::LCR_H, u64::from(LCR_H_FEN));
        for i in 1..FIFO_DEPTH as u8 {
            assert!(u.push_rx(i + 1), "byte {i}");
        }
        assert!(!u.push_rx(99));
        assert_eq!(u.rx_room(), 0);
        assert_ne!(rd(&mut u, reg::FR) as u32 & fr::RXFF, 0);
        let got: [u64; FIFO_DEPTH] = core::array::from_fn(|_| rd(&mut u, reg::DR));
        assert_eq!(got[0], 1);
        assert_eq!(got[FIFO_DEPTH - 1], FIFO_DEPTH as u64);
    }

    #[test]
    fn rx_interrupt_is_the_fifo_level() {
        let mut u = Pl011::new();
        wr(&mut u, reg::IMSC, u64::from(int::RX | int::RT));
        u.push_rx(b'x');
        assert_eq!(rd(&mut u, reg::RIS) as u32, int::RX);
        assert_eq!(rd(&mut u, reg::MIS) as u32, int::RX);
        assert!(u.irq_level());
        // ICR cannot clear a level while data remains.
        wr(&mut u, reg::ICR, u64::from(int::ALL));
        assert!(u.irq_level());
        rd(&mut u, reg::DR);
        assert!(!u.irq_level());
        assert_eq!(rd(&mut u, reg::MIS), 0);
    }

    #[test]
    fn tx_interrupt_latches_on_write_and_clears_on_icr() {
        let mut u = Pl011::new();
        wr(&mut u, reg::DR, u64::from(b'a'));
        assert_eq!(rd(&mut u, reg::RIS) as u32, int::TX);
        // Masked: no line.
        assert!(!u.irq_level());
        wr(&mut u, reg::IMSC, u64::from(int::TX));
        assert!(u.irq_level());
        assert_eq!(rd(&mut u, reg::MIS) as u32, int::TX);
        // Linux's handler acknowledges everything but TX/RX/RT through ICR...
        wr(
            &mut u,
            reg::ICR,
            u64::from(int::ALL & !(int::TX | int::RX | int::RT)),
        );
        assert!(u.irq_level());
        // ...and stops TX by masking TXIM once its buffer is empty.
        wr(&mut u, reg::IMSC, 0);
        assert!(!u.irq_level());
        wr(&mut u, reg::ICR, u64::from(int::TX));
        assert_eq!(rd(&mut u, reg::RIS), 0);
        // Unmasking with nothing sent since raises nothing (TRM: transition-based).
        wr(&mut u, reg::IMSC, u64::from(int::TX));
        assert!(!u.irq_level());
    }

    #[test]
    fn read_only_and_unknown_offsets() {
        let mut u = Pl011::new();
        for off in [reg::FR, reg::RIS, reg::MIS, 0x100, 0xffc] {
            assert_eq!(wr(&mut u, off, 0xffff_ffff), None);
        }
        assert_eq!(u, Pl011::new());
        assert_eq!(rd(&mut u, 0x100), 0);
        assert_eq!(rd(&mut u, reg::ICR), 0);
    }

    #[test]
    fn sub_word_lanes() {
        let mut u = Pl011::new();
        // High byte of CR (TXE|RXE) read alone.
        assert_eq!(u.read(reg::CR + 1, Width::Byte).unwrap(), 0x03);
        // A byte store into DR's error-status lane sends nothing.
        assert_eq!(u.write(reg::DR + 1, Width::Byte, 0x41).unwrap(), None);
        // Reading DR's upper lane does not consume data.
        u.push_rx(7);
        assert_eq!(u.read(reg::DR + 2, Width::Half).unwrap(), 0);
        assert_eq!(rd(&mut u, reg::DR), 7);
    }

    #[test]
    fn bad_width_is_an_error() {
        let mut u = Pl011::new();
        assert_eq!(
            u.read(reg::DR, Width::Double),
            Err(MmioError::UnsupportedWidth(Width::Double))
        );
        assert_eq!(
            u.write(reg::DR, Width::Double, 0x41),
            Err(MmioError::UnsupportedWidth(Width::Double))
        );
        assert!(matches!(
            u.read(reg::FR + 2, Width::Word),
            Err(MmioError::Misaligned { .. })
        ));
    }
}
