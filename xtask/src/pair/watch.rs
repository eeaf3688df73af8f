//! One board's console during a pair run: split into the hypervisor's
//! text, the guest's output, defmt frames and the exit record; the
//! transcript kept; the board's `pair:` lines
//! (`el2_hypervisor::replica::pair_lines`) read as they arrive.

use super::kill::Who;
use crate::console::{Demux, LogDecoder, Piece};
use defmt_decoder::Table;
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::replica::pair_lines::{BackupLost, Status, Summary, Takeover};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// What a board's console said that matters to the pair.
pub enum Event {
    /// Guest output bytes.
    Guest(Vec<u8>),
    Takeover(Takeover),
    BackupLost(BackupLost),
}

/// What was seen on one board's console (owned: it outlives the run).
#[derive(Default)]
pub struct Seen {
    pub transcript: String,
    /// The hypervisor's lines, in order.
    pub lines: Vec<String>,
    pub status: Option<(Status, Instant)>,
    pub takeover: Option<(Takeover, Instant)>,
    pub backup_lost: Option<(BackupLost, Instant)>,
    pub summary: Option<Summary>,
    /// The exit record: `None` none, `Some(None)` damaged.
    pub record: Option<Option<u8>>,
    /// Guest output bytes this board emitted, and how many of them before
    /// it took over (a backup must emit none while the primary lives).
    pub guest_bytes: u64,
    pub guest_bytes_before_takeover: u64,
    /// The guest's lines as this board emitted them, each with the time
    /// its end arrived (for `cargo xtask bench pair`'s workload time).
    pub guest_lines: Vec<(Instant, String)>,
    /// The guest line not yet ended.
    guest_partial: String,
}

impl Seen {
    /// The board's exit status, from its exit record.
    pub fn status(&self) -> Option<u8> {
        self.record.flatten()
    }

    /// Whether a hypervisor line contains `text`.
    pub fn said(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.contains(text))
    }
}

/// A board's console being read.
pub struct Watch<'t> {
    pub who: Who,
    demux: Demux,
    decoder: LogDecoder<'t>,
    line: String,
    /// The transcript as it grows (`tail -f` it while the pair runs).
    file: Option<std::fs::File>,
    written: usize,
    /// Whose text the transcript's last line holds (`true`: the guest's).
    guest_line: bool,
    pub seen: Seen,
}

impl<'t> Watch<'t> {
    /// Watches the board started with `command_line`, its transcript
    /// written to `path` as it comes (`None`: kept in memory only).
    pub fn new(
        who: Who,
        table: Option<&'t Table>,
        command_line: &str,
        path: Option<&Path>,
    ) -> Self {
        let mut w = Self {
            who,
            demux: Demux::default(),
            decoder: LogDecoder::new(table),
            line: String::new(),
            file: path.and_then(|p| std::fs::File::create(p).ok()),
            written: 0,
            guest_line: false,
            seen: Seen::default(),
        };
        w.seen.transcript = format!("$ {command_line}\n");
        w.write_out();
        w
    }

