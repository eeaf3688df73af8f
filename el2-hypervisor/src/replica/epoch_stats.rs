//! What a run's epochs were: why each ended, how many single steps took
//! each to its exact end (`replica::step_to_count`), and how late the
//! guest's timer interrupts were raised (from the deadline in guest time
//! to the guest time at which the hypervisor raised the line). Printed at
//! power-off, for the measurements (docs/measurements.md).

use super::output::Histogram;
use super::step_to_count::StepTally;
use crate::emul::vtimer::GuestTimers;
use core::fmt;

/// Why an epoch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochEnd {
    /// The epoch counter ran out: a full epoch.
    Full,
    /// A timer deadline came first (`replica::epoch_time`).
    Deadline,
    /// The guest executed WFI.
    Idle,
}

/// The epochs of a run and the timer interrupts raised in it.
pub struct EpochStats {
    full: u64,
    deadline: u64,
    idle: u64,
    /// Deadline points inside an epoch (the inline delivery).
    inline: u64,
    /// The deadline (CVAL) of each timer (virtual, physical, and the
    /// memory-mapped frame's physical and virtual) whose line was last
    /// raised: a line raised again for the same deadline is not another
    /// interrupt.
    raised: [Option<u64>; 4],
    /// Lateness in counter ticks.
    late: Histogram,
    /// Single steps to the exact count: in all, and the fewest and most
    /// in one epoch.
    steps: Steps,
}

/// Single steps per epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Steps {
    total: u64,
    /// Steps that took the count on by more than one instruction.
    wide: u64,
    min: u64,
    max: u64,
}

impl EpochStats {
    pub const fn new() -> Self {
        Self {
            full: 0,
            deadline: 0,
            idle: 0,
            inline: 0,
            raised: [None; 4],
            late: Histogram::new(),
            steps: Steps {
                total: 0,
                wide: 0,
                min: u64::MAX,
                max: 0,
            },
        }
    }

    /// The epoch that just ended took `tally` single steps to its end.
    pub fn stepped(&mut self, tally: StepTally) {
        let s = &mut self.steps;
        let steps = tally.steps;
        s.total += steps;
        s.wide += tally.wide;
        s.min = s.min.min(steps);
        s.max = s.max.max(steps);
    }

    fn epochs(&self) -> u64 {
        self.full + self.deadline + self.idle
    }

    /// An epoch ended.
    pub fn ended(&mut self, why: EpochEnd) {
        match why {
            EpochEnd::Full => self.full += 1,
            EpochEnd::Deadline => self.deadline += 1,
            EpochEnd::Idle => self.idle += 1,
        }
    }

    /// A deadline met inside an epoch.
    pub fn inline_deadline(&mut self) {
        self.inline += 1;
    }

    /// The timers' lines were brought up to guest time `now`: each line
    /// high for a deadline not yet seen counts as an interrupt raised
    /// `now - deadline` late.
    pub fn lines_at(&mut self, timers: &GuestTimers, now: u64) {
        let frame = timers.frame.unwrap_or_default();
        let all = [timers.virt, timers.phys, frame.phys, frame.virt];
        for (seen, t) in self.raised.iter_mut().zip(&all) {
            if t.irq_level(now) && *seen != Some(t.read_cval()) {
                *seen = Some(t.read_cval());
                self.late.record(now.saturating_sub(t.read_cval()), 1);
            }
        }
    }

    /// The report, with lateness in µs of a `ticks_per_second` counter.
    pub fn report(&self, ticks_per_second: u64) -> Report<'_> {
        Report {
            stats: self,
            ticks_per_second: ticks_per_second.max(1),
        }
    }
}

impl Default for EpochStats {
    fn default() -> Self {
        Self::new()
    }
}

/// [`EpochStats`] as a line.
pub struct Report<'a> {
    stats: &'a EpochStats,
    ticks_per_second: u64,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.stats;
        let us =
            |ticks: u64| (u128::from(ticks) * 1_000_000 / u128::from(self.ticks_per_second)) as u64;
        write!(
            f,
            "epochs: {} full, {} ended at a timer deadline, {} at WFI; {} deadlines met inside an epoch; timer interrupts: {}, raised late by p50 {} us, p99 {} us, max {} us",
            s.full,
            s.deadline,
            s.idle,
            s.inline,
            s.late.total(),
            us(s.late.percentile(50)),
            us(s.late.percentile(99)),
            us(s.late.max()),
        )?;
        let n = s.epochs();
        if s.steps.total > 0 && n > 0 {
            write!(
                f,
                "; single steps to the exact count: {} ({} per epoch on average, min {}, max {}; {} over more than one instruction)",
                s.steps.total,
                s.steps.total / n,
                s.steps.min,
                s.steps.max,
                s.steps.wide
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emul::vtimer::CTL_ENABLE;
    use alloc::string::ToString;

    fn timers(cval: u64) -> GuestTimers {
        let mut t = GuestTimers::new(1_000_000);
        t.virt.write_cval(cval);
        t.virt.write_ctl(CTL_ENABLE);
        t
    }

    #[test]
    fn each_deadline_counts_once_with_its_lateness() {
        let mut s = EpochStats::new();
        let t = timers(1_000);
        s.lines_at(&t, 999); // not yet due
        s.lines_at(&t, 1_250);
        s.lines_at(&t, 1_900); // the same deadline, still high
        s.lines_at(&timers(2_000), 2_000);
        let line = s.report(1_000_000).to_string();
        assert!(
            line.contains("timer interrupts: 2, raised late by p50 0 us, p99 250 us, max 250 us"),
            "{line}"
        );
    }

    #[test]
    fn epochs_are_counted_by_why_they_ended() {
        let mut s = EpochStats::new();
        for why in [
            EpochEnd::Full,
            EpochEnd::Full,
            EpochEnd::Deadline,
            EpochEnd::Idle,
        ] {
            s.ended(why);
        }
        s.inline_deadline();
        let line = s.report(1).to_string();
        assert!(
            line.starts_with("epochs: 2 full, 1 ended at a timer deadline, 1 at WFI; 1 deadlines met inside an epoch;"),
            "{line}"
        );
        // No steps (the exact counter): nothing said of them.
        assert!(!line.contains("single steps"), "{line}");
    }

    #[test]
    fn steps_per_epoch_are_reported() {
        let mut s = EpochStats::new();
        for (why, steps, wide) in [
            (EpochEnd::Full, 256, 0),
            (EpochEnd::Full, 256, 1),
            (EpochEnd::Deadline, 300, 2),
            (EpochEnd::Idle, 0, 0),
        ] {
            s.ended(why);
            s.stepped(StepTally::of(steps, wide));
        }
        let line = s.report(1).to_string();
        assert!(
            line.ends_with(
                "; single steps to the exact count: 812 (203 per epoch on average, min 0, max 300; 3 over more than one instruction)"
            ),
            "{line}"
        );
    }
}
