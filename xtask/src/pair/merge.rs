//! The merged guest console: what the outside world saw of the guest, as
//! it happened. The primary's output (which it releases only once the
//! backup holds every log message before it), then, after a takeover, the
//! survivor's, which starts with the output the primary may not have
//! released (so a line may appear twice across the takeover; none is
//! missing). A backup's output while its primary lives is a fault: it is
//! counted, and not shown.

use super::kill::Who;
use super::report::StatusLine;
use super::watch::Event;

/// The merged console.
pub struct Merged {
    echo: bool,
    text: String,
    /// The part of the last line not yet printed (the status line sits on
    /// the terminal's last line, so only whole lines go out under it).
    pending: String,
    backup_live: bool,
    /// Backup output bytes seen while the primary lived.
    pub early_backup_bytes: u64,
}

impl Merged {
    pub fn new(echo: bool) -> Self {
        Self {
            echo,
            text: String::new(),
            pending: String::new(),
            backup_live: false,
            early_backup_bytes: 0,
        }
    }

    /// A board's event.
    pub fn on(&mut self, who: Who, ev: Event, status: &StatusLine) {
        match ev {
            Event::Guest(bytes) => {
                if who == Who::Backup && !self.backup_live {
                    self.early_backup_bytes += bytes.len() as u64;
                    return;
                }
                self.add(&String::from_utf8_lossy(&bytes), status);
            }
            Event::Takeover(t) => {
                self.backup_live = true;
                self.note(
                    &format!(
                        "[pair] ---- takeover: the primary is gone; the backup goes live at epoch {} (nothing heard for {} ms); it re-emits {} bytes the primary may not have released ----",
                        t.epoch, t.silent_ms, t.released
                    ),
                    status,
                );
            }
            Event::BackupLost(b) => self.note(
                &format!(
                    "[pair] ---- the backup is gone (epoch {}): the primary runs on unprotected ----",
                    b.epoch
                ),
                status,
            ),
        }
    }

    /// A line of our own, on a line of its own.
    pub fn note(&mut self, line: &str, status: &StatusLine) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.add("\n", status);
        }
        self.add(line, status);
        self.add("\n", status);
    }

    fn add(&mut self, s: &str, status: &StatusLine) {
        self.text.push_str(s);
        if !self.echo {
            return;
        }
        self.pending.push_str(s);
        if let Some(i) = self.pending.rfind('\n') {
            let whole: String = self.pending.drain(..=i).collect();
            status.print(&whole);
        } else if !status.active() {
            let part = std::mem::take(&mut self.pending);
            status.print(&part);
        }
    }

    /// Prints what is left of the last line.
    pub fn flush(&mut self, status: &StatusLine) {
        if self.echo && !self.pending.is_empty() {
            let part = std::mem::take(&mut self.pending);
            status.print(&part);
        }
    }

    /// Everything shown.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The guest lines that start with `prefix`, in order.
    pub fn lines_with(&self, prefix: &str) -> Vec<&str> {
        self.text
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
}

/// Whether `want` appears in `got` in order, each at least once (repeats
/// allowed: a takeover may show a line twice).
pub fn in_order_at_least_once(got: &[&str], want: &[&str]) -> Result<(), String> {
    let mut at = 0;
    for w in want {
        match got[at..].iter().position(|g| g == w) {
            Some(i) => at += i + 1,
            None => {
                return Err(if got.contains(w) {
                    format!("`{w}` is out of order")
                } else {
                    format!("`{w}` is missing")
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use el2_hypervisor::replica::pair_lines::Takeover;

    #[test]
    fn backup_output_counts_only_after_its_takeover() {
        let s = StatusLine::new(false);
        let mut m = Merged::new(false);
        m.on(Who::Primary, Event::Guest(b"a\nb".to_vec()), &s);
        m.on(Who::Backup, Event::Guest(b"early".to_vec()), &s);
        m.on(Who::Backup, Event::Takeover(Takeover::default()), &s);
        m.on(Who::Backup, Event::Guest(b"b\nc\n".to_vec()), &s);
        assert_eq!(m.early_backup_bytes, 5);
        let lines: Vec<&str> = m.text().lines().collect();
        assert_eq!(lines[0], "a");
        assert_eq!(lines[1], "b");
        assert!(lines[2].starts_with("[pair] ---- takeover"));
        assert_eq!(&lines[3..], ["b", "c"]);
    }

    #[test]
    fn order_with_repeats() {
        let got = ["x", "a", "b", "a", "b", "c"];
        assert!(in_order_at_least_once(&got, &["a", "b", "c"]).is_ok());
        assert!(in_order_at_least_once(&got, &["a", "c", "d"]).is_err());
        assert_eq!(
            in_order_at_least_once(&["b", "a"], &["a", "b"]),
            Err("`b` is out of order".into())
        );
    }
}
