//! A running QEMU's CPU time (user + system, all its threads), sampled
//! while it runs, so that a benchmark can tell how much CPU a window of the
//! guest's run took (`cargo xtask bench pair`'s `cpu` columns).
//!
//! Why beside the wall time: on a 2-core machine shared with other work, a
//! board that is ready to run but waits for a core loses wall time that is
//! no cost of its own; its CPU time is not moved by that wait. It still
//! moves with what the machine's other load does to caches and clocks, and
//! it leaves out what a board spends waiting on its peer (which the pair
//! reports apart: its send window's waits).

use std::time::Duration;

/// Samples kept no closer than this: the kernel counts CPU time in clock
/// ticks (10 ms at USER_HZ 100), so closer samples add nothing. The last
/// sample is always the newest, so that a moment just before the process
/// ended still has a sample at or after it.
const MIN_GAP: Duration = Duration::from_millis(20);

/// `(time since the process started, its CPU time then)`, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuSamples {
    samples: Vec<(Duration, Duration)>,
}

impl CpuSamples {
    /// Samples process `pid`'s CPU time at `at` (since its start); does
    /// nothing once it is gone.
    pub fn sample(&mut self, pid: u32, at: Duration) {
        if let Some(cpu) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            self.push(at, ticks_to_duration(cpu));
        }
    }

    /// Keeps a sample taken at `at`: it replaces the newest one while that
    /// is within [`MIN_GAP`] of the one before it. Out of order: dropped.
    fn push(&mut self, at: Duration, cpu: Duration) {
        if self.samples.last().is_some_and(|&(t, _)| at <= t) {
            return;
        }
        let n = self.samples.len();
        if n >= 2 && at.saturating_sub(self.samples[n - 2].0) < MIN_GAP {
            self.samples[n - 1] = (at, cpu);
        } else {
            self.samples.push((at, cpu));
        }
    }

    /// The CPU time at `at`, interpolated between the samples around it;
    /// `None` outside them.
    pub fn at(&self, at: Duration) -> Option<Duration> {
        let i = self.samples.partition_point(|&(t, _)| t < at);
        let &(t1, c1) = self.samples.get(i)?;
        if t1 == at {
            return Some(c1);
        }
        let &(t0, c0) = self.samples.get(i.checked_sub(1)?)?;
        let f = (at - t0).as_secs_f64() / (t1 - t0).as_secs_f64();
        Some(c0 + (c1.saturating_sub(c0)).mul_f64(f))
    }

    /// The CPU time spent from `from` to `to` (times since the start).
    pub fn between(&self, from: Duration, to: Duration) -> Option<Duration> {
        Some(self.at(to)?.saturating_sub(self.at(from)?))
    }
}

/// utime + stime, in clock ticks, from a `/proc/PID/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces, so the
/// fields are counted after its last `)`: state is field 3, utime 14,
/// stime 15 (proc(5)).
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let hz = *HZ.get_or_init(|| {
        // SAFETY: sysconf reads a configuration value; it has no
        // preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 { hz as u64 } else { 100 }
    });
    Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis in it.
        let stat = "4242 (qemu (x) a) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 4 0";
        assert_eq!(parse_stat(stat), Some(281));
        assert_eq!(parse_stat("4242 (qemu) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn cpu_time_between_two_moments_is_interpolated() {
        let mut s = CpuSamples::default();
        s.push(ms(0), ms(0));
        s.push(ms(100), ms(80));
        s.push(ms(200), ms(180));
        // Out of order or repeated samples are dropped.
        s.push(ms(150), ms(999));
        assert_eq!(s.at(ms(100)), Some(ms(80)));
        assert_eq!(s.at(ms(150)), Some(ms(130)));
        assert_eq!(s.between(ms(50), ms(150)), Some(ms(90)));
        assert_eq!(s.at(ms(201)), None);
        assert_eq!(CpuSamples::default().at(ms(0)), None);
    }

    #[test]
    fn close_samples_keep_the_newest() {
        let mut s = CpuSamples::default();
        for (t, c) in [(0, 0), (5, 1), (10, 2), (25, 20), (30, 21)] {
            s.push(ms(t), ms(c));
        }
        // 5 was replaced by 10 (within 20 ms of 0); 25 and 30 are kept
        // (25 - 0 and 30 - 10 are not within 20 ms).
        assert_eq!(
            s.samples,
            [(0, 0), (10, 2), (25, 20), (30, 21)].map(|(t, c)| (ms(t), ms(c)))
        );
        s.push(ms(31), ms(22));
        assert_eq!(s.samples.last(), Some(&(ms(31), ms(22))));
        assert_eq!(s.samples.len(), 4);
    }

    #[test]
    fn this_process_has_cpu_time() {
        let mut s = CpuSamples::default();
        let pid = std::process::id();
        s.sample(pid, ms(0));
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < ms(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        s.sample(pid, ms(100));
        assert_eq!(s.samples.len(), 2, "{x}");
        assert!(s.between(ms(0), ms(100)).is_some_and(|d| d > ms(0)));
    }
}
