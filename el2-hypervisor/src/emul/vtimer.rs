//! The guest's Generic Timer, emulated against guest time.
//!
//! Every guest access to the counters and to the EL1 virtual and physical
//! timers traps to EL2 (DESIGN section 4) and is answered here from "guest
//! time": a 64-bit counter value the hypervisor decides (on QEMU, the real
//! counter minus an offset; under replication, a logged value) and passes
//! in as `now`. The guest sees the same value through CNTVCT_EL0 and
//! CNTPCT_EL0: its virtual offset is zero.
//!
//! Semantics: Arm ARM (DDI 0487) D12 "The Generic Timer in AArch64 state"
//! and the register descriptions CNTV_CTL_EL0, CNTV_CVAL_EL0 and
//! CNTV_TVAL_EL0 (CNTP_* alike):
//! - the timer condition is met when `now >= CVAL`, both unsigned 64-bit;
//! - CTL.ISTATUS (read-only) reports the condition; it is UNKNOWN while
//!   ENABLE=0, and reads 0 here;
//! - TVAL is a signed 32-bit down-counter: a read gives `(CVAL - now)[31:0]`
//!   (bits [63:32] RES0), a write sets `CVAL = now + SignExtend(TVAL[31:0])`;
//! - the interrupt is asserted while ENABLE=1, IMASK=0 and the condition is met.

/// CNTx_CTL_EL0.ENABLE.
pub const CTL_ENABLE: u64 = 1 << 0;
/// CNTx_CTL_EL0.IMASK.
pub const CTL_IMASK: u64 = 1 << 1;
/// CNTx_CTL_EL0.ISTATUS (read-only).
pub const CTL_ISTATUS: u64 = 1 << 2;

/// INTIDs of the EL1 timers' PPIs, as QEMU virt and the Raspberry Pi 4
/// device trees describe them (Arm BSA: virtual PPI 11, non-secure EL1
/// physical PPI 14).
pub const VIRT_TIMER_INTID: u32 = 27;
pub const PHYS_TIMER_INTID: u32 = 30;

use super::timer_mem::{TimerFrame, earlier};

/// The counter value the guest reads (CNTVCT_EL0, CNTPCT_EL0 and their
/// self-synchronised forms): guest time itself.
pub const fn read_counter(now: u64) -> u64 {
    now
}

/// One EL1 timer (virtual or physical): its control bits and compare value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timer {
    enable: bool,
    imask: bool,
    cval: u64,
}

impl Timer {
    /// The timer after reset: disabled (ENABLE resets to 0), unmasked, CVAL 0.
    pub const fn new() -> Self {
        Timer {
            enable: false,
            imask: false,
            cval: 0,
        }
    }

    pub const fn enabled(&self) -> bool {
        self.enable
    }

    pub const fn masked(&self) -> bool {
        self.imask
    }

    /// The timer condition (`ISTATUS`): enabled and `now >= CVAL`.
    pub const fn condition_met(&self, now: u64) -> bool {
        self.enable && now >= self.cval
    }

    /// CNTx_CTL_EL0 as the guest reads it at `now`.
    pub const fn read_ctl(&self, now: u64) -> u64 {
        let mut v = 0;
        if self.enable {
            v |= CTL_ENABLE;
        }
        if self.imask {
            v |= CTL_IMASK;
        }
        if self.condition_met(now) {
            v |= CTL_ISTATUS;
        }
        v
    }

    /// A guest write to CNTx_CTL_EL0: ENABLE and IMASK are kept, ISTATUS
    /// and the RES0 bits ignored.
    pub const fn write_ctl(&mut self, value: u64) {
        self.enable = value & CTL_ENABLE != 0;
        self.imask = value & CTL_IMASK != 0;
    }

    pub const fn read_cval(&self) -> u64 {
        self.cval
    }

    pub const fn write_cval(&mut self, value: u64) {
        self.cval = value;
    }

    /// CNTx_TVAL_EL0 at `now`: `(CVAL - now)` as a signed 32-bit value in
    /// bits [31:0], bits [63:32] zero.
    pub const fn read_tval(&self, now: u64) -> u64 {
        self.cval.wrapping_sub(now) & 0xffff_ffff
    }

    /// A guest write to CNTx_TVAL_EL0 at `now`: `CVAL = now + SignExtend(value[31:0])`.
    pub const fn write_tval(&mut self, now: u64, value: u64) {
        let delta = value as u32 as i32 as i64;
        self.cval = now.wrapping_add_signed(delta);
    }

    /// The level of the timer's interrupt line at `now`.
    pub const fn irq_level(&self, now: u64) -> bool {
        !self.imask && self.condition_met(now)
    }

    /// The guest time at which the line is (or was) raised, while the timer
    /// can raise it at all (enabled and unmasked): the hypervisor arms its
    /// own timer for it. A deadline at or before `now` means "raised now".
    pub const fn next_deadline(&self) -> Option<u64> {
        if self.enable && !self.imask {
            Some(self.cval)
        } else {
            None
        }
    }
}

