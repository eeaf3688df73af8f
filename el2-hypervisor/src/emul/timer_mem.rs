//! The guest's memory-mapped generic timer (`arm,armv7-timer-mem`), for a
//! core whose CNTVCT_EL0 reads cannot be trapped (no FEAT_ECV: the
//! Raspberry Pi 4's Cortex-A72).
//!
//! Linux given no CP15 timer node and this device instead counts with the
//! frame's CNTVCT and programs the frame's timer (DESIGN section 9): every
//! access is a stage-2 data abort, answered here from guest time, as a
//! trapped CNTVCT_EL0 read is on a core with ECV (`timer_trap`). The
//! compare logic is [`super::vtimer::Timer`]'s; the frame's two timers live
//! in [`GuestTimers::frame`] beside the system-register ones, so that every
//! deadline, line and fingerprint of the guest's timers covers them.
//!
//! Registers (Arm ARM DDI 0487, I5.6 "CNTCTLBase" and I5.7 "CNTBaseN"):
//! - CNTCTLBase: CNTFRQ 0x000 (reads the frequency; writes ignored: it is
//!   the firmware's), CNTNSAR 0x004 (RAZ/WI), CNTTIDR 0x008 (frame 0
//!   implemented, with a virtual timer), CNTACR0 0x040 (the six access
//!   bits, writable), CNTVOFF0 0x080 (zero: the frame's virtual counter is
//!   its physical one, as CNTVOFF_EL2 = 0 makes the system counter).
//! - CNTBase0: CNTPCT 0x000, CNTVCT 0x008 (64-bit, read-only), CNTFRQ
//!   0x010, CNTEL0ACR 0x014 (RAZ/WI: no EL0 frame), CNTVOFF 0x018,
//!   CNTP_CVAL 0x020, CNTP_TVAL 0x028, CNTP_CTL 0x02c, CNTV_CVAL 0x030,
//!   CNTV_TVAL 0x038, CNTV_CTL 0x03c, each gated by CNTACR0 (a register
//!   the guest has not been granted reads as zero and ignores writes).
//! - A 64-bit register is read or written whole with an aligned 8-byte
//!   access or by halves with 4-byte ones (Linux reads a counter
//!   high-low-high: three exits); a 32-bit register only with a 4-byte
//!   access. Writes to a read-only register are ignored, as the
//!   architecture says; any other width, an unaligned access, or an
//!   offset that names no register is refused ([`TimerMemError`]), and
//!   the board injects an external abort.

use core::fmt;

use super::device::{DeviceFault, MmioDevice, WriteEffect};
use super::vtimer::{GuestTimers, Timer};
use crate::esr::Width;
use board_support::Region;

/// CNTCTLBase, the timer's control frame, at this guest-physical
/// address. The one place the address is written: the guest DTB and the
/// device table take it from here. It is free on both boards the
/// hypervisor runs on: on QEMU virt it is below RAM (0x4000_0000), in
/// the PCIe window the guest is never shown; on the Raspberry Pi 4 it is
/// in the top of the first GiB that belongs to the VideoCore
/// (0x3c00_0000..0x4000_0000 with the smallest `gpu_mem`, never in the
/// ARM's memory node). Stage 2 maps neither, so every access traps.
pub const CNTCTL_BASE: u64 = 0x3ffe_0000;
/// CNTBase0, the timer frame the guest counts and times with.
pub const CNT_BASE0: u64 = 0x3fff_0000;
/// Each frame is one 4 KiB page.
pub const FRAME_SIZE: u64 = 0x1000;

/// The control frame's window.
pub const CONTROL_WINDOW: Region = Region::new(CNTCTL_BASE, FRAME_SIZE);
/// The timer frame's window.
pub const FRAME_WINDOW: Region = Region::new(CNT_BASE0, FRAME_SIZE);