    fn write_out(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.write_all(&self.seen.transcript.as_bytes()[self.written..]);
            let _ = f.flush();
        }
        self.written = self.seen.transcript.len();
    }

    /// Takes console bytes that arrived at `at`; returns what matters.
    pub fn push(&mut self, bytes: &[u8], at: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        for piece in self.demux.push(bytes) {
            match piece {
                Piece::Text(t) => {
                    let text = String::from_utf8_lossy(&t).into_owned();
                    self.switch_line(false);
                    self.seen.transcript.push_str(&text);
                    for c in text.chars() {
                        if c == '\n' {
                            let line = std::mem::take(&mut self.line);
                            self.on_line(line, at, &mut out);
                        } else {
                            self.line.push(c);
                        }
                    }
                }
                Piece::Guest(g) => {
                    let text = String::from_utf8_lossy(&g);
                    for c in text.chars() {
                        if c == '\n' {
                            let line = std::mem::take(&mut self.seen.guest_partial);
                            self.seen.guest_lines.push((at, line));
                        } else {
                            self.seen.guest_partial.push(c);
                        }
                    }
                    self.seen.transcript.push_str(&text);
                    self.seen.guest_bytes += g.len() as u64;
                    if self.seen.takeover.is_none() {
                        self.seen.guest_bytes_before_takeover += g.len() as u64;
                    }
                    out.push(Event::Guest(g));
                }
                Piece::Frame(f) => {
                    let line = self.decoder.line(&f);
                    self.end_line();
                    self.seen.transcript.push_str(&line);
                    self.seen.transcript.push('\n');
                }
                Piece::Exit(s) => {
                    self.seen.record = Some(s);
                    self.end_line();
                    self.seen.transcript.push_str(&match s {
                        Some(s) => format!(
                            "[board] exit status {s} ({})\n",
                            ExitStatus::from_code(s).map_or("unknown", |e| e.meaning())
                        ),
                        None => "[board] <damaged exit record>\n".into(),
                    });
                }
            }
        }
        self.write_out();
        out
    }

    /// The hypervisor's words and the guest's each keep lines of their
    /// own in the transcript: a line one of them left open is ended when
    /// the other speaks.
    fn switch_line(&mut self, guest: bool) {
        if self.guest_line != guest {
            self.end_line();
            self.guest_line = guest;
        }
    }

    fn end_line(&mut self) {
        if !self.seen.transcript.is_empty() && !self.seen.transcript.ends_with('\n') {
            self.seen.transcript.push('\n');
        }
    }

    fn on_line(&mut self, line: String, at: Instant, out: &mut Vec<Event>) {
        if let Some(s) = Status::parse(&line) {
            self.seen.status = Some((s, at));
        } else if let Some(t) = Takeover::parse(&line) {
            self.seen.takeover = Some((t, at));
            out.push(Event::Takeover(t));
        } else if let Some(b) = BackupLost::parse(&line) {
            self.seen.backup_lost = Some((b, at));
            out.push(Event::BackupLost(b));
        } else if let Some(s) = Summary::parse(&line) {
            self.seen.summary = Some(s);
        }
        self.seen.lines.push(line);
    }

    /// The board ended: keep QEMU's stderr in the transcript, and return
    /// what was seen.
    pub fn close(mut self, stderr: &str) -> Seen {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(line, Instant::now(), &mut Vec::new());
        }
        if !stderr.trim().is_empty() {
            self.seen.transcript.push_str("\n[qemu stderr]\n");
            self.seen.transcript.push_str(stderr);
        }
        self.write_out();
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use el2_hypervisor::console_stream::{escape, guest_chunks};

    #[test]
    fn pair_lines_are_read_from_the_hypervisor_only() {
        let mut w = Watch::new(Who::Backup, None, "qemu", None);
        let mut stream = Vec::new();
        // A guest that prints a takeover line fools no one.
        guest_chunks(
            b"pair: takeover epoch=1 count=2 silent_ms=3 released=4\n",
            |b| stream.extend_from_slice(b),
        );
        escape(
            b"pair: status epoch=9 guest_us=1 msgs=2 log_bytes=3 acked=0 held=5 retransmits=0 rejected=0\n",
            |b| stream.extend_from_slice(b),
        );
        let ev = w.push(&stream, Instant::now());
        assert_eq!(ev.len(), 1);
        assert!(matches!(ev[0], Event::Guest(_)));
        assert!(w.seen.takeover.is_none());
        assert_eq!(w.seen.status.map(|(s, _)| s.epoch), Some(9));
        let mut stream = Vec::new();
        escape(
            b"pair: takeover epoch=7 count=2 guest_us=9 silent_ms=3 released=4\n",
            |b| stream.extend_from_slice(b),
        );
        guest_chunks(b"after\n", |b| stream.extend_from_slice(b));
        let ev = w.push(&stream, Instant::now());
        assert!(matches!(ev[0], Event::Takeover(t) if t.epoch == 7));
        assert_eq!(w.seen.guest_bytes_before_takeover, 54);
        assert!(w.seen.transcript.starts_with("$ qemu\n"));
        assert_eq!(w.seen.guest_bytes, 60);
        let guest: Vec<&str> = w.seen.guest_lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            guest,
            [
                "pair: takeover epoch=1 count=2 silent_ms=3 released=4",
                "after"
            ]
        );
    }
}