/// The guest's timers and the frequency its counter reports: the EL1
/// virtual and physical timers (system registers) and, when the guest is
/// given the memory-mapped timer instead (`emul::timer_mem`), that
/// frame's two. One struct, so that every deadline, line and fingerprint
/// of the guest's timers covers whichever interface it uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestTimers {
    pub virt: Timer,
    pub phys: Timer,
    /// CNTFRQ_EL0 as the guest reads it, in Hz.
    pub frequency: u32,
    /// The memory-mapped timer's frame, if the guest has one.
    pub frame: Option<TimerFrame>,
}

impl GuestTimers {
    /// The emulated state as words, for the boundary fingerprint: each
    /// timer's ENABLE and IMASK (bits 0 and 1) and CVAL, the frequency,
    /// whether there is a frame, and the frame's state (zeros without).
    pub fn state_words(&self) -> [u64; 11] {
        let ctl = |t: &Timer| u64::from(t.enable) | (u64::from(t.imask) << 1);
        let f = self.frame.map_or([0; 5], |f| f.state_words());
        [
            ctl(&self.virt),
            self.virt.cval,
            ctl(&self.phys),
            self.phys.cval,
            u64::from(self.frequency),
            u64::from(self.frame.is_some()),
            f[0],
            f[1],
            f[2],
            f[3],
            f[4],
        ]
    }

    /// The system-register timers only.
    pub const fn new(frequency: u32) -> Self {
        GuestTimers {
            virt: Timer::new(),
            phys: Timer::new(),
            frequency,
            frame: None,
        }
    }

    /// The system-register timers and the memory-mapped frame.
    pub const fn with_frame(frequency: u32) -> Self {
        GuestTimers {
            frame: Some(TimerFrame::new()),
            ..Self::new(frequency)
        }
    }

