//! Guest time with epochs: a function of the instruction count, so that no
//! counter read or timer register access is an environment input.
//!
//! Each epoch has a base time, fixed at the boundary that starts it; at
//! instruction `count` of the epoch the guest's counter reads
//! `base + count × rate`, where the rate is the guest counter's frequency
//! over a nominal [`INSTRUCTIONS_PER_SECOND`]. Both boards compute the
//! same value at the same instruction, so only the base travels: the
//! primary ships the next epoch's base in each `EpochEnd` (its `time`).
//!
//! The primary chooses a base from its own clock ([`next_base`]), under
//! four rules:
//! - never below where the epoch that ends got to (`end`): guest time
//!   never goes backwards;
//! - after an idle boundary (a WFI, where the guest asked to wait) the
//!   base is the clock: idle time passes as it does on the board;
//! - after a running boundary a clock that is ahead is caught up by at
//!   most the epoch's own length of time (slewed, not jumped: the guest's
//!   time runs at most twice its nominal rate while it catches up);
//! - never past the guest's next timer deadline: a boundary's step in
//!   guest time never skips one, so every timer interrupt is raised when
//!   guest time reads its deadline, not after (a woken idle board's late
//!   wake-up, or a catch-up, is made good at later boundaries).
//!
//! Because time inside an epoch is known ahead, a timer deadline can be met
//! at its exact instruction: [`EpochTime::count_at`] gives the count where
//! guest time reaches it, and the board ends the epoch there (on both
//! boards alike), instead of at the next boundary.

/// Guest instructions per second of guest time: 1 ns per instruction, as
/// QEMU's `-icount shift=0` runs. On a real core this is a nominal rate;
/// the boundaries' bases keep guest time near the board's clock.
pub const INSTRUCTIONS_PER_SECOND: u64 = 1_000_000_000;

/// The guest's counter against the instruction count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Counter ticks per second of guest time (CNTFRQ_EL0).
    ticks_per_second: u64,
}

impl Rate {
    /// A counter of `ticks_per_second` Hz (at least 1).
    pub const fn new(ticks_per_second: u64) -> Self {
        Self {
            ticks_per_second: if ticks_per_second == 0 {
                1
            } else {
                ticks_per_second
            },
        }
    }

    /// Counter ticks that `count` instructions take (rounded down).
    pub const fn ticks(self, count: u64) -> u64 {
        let t = count as u128 * self.ticks_per_second as u128 / INSTRUCTIONS_PER_SECOND as u128;
        if t > u64::MAX as u128 {
            u64::MAX
        } else {
            t as u64
        }
    }

    /// The fewest instructions after which at least `ticks` have passed.
    pub const fn instructions(self, ticks: u64) -> u64 {
        let n = (ticks as u128 * INSTRUCTIONS_PER_SECOND as u128)
            .div_ceil(self.ticks_per_second as u128);
        if n > u64::MAX as u128 {
            u64::MAX
        } else {
            n as u64
        }
    }
}

/// Guest time in the epoch in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochTime {
    /// Guest time at the epoch's first instruction.
    pub base: u64,
    pub rate: Rate,
}

impl EpochTime {
    pub const fn new(base: u64, rate: Rate) -> Self {
        Self { base, rate }
    }

    /// Guest time at instruction `count` of the epoch.
    pub const fn at(&self, count: u64) -> u64 {
        self.base.saturating_add(self.rate.ticks(count))
    }

    /// The first instruction count of the epoch at which guest time has
    /// reached `deadline` (0 if it already has).
    pub const fn count_at(&self, deadline: u64) -> u64 {
        if deadline <= self.base {
            return 0;
        }
        self.rate.instructions(deadline - self.base)
    }
}

/// Where a boundary happened, for the next base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// The guest was running (the epoch counter ran out, or a deadline).
    Running,
    /// The guest is idle (a WFI): time passes as on the board.
    Idle,
}

