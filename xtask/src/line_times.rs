//! When each console line arrived, for timing parts of a run from the
//! outside (`cargo xtask bench`).
//!
//! The time of a line is the time the reader thread *read* the bytes that
//! ended it, stamped on the reader thread, not the time the main loop got
//! round to decoding them: the main loop polls QEMU every 50 ms and drains
//! what is left only after QEMU has exited, and a line stamped then would
//! be late by as much. The last line of a run need not end with a newline
//! (a guest's `poweroff -f` can cut its tty mid-line, and QEMU exits at
//! once): [`LineTimes::finish`] keeps it too, so a console that has a line
//! always has it timed.

use std::time::Duration;

/// The console's lines with their arrival times, built as text is decoded.
#[derive(Debug, Default)]
pub struct LineTimes {
    lines: Vec<(Duration, String)>,
    /// Text of the line not yet ended by a newline.
    partial: String,
    /// When the last byte of `partial` arrived.
    partial_at: Duration,
}

impl LineTimes {
    /// Takes decoded text that arrived at `at` (since QEMU started).
    pub fn push(&mut self, at: Duration, text: &str) {
        let mut rest = text;
        while let Some(i) = rest.find('\n') {
            self.partial.push_str(&rest[..i]);
            self.lines.push((at, std::mem::take(&mut self.partial)));
            rest = &rest[i + 1..];
        }
        if !rest.is_empty() {
            self.partial.push_str(rest);
            self.partial_at = at;
        }
    }

    /// Every line, the unterminated last one included (timed by its last
    /// byte).
    pub fn finish(mut self) -> Vec<(Duration, String)> {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.lines.push((self.partial_at, last));
        }
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_line_is_timed_by_the_chunk_that_ends_it() {
        let mut t = LineTimes::default();
        t.push(ms(10), "tandem-guest: init ");
        t.push(ms(20), "started\nnext");
        t.push(ms(30), " line\n\n");
        assert_eq!(
            t.finish(),
            vec![
                (ms(20), "tandem-guest: init started".to_string()),
                (ms(30), "next line".to_string()),
                (ms(30), String::new()),
            ]
        );
    }

    /// The direct run that failed `bench guest`: the guest powered off with
    /// its result line unterminated, the last text QEMU wrote before it
    /// exited, read in the runner's final drain. The console had the line;
    /// the timed lines must have it too, at the time it arrived.
    #[test]
    fn the_last_unterminated_line_is_kept_with_its_arrival_time() {
        let mut t = LineTimes::default();
        t.push(ms(1_000), "tandem-guest: init started\n");
        t.push(ms(2_500), "tandem-guest: workload result 905564");
        let lines = t.finish();
        assert_eq!(
            lines.last(),
            Some(&(
                ms(2_500),
                "tandem-guest: workload result 905564".to_string()
            ))
        );
    }
}