/// The frame's interrupts, as INTIDs: SPIs that no device of the guest
/// uses on either board (the console is INTID 33 on virt, 153 on the
/// Pi 4), within the vGIC's 256 (`vgic::NR_IRQS`). The binding lists the
/// physical timer's first, then the virtual timer's.
pub const FRAME_PHYS_INTID: u32 = 240;
pub const FRAME_VIRT_INTID: u32 = 241;

/// CNTTIDR: frame 0 implemented (FI, bit 0) with a virtual timer (FVI,
/// bit 1); no EL0 view (FWA, bit 2, clear); no other frame.
pub const CNTTIDR_VALUE: u32 = 0b0011;

/// CNTACR<n> bits (Arm ARM I5.6.1): what the frame lets its user reach.
pub const CNTACR_RPCT: u8 = 1 << 0;
pub const CNTACR_RVCT: u8 = 1 << 1;
pub const CNTACR_RFRQ: u8 = 1 << 2;
pub const CNTACR_RVOFF: u8 = 1 << 3;
pub const CNTACR_RWVT: u8 = 1 << 4;
pub const CNTACR_RWPT: u8 = 1 << 5;
/// Every CNTACR bit that is implemented.
pub const CNTACR_ALL: u8 = 0x3f;

/// The frame's state: its two timers and CNTACR0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerFrame {
    pub phys: Timer,
    pub virt: Timer,
    /// CNTACR0. Its reset value is UNKNOWN; here it starts with every
    /// access granted (Linux writes it before use either way).
    pub access: u8,
}

impl Default for TimerFrame {
    fn default() -> Self {
        Self::new()
    }
}

impl TimerFrame {
    pub const fn new() -> Self {
        TimerFrame {
            phys: Timer::new(),
            virt: Timer::new(),
            access: CNTACR_ALL,
        }
    }

    /// The earlier deadline of the frame's two timers.
    pub const fn next_deadline(&self) -> Option<u64> {
        earlier(self.phys.next_deadline(), self.virt.next_deadline())
    }

    /// The frame's lines at guest time `now`, as (INTID, level).
    pub const fn lines(&self, now: u64) -> [(u32, bool); 2] {
        [
            (FRAME_PHYS_INTID, self.phys.irq_level(now)),
            (FRAME_VIRT_INTID, self.virt.irq_level(now)),
        ]
    }

    /// The state as words, for the boundary fingerprint.
    pub fn state_words(&self) -> [u64; 5] {
        let ctl = |t: &Timer| u64::from(t.enabled()) | (u64::from(t.masked()) << 1);
        [
            ctl(&self.phys),
            self.phys.read_cval(),
            ctl(&self.virt),
            self.virt.read_cval(),
            u64::from(self.access),
        ]
    }
}

/// The earlier of two deadlines.
pub const fn earlier(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if x < y { x } else { y }),
        (Some(d), None) | (None, Some(d)) => Some(d),
        (None, None) => None,
    }
}

/// Why an access to the timer was refused: the guest's doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerMemError {
    /// No register at this offset.
    NoRegister { offset: u64 },
    /// A width the register cannot be accessed with (a byte, a halfword,
    /// or 8 bytes at a 32-bit register), or an access not aligned to its
    /// width.
    BadAccess { offset: u64, width: Width },
}

impl fmt::Display for TimerMemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimerMemError::NoRegister { offset } => {
                write!(f, "no timer register at offset {offset:#x}")
            }
            TimerMemError::BadAccess { offset, width } => write!(
                f,
                "{}-byte access at offset {offset:#x} fits no timer register",
                width as u8
            ),
        }
    }
}

impl From<TimerMemError> for DeviceFault {
    fn from(e: TimerMemError) -> Self {
        DeviceFault::Timer(e)
    }
}

/// A register of either frame, as the access found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    /// A 32-bit register.
    Word(u64),
    /// A 64-bit register at this offset (its low word's), and which part
    /// the access covers.
    Double(u64, Part),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Whole,
    Low,
    High,
}

impl Part {
    fn get(self, v: u64) -> u64 {
        match self {
            Part::Whole => v,
            Part::Low => v & 0xffff_ffff,
            Part::High => v >> 32,
        }
    }

