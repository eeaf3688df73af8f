//! A trapped counter or timer register access, answered from the guest's
//! [`GuestTimers`] and guest time.
//!
//! The arch layer decodes the EC 0x18 syndrome ([`super::sysreg::decode`]),
//! reads Rt for an MSR, calls [`handle`], writes Rt for an MRS and advances
//! the PC. Writes to the counters or to CNTFRQ_EL0 (UNDEFINED at EL1) and
//! any register not listed come back [`TimerTrap::NotHandled`]: the arch
//! layer gives them to the next handler or injects an undefined-instruction
//! exception.

use super::sysreg::{
    CNTFRQ_EL0, CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0, CNTPCT_EL0, CNTPCTSS_EL0, CNTV_CTL_EL0,
    CNTV_CVAL_EL0, CNTV_TVAL_EL0, CNTVCT_EL0, CNTVCTSS_EL0, SysRegAccess,
};
use super::vtimer::{GuestTimers, Timer, read_counter};

/// What the trapped access amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerTrap {
    /// An MRS: write this to Rt (unless Rt is 31).
    Read(u64),
    /// An MSR, applied.
    Written,
    /// Not a timer register, or not writable from EL1.
    NotHandled,
}

/// Answers `access` at guest time `now`; `write_value` is Rt's value for an
/// MSR (ignored for an MRS).
pub fn handle(
    timers: &mut GuestTimers,
    access: &SysRegAccess,
    now: u64,
    write_value: u64,
) -> TimerTrap {
    let reg = access.reg();
    if access.read {
        match reg {
            CNTVCT_EL0 | CNTPCT_EL0 | CNTVCTSS_EL0 | CNTPCTSS_EL0 => {
                return TimerTrap::Read(read_counter(now));
            }
            CNTFRQ_EL0 => return TimerTrap::Read(timers.frequency.into()),
            _ => {}
        }
    }
    let (timer, op) = match reg {
        CNTV_CTL_EL0 => (&mut timers.virt, Op::Ctl),
        CNTV_CVAL_EL0 => (&mut timers.virt, Op::Cval),
        CNTV_TVAL_EL0 => (&mut timers.virt, Op::Tval),
        CNTP_CTL_EL0 => (&mut timers.phys, Op::Ctl),
        CNTP_CVAL_EL0 => (&mut timers.phys, Op::Cval),
        CNTP_TVAL_EL0 => (&mut timers.phys, Op::Tval),
        _ => return TimerTrap::NotHandled,
    };
    if access.read {
        TimerTrap::Read(op.read(timer, now))
    } else {
        op.write(timer, now, write_value);
        TimerTrap::Written
    }
}

/// Whether a counter read at guest time `now` changes nothing but the
/// register it reads: no timer deadline of the guest's has come, so no
/// line moves. Then the board answers it without the rest of an exit
/// (the list registers the guest holds stay as they are); the test is on
/// guest time, so both boards of a pair take the same path.
pub fn counter_read_alone(timers: &GuestTimers, now: u64) -> bool {
    timers.next_deadline().is_none_or(|d| d > now)
}

/// Whether [`handle`] answers `access` (so that the caller can decide, before
/// consulting guest time, whether the access is a timer access at all).
pub fn handles(access: &SysRegAccess) -> bool {
    let reg = access.reg();
    let counter = matches!(
        reg,
        CNTVCT_EL0 | CNTPCT_EL0 | CNTVCTSS_EL0 | CNTPCTSS_EL0 | CNTFRQ_EL0
    );
    let timer = matches!(
        reg,
        CNTV_CTL_EL0 | CNTV_CVAL_EL0 | CNTV_TVAL_EL0 | CNTP_CTL_EL0 | CNTP_CVAL_EL0 | CNTP_TVAL_EL0
    );
    (counter && access.read) || timer
}

/// Which of a timer's three registers.
#[derive(Clone, Copy)]
enum Op {
    Ctl,
    Cval,
    Tval,
}

impl Op {
    fn read(self, t: &Timer, now: u64) -> u64 {
        match self {
            Op::Ctl => t.read_ctl(now),
            Op::Cval => t.read_cval(),
            Op::Tval => t.read_tval(now),
        }
    }

