//! Guest time and the hypervisor's sleeps, over [`Hw`]'s counter and EL2
//! timer: what the board's idle paths decide, host-tested with a fake.
//!
//! Guest time is the physical counter (CNTVOFF_EL2 is 0) shifted by the
//! replica engine's offset on a backup that went live, so that guest time
//! goes on from the last logged time (`Engine::time_offset`, negative when
//! the backup's clock was ahead; 0 everywhere else): the EL2 timer, which
//! counts physical time, is armed for a guest deadline less that offset.

use crate::hw::Hw;

/// Guest time over the physical counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestClock {
    /// Guest time less physical time.
    pub offset: i64,
}

impl GuestClock {
    pub const fn new(offset: i64) -> Self {
        Self { offset }
    }

    /// Guest time now.
    pub fn now(self, hw: &impl Hw) -> u64 {
        hw.counter().saturating_add_signed(self.offset)
    }

    /// The EL2 timer deadline (physical counter) for a guest-time deadline.
    pub const fn physical(self, deadline: Option<u64>) -> Option<u64> {
        match deadline {
            Some(d) => Some(d.saturating_add_signed(self.offset.saturating_neg())),
            None => None,
        }
    }
}

/// The earlier of two wakes, either of which may be absent.
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Sleeps until the EL2 timer fires at `wake` (physical counter), or
/// another interrupt is pending; with no `wake`, only the latter.
pub fn sleep(hw: &mut impl Hw, wake: Option<u64>) {
    hw.arm_timer(wake);
    hw.wait_for_interrupt();
}

/// Without epochs, before every entry: the EL2 timer for the guest's next
/// deadline, if it is still to come at guest time `now`.
pub fn arm_for_guest(hw: &mut impl Hw, clock: GuestClock, deadline: Option<u64>, now: u64) {
    hw.arm_timer(clock.physical(deadline.filter(|&d| d > now)));
}

/// The physical counter value a heartbeat `heartbeat_ms` from now is due
/// at (at least one tick ahead).
pub fn heartbeat_wake(hw: &impl Hw, heartbeat_ms: u64) -> u64 {
    let ticks = hw.frequency() * heartbeat_ms / 1_000;
    hw.counter() + ticks.max(1)
}

/// The board's clock in microseconds (the physical counter): the
/// replication link's time and the replica session's.
pub fn now_us(hw: &impl Hw) -> u64 {
    let f = hw.frequency().max(1);
    ((u128::from(hw.counter()) * 1_000_000) / u128::from(f)) as u64
}

/// Counter ticks per microsecond (at least one).
pub fn ticks_per_us(hw: &impl Hw) -> u64 {
    (hw.frequency() / 1_000_000).max(1)
}

/// Sleeps for about a millisecond of the board's clock (a backup waiting
/// for the log: its clock then follows host time under QEMU's
/// `-icount ...,sleep=on`, and the host core is free for the primary).
pub fn pause(hw: &mut impl Hw) {
    let wake = heartbeat_wake(hw, 1);
    sleep(hw, Some(wake));
    // Disarmed, the timer's line drops and nothing is left pending for
    // the guest's next run.
    hw.arm_timer(None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A counter that stands still, and a timer that records what it was
    /// armed for.
    #[derive(Default)]
    struct Fake {
        counter: u64,
        frequency: u64,
        armed: Vec<Option<u64>>,
        waits: usize,
    }

    impl Hw for Fake {
        fn read_lr(&self, _: usize) -> u64 {
            0
        }
        fn write_lr(&mut self, _: usize, _: u64) {}
        fn set_underflow(&mut self, _: bool) {}
        fn counter(&self) -> u64 {
            self.counter
        }
        fn frequency(&self) -> u64 {
            self.frequency
        }
        fn arm_timer(&mut self, deadline: Option<u64>) {
            self.armed.push(deadline);
        }
        fn wait_for_interrupt(&mut self) {
            self.waits += 1;
        }
        fn read_ram(&self, _: crate::mem::TouchedSpan, _: &mut [u64]) {
            unreachable!("the clock reads no guest RAM")
        }
    }

    #[test]
    fn guest_time_is_the_counter_shifted_and_deadlines_are_shifted_back() {
        let hw = Fake {
            counter: 1_000,
            ..Fake::default()
        };
        assert_eq!(GuestClock::new(0).now(&hw), 1_000);
        let c = GuestClock::new(250);
        assert_eq!(c.now(&hw), 1_250);
        assert_eq!(c.physical(Some(1_300)), Some(1_050));
        assert_eq!(c.physical(None), None);
        // A deadline before the offset is due now, not in the far future.
        assert_eq!(c.physical(Some(100)), Some(0));
        assert_eq!(GuestClock::new(i64::MAX).now(&hw), 1_000 + i64::MAX as u64);
        // A backup whose clock was ahead: shifted back, never below 0.
        let back = GuestClock::new(-400);
        assert_eq!(back.now(&hw), 600);
        assert_eq!(back.physical(Some(700)), Some(1_100));
        assert_eq!(GuestClock::new(-5_000).now(&hw), 0);
    }

    #[test]
    fn sleeps_arm_the_earlier_wake_then_wait() {
        assert_eq!(earliest(Some(5), Some(3)), Some(3));
        assert_eq!(earliest(None, Some(3)), Some(3));
        assert_eq!(earliest(Some(5), None), Some(5));
        assert_eq!(earliest(None, None), None);
        let mut hw = Fake::default();
        sleep(&mut hw, earliest(Some(9), Some(7)));
        sleep(&mut hw, None);
        assert_eq!(hw.armed, [Some(7), None]);
        assert_eq!(hw.waits, 2);
    }

    #[test]
    fn the_guest_timer_is_armed_only_for_a_deadline_still_to_come() {
        let mut hw = Fake::default();
        let c = GuestClock::new(10);
        arm_for_guest(&mut hw, c, Some(100), 50);
        arm_for_guest(&mut hw, c, Some(50), 50);
        arm_for_guest(&mut hw, c, None, 50);
        assert_eq!(hw.armed, [Some(90), None, None]);
        assert_eq!(hw.waits, 0);
    }

    #[test]
    fn the_board_clock_is_the_counter_in_microseconds() {
        let hw = Fake {
            counter: 62_500_000 * 3 + 625,
            frequency: 62_500_000,
            ..Fake::default()
        };
        assert_eq!(now_us(&hw), 3_000_010);
        assert_eq!(ticks_per_us(&hw), 62);
        // No frequency: ticks are taken as µs rather than dividing by 0.
        let zero = Fake {
            counter: 7,
            ..Fake::default()
        };
        assert_eq!(now_us(&zero), 7_000_000);
        assert_eq!(ticks_per_us(&zero), 1);
    }

    #[test]
    fn a_pause_sleeps_a_millisecond_then_disarms() {
        let mut hw = Fake {
            counter: 1_000,
            frequency: 1_000_000,
            ..Fake::default()
        };
        pause(&mut hw);
        assert_eq!(hw.armed, [Some(2_000), None]);
        assert_eq!(hw.waits, 1);
    }

    #[test]
    fn a_heartbeat_wake_is_at_least_a_tick_ahead() {
        let hw = Fake {
            counter: 500,
            frequency: 62_500_000,
            ..Fake::default()
        };
        assert_eq!(heartbeat_wake(&hw, 100), 500 + 6_250_000);
        let slow = Fake {
            counter: 500,
            frequency: 1,
            ..Fake::default()
        };
        assert_eq!(heartbeat_wake(&slow, 100), 501);
    }
}