    /// `old` with this part replaced by `value`.
    fn put(self, old: u64, value: u64) -> u64 {
        match self {
            Part::Whole => value,
            Part::Low => (old & !0xffff_ffff) | (value & 0xffff_ffff),
            Part::High => (old & 0xffff_ffff) | (value << 32),
        }
    }
}

/// Finds the register an access at `offset` of `width` reaches, among
/// the 64-bit registers `doubles` and the 32-bit ones `words`.
fn locate(offset: u64, width: Width, doubles: &[u64], words: &[u64]) -> Result<Reg, TimerMemError> {
    let bad = TimerMemError::BadAccess { offset, width };
    match width {
        Width::Word if offset.is_multiple_of(4) => {}
        Width::Double if offset.is_multiple_of(8) => {}
        _ => return Err(bad),
    }
    let base = offset & !7;
    if doubles.contains(&base) {
        let part = match (width, offset & 7) {
            (Width::Double, _) => Part::Whole,
            (_, 0) => Part::Low,
            _ => Part::High,
        };
        return Ok(Reg::Double(base, part));
    }
    match width {
        Width::Word if words.contains(&offset) => Ok(Reg::Word(offset)),
        // Eight bytes over a 32-bit register (and its neighbour).
        Width::Double if words.contains(&offset) || words.contains(&(offset + 4)) => Err(bad),
        _ => Err(TimerMemError::NoRegister { offset }),
    }
}

/// CNTCTLBase offsets.
mod ctl {
    pub const CNTFRQ: u64 = 0x000;
    pub const CNTNSAR: u64 = 0x004;
    pub const CNTTIDR: u64 = 0x008;
    pub const CNTACR0: u64 = 0x040;
    pub const CNTVOFF0: u64 = 0x080;
    pub const WORDS: [u64; 4] = [CNTFRQ, CNTNSAR, CNTTIDR, CNTACR0];
    pub const DOUBLES: [u64; 1] = [CNTVOFF0];
}

/// CNTBaseN offsets.
mod frame {
    pub const CNTPCT: u64 = 0x000;
    pub const CNTVCT: u64 = 0x008;
    pub const CNTFRQ: u64 = 0x010;
    pub const CNTEL0ACR: u64 = 0x014;
    pub const CNTVOFF: u64 = 0x018;
    pub const CNTP_CVAL: u64 = 0x020;
    pub const CNTP_TVAL: u64 = 0x028;
    pub const CNTP_CTL: u64 = 0x02c;
    pub const CNTV_CVAL: u64 = 0x030;
    pub const CNTV_TVAL: u64 = 0x038;
    pub const CNTV_CTL: u64 = 0x03c;
    pub const WORDS: [u64; 6] = [CNTFRQ, CNTEL0ACR, CNTP_TVAL, CNTP_CTL, CNTV_TVAL, CNTV_CTL];
    pub const DOUBLES: [u64; 5] = [CNTPCT, CNTVCT, CNTVOFF, CNTP_CVAL, CNTV_CVAL];
}

/// Whether an access at `offset` of CNTBase0 reads the counter (CNTPCT,
/// CNTVCT): the commonest access, counted apart.
pub const fn is_counter(offset: u64) -> bool {
    offset < frame::CNTFRQ
}

/// CNTCTLBase, as a device: it needs no guest time.
pub struct ControlFrame<'a> {
    pub frame: &'a mut TimerFrame,
    /// The counter's frequency, in Hz.
    pub frequency: u32,
}

impl MmioDevice for ControlFrame<'_> {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DeviceFault> {
        Ok(match locate(offset, width, &ctl::DOUBLES, &ctl::WORDS)? {
            Reg::Word(ctl::CNTFRQ) => self.frequency.into(),
            Reg::Word(ctl::CNTTIDR) => CNTTIDR_VALUE.into(),
            Reg::Word(ctl::CNTACR0) => self.frame.access.into(),
            // CNTNSAR (Secure-only: RAZ to a Non-secure access), CNTVOFF0.
            _ => 0,
        })
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<WriteEffect, DeviceFault> {
        if locate(offset, width, &ctl::DOUBLES, &ctl::WORDS)? == Reg::Word(ctl::CNTACR0) {
            self.frame.access = value as u8 & CNTACR_ALL;
        }
        Ok(WriteEffect::None)
    }
}