    fn write(self, t: &mut Timer, now: u64, value: u64) {
        match self {
            Op::Ctl => t.write_ctl(value),
            Op::Cval => t.write_cval(value),
            Op::Tval => t.write_tval(now, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sysreg::SysReg;
    use super::super::vtimer::{CTL_ENABLE, CTL_ISTATUS};
    use super::*;

    fn access(r: SysReg, read: bool) -> SysRegAccess {
        SysRegAccess::new(r, 0, read)
    }

    #[test]
    fn handles_agrees_with_handle() {
        for r in [
            CNTVCT_EL0,
            CNTPCT_EL0,
            CNTFRQ_EL0,
            CNTV_CTL_EL0,
            CNTP_TVAL_EL0,
            SysReg {
                op0: 3,
                op1: 0,
                crn: 1,
                crm: 0,
                op2: 0,
            },
        ] {
            for read in [true, false] {
                let a = access(r, read);
                let mut t = GuestTimers::new(1_000_000);
                let answered = !matches!(handle(&mut t, &a, 5, 0), TimerTrap::NotHandled);
                assert_eq!(handles(&a), answered, "{r:?} read={read}");
            }
        }
    }

    fn mrs(t: &mut GuestTimers, r: SysReg, now: u64) -> TimerTrap {
        handle(t, &access(r, true), now, 0)
    }

    fn msr(t: &mut GuestTimers, r: SysReg, now: u64, v: u64) -> TimerTrap {
        handle(t, &access(r, false), now, v)
    }

    #[test]
    fn counters_and_frequency() {
        let mut t = GuestTimers::new(1_000_000_000);
        for r in [CNTVCT_EL0, CNTPCT_EL0, CNTVCTSS_EL0, CNTPCTSS_EL0] {
            assert_eq!(mrs(&mut t, r, 42), TimerTrap::Read(42));
            assert_eq!(msr(&mut t, r, 42, 0), TimerTrap::NotHandled);
        }
        assert_eq!(mrs(&mut t, CNTFRQ_EL0, 0), TimerTrap::Read(1_000_000_000));
        assert_eq!(msr(&mut t, CNTFRQ_EL0, 0, 5), TimerTrap::NotHandled);
    }

    #[test]
    fn virtual_timer_round_trip() {
        let mut t = GuestTimers::new(62_500_000);
        assert_eq!(msr(&mut t, CNTV_TVAL_EL0, 1_000, 100), TimerTrap::Written);
        assert_eq!(mrs(&mut t, CNTV_CVAL_EL0, 1_000), TimerTrap::Read(1_100));
        assert_eq!(mrs(&mut t, CNTV_TVAL_EL0, 1_060), TimerTrap::Read(40));
        assert_eq!(
            msr(&mut t, CNTV_CTL_EL0, 1_060, CTL_ENABLE),
            TimerTrap::Written
        );
        assert_eq!(
            mrs(&mut t, CNTV_CTL_EL0, 1_100),
            TimerTrap::Read(CTL_ENABLE | CTL_ISTATUS)
        );
        assert!(t.virt.irq_level(1_100));
        assert!(!t.phys.irq_level(1_100), "the physical timer is separate");
    }

    #[test]
    fn physical_timer_round_trip() {
        let mut t = GuestTimers::new(62_500_000);
        assert_eq!(msr(&mut t, CNTP_CVAL_EL0, 0, 5_000), TimerTrap::Written);
        assert_eq!(msr(&mut t, CNTP_CTL_EL0, 0, CTL_ENABLE), TimerTrap::Written);
        assert_eq!(mrs(&mut t, CNTP_TVAL_EL0, 4_000), TimerTrap::Read(1_000));
        assert_eq!(t.next_deadline(), Some(5_000));
        assert_eq!(t.virt.read_cval(), 0);
    }

    #[test]
    fn other_registers_are_not_handled() {
        let mut t = GuestTimers::new(1);
        // CNTKCTL_EL1 and an ID register.
        for r in [SysReg::new(3, 0, 14, 1, 0), SysReg::new(3, 0, 0, 4, 0)] {
            assert_eq!(mrs(&mut t, r, 0), TimerTrap::NotHandled);
            assert_eq!(msr(&mut t, r, 0, 0), TimerTrap::NotHandled);
        }
        assert_eq!(t, GuestTimers::new(1));
    }
}

#[cfg(test)]
mod alone_tests {
    use super::*;
    use crate::emul::vtimer::CTL_ENABLE;

    #[test]
    fn a_counter_read_is_alone_until_a_deadline_comes() {
        let mut t = GuestTimers::new(1_000_000_000);
        assert!(counter_read_alone(&t, 5), "no timer armed");
        t.virt.write_cval(100);
        t.virt.write_ctl(CTL_ENABLE);
        assert!(counter_read_alone(&t, 99));
        assert!(
            !counter_read_alone(&t, 100),
            "the deadline has come: a line moves"
        );
        // Masked, the line cannot rise.
        t.virt
            .write_ctl(CTL_ENABLE | crate::emul::vtimer::CTL_IMASK);
        assert!(counter_read_alone(&t, 500));
        t.phys.write_cval(400);
        t.phys.write_ctl(CTL_ENABLE);
        assert!(!counter_read_alone(&t, 400));
    }
}
