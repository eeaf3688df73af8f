//! What the user sees besides the guest: a live status line while the
//! pair runs (on a terminal only), and the closing report.

use super::PairOutcome;
use super::kill::Who;
use super::watch::Seen;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// The live status line: epoch, guest time, log rate, how far the backup
/// lags, output held. None when stdout is not a terminal (or when quiet).
pub struct StatusLine {
    bar: Option<ProgressBar>,
    /// The primary's last status, to rate the log.
    last: Option<(u64, u64)>,
    rate: f64,
}

impl StatusLine {
    pub fn new(echo: bool) -> Self {
        let bar = (echo && std::io::stdout().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Self {
            bar,
            last: None,
            rate: 0.0,
        }
    }

    pub fn active(&self) -> bool {
        self.bar.is_some()
    }

    /// Prints text above the status line.
    pub fn print(&self, text: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| {
                print!("{text}");
                let _ = std::io::stdout().flush();
            }),
            None => {
                print!("{text}");
                let _ = std::io::stdout().flush();
            }
        }
    }

    /// Redraws from what the boards said last.
    pub fn update(&mut self, seen: [&Seen; 2]) {
        let Some(bar) = &self.bar else { return };
        let p = seen[Who::Primary.index()].status.map(|(s, _)| s);
        let b = seen[Who::Backup.index()].status.map(|(s, _)| s);
        if seen[Who::Backup.index()].takeover.is_some() {
            // The survivor runs alone: its epoch is the guest's.
            if let Some(b) = b {
                bar.set_message(format!(
                    "epoch {} | the backup took over and runs unprotected",
                    b.epoch
                ));
            }
            return;
        }
        let Some(p) = p else {
            bar.set_message("pairing...");
            return;
        };
        if let Some((us, bytes)) = self.last
            && p.guest_us > us
        {
            self.rate =
                (p.log_bytes - bytes.min(p.log_bytes)) as f64 * 1e6 / (p.guest_us - us) as f64;
        }
        self.last = Some((p.guest_us, p.log_bytes));
        let lag = b.map_or("-".to_string(), |b| {
            format!("{} epochs", p.epoch.saturating_sub(b.epoch))
        });
        bar.set_message(format!(
            "epoch {} | guest {:.1} s | log {:.0} KB/guest-s | backup lag {} | output held {} B",
            p.epoch,
            p.guest_us as f64 / 1e6,
            self.rate / 1e3,
            lag,
            p.held
        ));
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The closing report, as lines.
pub fn closing(o: &PairOutcome) -> Vec<String> {
    let mut out = vec![format!(
        "pair: {} link, epochs of {} instructions, {:.1} s",
        o.link.option(),
        o.epoch,
        o.wall.as_secs_f64()
    )];
    for who in Who::BOTH {
        let s = &o.seen[who.index()];
        let ended = match s.status() {
            Some(c) => format!(
                "status {c} ({})",
                el2_hypervisor::exit::ExitStatus::from_code(c).map_or("unknown", |e| e.meaning())
            ),
            None => o.exits[who.index()].clone(),
        };
        let mut line = format!("pair: {who}: {ended}");
        if let Some(m) = s.summary {
            let (verb, acks) = match who {
                Who::Primary => ("sent", format!(", {} acknowledged", m.acked)),
                Who::Backup => ("consumed", String::new()),
            };
            line.push_str(&format!(
                "; {} epochs, log {} messages / {} bytes {verb}{acks}",
                m.epochs, m.msgs, m.log_bytes
            ));
        }
        out.push(line);
        if who == Who::Primary
            && let Some(m) = s.summary
        {
            out.push(format!(
                "pair: send window: full at {} sends, {:.1} ms of the primary's clock waiting for room",
                m.window_waits,
                m.window_wait_us as f64 / 1e3
            ));
            if m.hold_capacity > 0 {
                out.push(format!(
                    "pair: output hold: {} B capacity, at most {} B held, {} B released, held p50 {} us p99 {} us, the guest waited for room {} times",
                    m.hold_capacity, m.hold_max, m.released, m.hold_p50_us, m.hold_p99_us, m.full_waits
                ));
            }
        }
    }
    for (who, t, at) in &o.kills {
        out.push(format!(
            "pair: killed the {who} ({t}), {:.1} s after the start",
            at.as_secs_f64()
        ));
    }
    if let Some((t, _)) = o.seen[Who::Backup.index()].takeover {
        let wall = o
            .detection_wall()
            .map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()));
        out.push(format!(
            "pair: takeover at epoch {} (count {}, guest time {:.3} s{}): the primary declared dead after {} ms of the backup's time, {wall} of wall time after the kill; the guest's clock goes on from there; {} bytes of output re-emitted",
            t.epoch,
            t.count,
            t.guest_us as f64 / 1e6,
            o.primary_last_guest_us().map_or(String::new(), |g| format!(
                "; the primary's last status {:.3} s",
                g as f64 / 1e6
            )),
            t.silent_ms,
            t.released
        ));
    }
    if let Some((b, _)) = o.seen[Who::Primary.index()].backup_lost {
        out.push(format!(
            "pair: the backup was lost at epoch {}; the primary ran on unprotected",
            b.epoch
        ));
    }
    if o.merged.early_backup_bytes > 0 {
        out.push(format!(
            "pair: FAULT: the backup emitted {} bytes of output while the primary lived",
            o.merged.early_backup_bytes
        ));
    }
    if o.timed_out {
        out.push("pair: timed out: both boards were killed".into());
    }
    out.push(match o.finisher() {
        Some(w) => format!("pair: the guest ran to its end on the {w}"),
        None => "pair: the guest did not complete".into(),
    });
    out
}