/// CNTBase0 at guest time `now`, as a device.
pub struct CounterFrame<'a> {
    pub frame: &'a mut TimerFrame,
    pub frequency: u32,
    /// Guest time at the accessing instruction.
    pub now: u64,
}

impl CounterFrame<'_> {
    /// Whether CNTACR0 grants `bit`.
    const fn granted(&self, bit: u8) -> bool {
        self.frame.access & bit != 0
    }

    /// The timer a compare or control register belongs to, if granted.
    fn timer(&mut self, reg: u64) -> Option<&mut Timer> {
        let (virt, bit) = match reg {
            frame::CNTP_CVAL | frame::CNTP_TVAL | frame::CNTP_CTL => (false, CNTACR_RWPT),
            frame::CNTV_CVAL | frame::CNTV_TVAL | frame::CNTV_CTL => (true, CNTACR_RWVT),
            _ => return None,
        };
        if !self.granted(bit) {
            return None;
        }
        Some(if virt {
            &mut self.frame.virt
        } else {
            &mut self.frame.phys
        })
    }
}

impl MmioDevice for CounterFrame<'_> {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DeviceFault> {
        let reg = locate(offset, width, &frame::DOUBLES, &frame::WORDS)?;
        let now = self.now;
        Ok(match reg {
            Reg::Double(frame::CNTPCT, p) if self.granted(CNTACR_RPCT) => p.get(now),
            Reg::Double(frame::CNTVCT, p) if self.granted(CNTACR_RVCT) => p.get(now),
            Reg::Word(frame::CNTFRQ) if self.granted(CNTACR_RFRQ) => self.frequency.into(),
            Reg::Double(r @ (frame::CNTP_CVAL | frame::CNTV_CVAL), p) => {
                self.timer(r).map_or(0, |t| p.get(t.read_cval()))
            }
            Reg::Word(r @ (frame::CNTP_TVAL | frame::CNTV_TVAL)) => {
                self.timer(r).map_or(0, |t| t.read_tval(now))
            }
            Reg::Word(r @ (frame::CNTP_CTL | frame::CNTV_CTL)) => {
                self.timer(r).map_or(0, |t| t.read_ctl(now))
            }
            // CNTEL0ACR (no EL0 frame), CNTVOFF (zero), and anything the
            // guest was not granted.
            _ => 0,
        })
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<WriteEffect, DeviceFault> {
        let reg = locate(offset, width, &frame::DOUBLES, &frame::WORDS)?;
        let now = self.now;
        match reg {
            Reg::Double(r @ (frame::CNTP_CVAL | frame::CNTV_CVAL), p) => {
                if let Some(t) = self.timer(r) {
                    t.write_cval(p.put(t.read_cval(), value));
                }
            }
            Reg::Word(r @ (frame::CNTP_TVAL | frame::CNTV_TVAL)) => {
                if let Some(t) = self.timer(r) {
                    t.write_tval(now, value);
                }
            }
            Reg::Word(r @ (frame::CNTP_CTL | frame::CNTV_CTL)) => {
                if let Some(t) = self.timer(r) {
                    t.write_ctl(value);
                }
            }
            // The counters, CNTFRQ, CNTEL0ACR, CNTVOFF: read-only (WI).
            _ => {}
        }
        Ok(WriteEffect::None)
    }
}

/// The frame's view of `timers`, if the guest has the memory-mapped
/// timer (`None` otherwise: its windows are not in the device table).
pub fn frame_of(timers: &mut GuestTimers) -> Option<(&mut TimerFrame, u32)> {
    let frequency = timers.frequency;
    timers.frame.as_mut().map(|f| (f, frequency))
}

#[cfg(test)]
mod tests;