    /// The earliest deadline of the guest's timers, for the hypervisor's
    /// own timer and the epoch's inline deadline.
    pub const fn next_deadline(&self) -> Option<u64> {
        let sysreg = earlier(self.virt.next_deadline(), self.phys.next_deadline());
        match self.frame {
            Some(f) => earlier(sysreg, f.next_deadline()),
            None => sysreg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed(cval: u64) -> Timer {
        let mut t = Timer::new();
        t.write_cval(cval);
        t.write_ctl(CTL_ENABLE);
        t
    }

    #[test]
    fn counter_is_guest_time() {
        assert_eq!(read_counter(0x1234_5678_9abc), 0x1234_5678_9abc);
    }

    #[test]
    fn reset_is_disabled_and_silent() {
        let t = Timer::new();
        assert_eq!(t.read_ctl(u64::MAX), 0);
        assert!(!t.irq_level(u64::MAX));
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t, Timer::default());
    }

    #[test]
    fn ctl_keeps_enable_and_imask_only() {
        let mut t = Timer::new();
        t.write_cval(1000);
        t.write_ctl(0xffff_ffff_ffff_fff8 | CTL_ISTATUS);
        assert_eq!(
            t.read_ctl(2000),
            0,
            "ISTATUS and RES0 bits are not writable"
        );
        t.write_ctl(CTL_ENABLE | CTL_IMASK);
        assert_eq!(t.read_ctl(999), CTL_ENABLE | CTL_IMASK);
        assert_eq!(t.read_ctl(1000), CTL_ENABLE | CTL_IMASK | CTL_ISTATUS);
        assert!(t.enabled() && t.masked());
    }

    #[test]
    fn istatus_follows_the_condition() {
        let t = armed(500);
        assert_eq!(t.read_ctl(499) & CTL_ISTATUS, 0);
        assert_ne!(t.read_ctl(500) & CTL_ISTATUS, 0);
        assert_ne!(t.read_ctl(501) & CTL_ISTATUS, 0);
        // Disabled: ISTATUS reads 0 even past CVAL.
        let mut off = t;
        off.write_ctl(0);
        assert_eq!(off.read_ctl(10_000), 0);
    }

    #[test]
    fn irq_level_needs_enabled_unmasked_and_due() {
        let mut t = armed(100);
        assert!(!t.irq_level(99));
        assert!(t.irq_level(100));
        t.write_ctl(CTL_ENABLE | CTL_IMASK);
        assert!(!t.irq_level(100));
        // Masked, ISTATUS still reports the condition (Linux's handler relies on it).
        assert_ne!(t.read_ctl(100) & CTL_ISTATUS, 0);
        t.write_ctl(0);
        assert!(!t.irq_level(100));
    }

    #[test]
    fn cval_reads_back_in_full() {
        let mut t = Timer::new();
        t.write_cval(0xfedc_ba98_7654_3210);
        assert_eq!(t.read_cval(), 0xfedc_ba98_7654_3210);
    }

    #[test]
    fn tval_counts_down_and_goes_negative() {
        let mut t = armed(0);
        t.write_tval(1_000, 250);
        assert_eq!(t.read_cval(), 1_250);
        assert_eq!(t.read_tval(1_000), 250);
        assert_eq!(t.read_tval(1_200), 50);
        assert_eq!(t.read_tval(1_250), 0);
        // Past the deadline: negative, as a 32-bit two's complement, upper half zero.
        assert_eq!(t.read_tval(1_260), 0xffff_fff6);
        assert_eq!(t.read_tval(1_260) as u32 as i32, -10);
    }

    #[test]
    fn tval_write_sign_extends_bit_31() {
        let mut t = Timer::new();
        // -5: CVAL in the past, condition met at once.
        t.write_tval(1_000, 0xffff_fffb);
        assert_eq!(t.read_cval(), 995);
        t.write_ctl(CTL_ENABLE);
        assert!(t.irq_level(1_000));
        // Bits [63:32] of the written value are ignored.
        t.write_tval(1_000, 0xdead_beef_0000_0010);
        assert_eq!(t.read_cval(), 1_016);
        // The most negative and most positive TimerValues.
        t.write_tval(0x1_0000_0000, 0x8000_0000);
        assert_eq!(t.read_cval(), 0x8000_0000);
        t.write_tval(0x1_0000_0000, 0x7fff_ffff);
        assert_eq!(t.read_cval(), 0x1_7fff_ffff);
    }

    #[test]
    fn tval_wraps_with_the_64_bit_counter() {
        let mut t = Timer::new();
        let now = u64::MAX - 5;
        t.write_tval(now, 10);
        assert_eq!(t.read_cval(), 4);
        assert_eq!(t.read_tval(now), 10);
        t.write_tval(3, 0xffff_fff0); // -16 from 3
        assert_eq!(t.read_cval(), u64::MAX - 12);
        assert_eq!(t.read_tval(3) as u32 as i32, -16);
    }

    #[test]
    fn tval_reads_only_the_low_32_bits_of_a_far_deadline() {
        let mut t = Timer::new();
        // 2^31 ahead reads as the most negative TimerValue.
        t.write_cval(0x8000_0000);
        assert_eq!(t.read_tval(0), 0x8000_0000);
        // 2^32 + 7 ahead reads as 7.
        t.write_cval(0x1_0000_0007);
        assert_eq!(t.read_tval(0), 7);
    }

    #[test]
    fn deadline_only_while_the_line_can_rise() {
        let mut t = armed(777);
        assert_eq!(t.next_deadline(), Some(777));
        t.write_ctl(CTL_ENABLE | CTL_IMASK);
        assert_eq!(t.next_deadline(), None);
        t.write_ctl(CTL_IMASK);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn guest_timers_pick_the_earlier_deadline() {
        let mut g = GuestTimers::new(62_500_000);
        assert_eq!(g.next_deadline(), None);
        g.phys = armed(900);
        assert_eq!(g.next_deadline(), Some(900));
        g.virt = armed(400);
        assert_eq!(g.next_deadline(), Some(400));
        g.virt.write_ctl(CTL_ENABLE | CTL_IMASK);
        assert_eq!(g.next_deadline(), Some(900));
        assert_eq!(g.frequency, 62_500_000);
    }

    #[test]
    fn state_words_follow_every_field() {
        let base = GuestTimers::new(1_000_000_000);
        let w = base.state_words();
        let mut t = base;
        t.virt.enable = true;
        assert_ne!(t.state_words(), w);
        let mut t = base;
        t.phys.imask = true;
        assert_ne!(t.state_words(), w);
        let mut t = base;
        t.virt.cval = 5;
        assert_ne!(t.state_words(), w);
        let mut t = base;
        t.phys.cval = 5;
        assert_ne!(t.state_words(), w);
        assert_ne!(GuestTimers::new(62_500_000).state_words(), w);
        // The frame: its presence, and each of its fields.
        let framed = GuestTimers::with_frame(1_000_000_000);
        assert_ne!(framed.state_words(), w);
        let fw = framed.state_words();
        let mut t = framed;
        t.frame.as_mut().unwrap().virt.write_cval(9);
        assert_ne!(t.state_words(), fw);
        let mut t = framed;
        t.frame.as_mut().unwrap().phys.write_ctl(CTL_ENABLE);
        assert_ne!(t.state_words(), fw);
        let mut t = framed;
        t.frame.as_mut().unwrap().access = 0;
        assert_ne!(t.state_words(), fw);
    }

    #[test]
    fn the_frames_deadlines_count_with_the_system_registers() {
        let mut g = GuestTimers::with_frame(62_500_000);
        assert_eq!(g.next_deadline(), None);
        g.phys = armed(900);
        let f = g.frame.as_mut().unwrap();
        f.virt = armed(600);
        assert_eq!(g.next_deadline(), Some(600));
        g.frame.as_mut().unwrap().phys = armed(300);
        assert_eq!(g.next_deadline(), Some(300));
        g.frame
            .as_mut()
            .unwrap()
            .phys
            .write_ctl(CTL_ENABLE | CTL_IMASK);
        g.frame.as_mut().unwrap().virt.write_ctl(0);
        assert_eq!(g.next_deadline(), Some(900));
    }
}