/// The base of the next epoch, chosen at the boundary of an epoch that
/// ran `count` instructions from guest time `time.base` and got to `end`,
/// with the board's clock reading `clock` (in guest time) and the guest's
/// next timer deadline `deadline`.
pub fn next_base(
    time: EpochTime,
    count: u64,
    clock: u64,
    pace: Pace,
    deadline: Option<u64>,
) -> u64 {
    let end = time.at(count);
    if clock <= end {
        return end;
    }
    let base = match pace {
        Pace::Idle => clock,
        Pace::Running => end.saturating_add((clock - end).min(time.rate.ticks(count))),
    };
    match deadline {
        // A deadline reached in this epoch (it ended there) or still to
        // come: the step stops at it. One that was due before the epoch
        // began is no limit (a line the guest leaves high would hold
        // guest time back for ever).
        Some(d) if d > time.base => base.min(d.max(end)),
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU virt's counter with `-cpu max`: 1 GHz; 62.5 MHz on older
    /// CPU models.
    const GHZ: Rate = Rate::new(1_000_000_000);
    const QEMU_OLD: Rate = Rate::new(62_500_000);

    #[test]
    fn time_follows_the_count() {
        let t = EpochTime::new(1_000, GHZ);
        assert_eq!(t.at(0), 1_000);
        assert_eq!(t.at(500), 1_500);
        let t = EpochTime::new(1_000, QEMU_OLD);
        // 16 instructions per tick, rounded down.
        assert_eq!(t.at(15), 1_000);
        assert_eq!(t.at(16), 1_001);
        assert_eq!(t.at(1_000_000), 1_000 + 62_500);
    }

    #[test]
    fn time_never_wraps() {
        let t = EpochTime::new(u64::MAX - 1, GHZ);
        assert_eq!(t.at(10), u64::MAX);
        assert_eq!(Rate::new(u64::MAX).ticks(u64::MAX), u64::MAX);
        assert_eq!(Rate::new(0).ticks(INSTRUCTIONS_PER_SECOND), 1);
    }

    #[test]
    fn a_deadline_is_reached_at_the_first_count_that_gets_there() {
        for rate in [GHZ, QEMU_OLD, Rate::new(54_000_000), Rate::new(19_200_000)] {
            let t = EpochTime::new(10_000, rate);
            for deadline in [10_000, 10_001, 10_017, 12_345, 1 << 40] {
                let c = t.count_at(deadline);
                assert!(t.at(c) >= deadline, "{rate:?} {deadline}");
                if c > 0 {
                    assert!(
                        t.at(c - 1) < deadline,
                        "{rate:?} {deadline}: {c} is not the first"
                    );
                }
            }
            assert_eq!(t.count_at(9_000), 0, "a deadline already past");
        }
    }

    /// The base after an epoch of `count` instructions from 4,000 (at
    /// 1 GHz, so it ends at 4,000 + `count`).
    fn after(count: u64, clock: u64, pace: Pace, deadline: Option<u64>) -> u64 {
        next_base(EpochTime::new(4_000, GHZ), count, clock, pace, deadline)
    }

    #[test]
    fn the_base_never_goes_back() {
        // The clock is behind where the epoch got to (5,000).
        for pace in [Pace::Running, Pace::Idle] {
            assert_eq!(after(1_000, 4_000, pace, None), 5_000);
            // A deadline already past changes nothing.
            assert_eq!(after(1_000, 4_000, pace, Some(10)), 5_000);
        }
    }

    #[test]
    fn idle_time_passes_and_running_time_is_slewed() {
        // An idle guest waited: the base is the clock.
        assert_eq!(after(1_000, 90_000, Pace::Idle, None), 90_000);
        // A running guest behind the clock catches up by at most the
        // epoch's own length (1,000 ticks here).
        assert_eq!(after(1_000, 90_000, Pace::Running, None), 6_000);
        assert_eq!(after(1_000, 5_400, Pace::Running, None), 5_400);
        assert_eq!(after(0, 90_000, Pace::Running, None), 4_000);
    }

    #[test]
    fn a_step_never_passes_the_next_deadline() {
        // The idle board woke late (its clock at 90,000 for a deadline at
        // 60,000): guest time resumes at the deadline.
        assert_eq!(after(1_000, 90_000, Pace::Idle, Some(60_000)), 60_000);
        // A catch-up stops there too.
        assert_eq!(after(1_000, 90_000, Pace::Running, Some(5_300)), 5_300);
        // A deadline the epoch reached (it ended there): no step at all,
        // the timer's interrupt comes at the guest time of its deadline.
        assert_eq!(after(1_000, 90_000, Pace::Running, Some(4_700)), 5_000);
        assert_eq!(after(1_000, 90_000, Pace::Idle, Some(5_000)), 5_000);
        // A deadline beyond the step, or one due before the epoch began,
        // is no limit.
        assert_eq!(after(1_000, 90_000, Pace::Idle, Some(95_000)), 90_000);
        assert_eq!(after(1_000, 90_000, Pace::Idle, Some(4_000)), 90_000);
    }
}
