//! Recorded logs (docs/record-replay.md, "Log file") and the checks made on
//! them: the file format, a summary, a deliberately corrupted copy for the
//! divergence tests, and the comparison of a recorded and a replayed guest
//! console. Pure: no QEMU, no sockets (those are in [`crate::linkhost`]).
//!
//! ```text
//! offset 0   8 bytes  magic b"TNDMLOG1"
//!         8  u32 LE   length of the board's encoded Hello, then the Hello
//!            then, repeated to the end: u32 LE length, one encoded Message
//! ```
//!
//! The body holds only sequenced messages (`LogEntry`, `EpochEnd`,
//! `Takeover`, `StateChunk`, `Released`): what the recorder's link
//! delivered, in order.

use anyhow::{Context, Result, bail};
use replication_link::{Hello, InputKind, LogEntry, MAX_MESSAGE, Message};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// The eight bytes every log starts with.
pub const MAGIC: [u8; 8] = *b"TNDMLOG2";
/// The magic of logs written before epoch ends carried guest time
/// (protocol 2): refused by name.
const OLD_MAGIC: [u8; 8] = *b"TNDMLOG1";

/// A whole log in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// The recording board's Hello (role `Primary`): the digests a
    /// replaying board must match.
    pub hello: Hello,
    /// The sequenced messages, in the order the board sent them.
    pub messages: Vec<Message>,
}

/// Why a log file does not parse. `offset` is the byte of the file where
/// the problem was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogError {
    pub offset: usize,
    pub what: String,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.what, self.offset)
    }
}

impl std::error::Error for LogError {}

fn err(offset: usize, what: impl Into<String>) -> LogError {
    LogError {
        offset,
        what: what.into(),
    }
}

/// Appends one length-prefixed message to `out`.
fn push_record(out: &mut Vec<u8>, msg: &Message) {
    let mut buf = [0u8; MAX_MESSAGE];
    // `buf` holds the largest message, so encoding cannot fail.
    let n = msg.encode(&mut buf).unwrap_or(0);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&buf[..n]);
}

/// The file header: magic and the board's Hello.
fn header(hello: &Hello) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    push_record(&mut out, &Message::Hello(hello.clone()));
    out
}

impl Log {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = header(&self.hello);
        for m in &self.messages {
            push_record(&mut out, m);
        }
        out
    }

    /// Parses a log file's bytes. Never panics: a short, garbled or foreign
    /// file is a [`LogError`] naming the byte where it went wrong.
    ///
    /// # Errors
    /// Bad magic, a truncated length or record, a record longer than a
    /// message can be, a record that does not decode to exactly one
    /// message, a header that is not a Hello, or a control message
    /// (Hello/Ack/Heartbeat) in the body.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogError> {
        if bytes.len() < MAGIC.len() {
            return Err(err(
                bytes.len(),
                format!(
                    "not a tandem log: {} bytes, shorter than the magic",
                    bytes.len()
                ),
            ));
        }
        if bytes[..MAGIC.len()] == OLD_MAGIC {
            return Err(err(
                0,
                "a log of an older tandem (TNDMLOG1: its epoch ends carry no guest time); record it again",
            ));
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(err(0, "not a tandem log: bad magic (want \"TNDMLOG2\")"));
        }
        let mut at = MAGIC.len();
        let hello = match next_record(bytes, &mut at)? {
            None => return Err(err(at, "truncated: the board's Hello is missing")),
            Some((start, Message::Hello(h))) => {
                let _ = start;
                h
            }
            Some((start, other)) => {
                return Err(err(
                    start,
                    format!(
                        "the first record is a {:?}, not the board's Hello",
                        other.tag()
                    ),
                ));
            }
        };
        let mut messages = Vec::new();
        while let Some((start, msg)) = next_record(bytes, &mut at)? {
            if !msg.is_sequenced() {
                return Err(err(
                    start,
                    format!(
                        "record {} is a {:?}: a log holds sequenced messages only",
                        messages.len() + 1,
                        msg.tag()
                    ),
                ));
            }
            messages.push(msg);
        }
        Ok(Self { hello, messages })
    }

    /// Reads and parses a log file.
    ///
    /// # Errors
    /// The file cannot be read, or [`Log::decode`] refuses it.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::decode(&bytes).with_context(|| format!("{} is not a usable log", path.display()))
    }

    /// Writes the log to `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.encode()).with_context(|| format!("writing {}", path.display()))
    }

    /// The last epoch any message mentions (0 for an empty log).
    pub fn last_epoch(&self) -> u64 {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Message::LogEntry(e) => Some(e.epoch),
                Message::EpochEnd(e) => Some(e.epoch),
                Message::Takeover(t) => Some(t.epoch),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Counts for the summary.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            bytes: self.encode().len() as u64,
            epochs: if self.messages.is_empty() {
                0
            } else {
                self.last_epoch() + 1
            },
            ..Summary::default()
        };
        for m in &self.messages {
            match m {
                Message::LogEntry(e) => {
                    *s.entries.entry(kind_name(e.kind)).or_default() += 1;
                }
                Message::EpochEnd(_) => s.boundaries += 1,
                other => *s.other.entry(format!("{:?}", other.tag())).or_default() += 1,
            }
        }
        s
    }
}

/// Reads the record at `*at`: `None` at the clean end of the file, else the
/// record's start offset and its message.
fn next_record(bytes: &[u8], at: &mut usize) -> Result<Option<(usize, Message)>, LogError> {
    let start = *at;
    let rest = &bytes[start..];
    if rest.is_empty() {
        return Ok(None);
    }
    let Some(len) = rest.get(..4) else {
        return Err(err(
            start,
            format!(
                "truncated: {} bytes where a 4-byte record length belongs",
                rest.len()
            ),
        ));
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(err(
            start,
            format!("record length {len} is impossible (1..={MAX_MESSAGE})"),
        ));
    }
    let Some(body) = rest.get(4..4 + len) else {
        return Err(err(
            start,
            format!(
                "truncated: a {len}-byte record with {} bytes left",
                rest.len() - 4
            ),
        ));
    };
    let msg = Message::decode_exact(body)
        .map_err(|e| err(start + 4 + e.offset, format!("bad record: {e}")))?;
    *at = start + 4 + len;
    Ok(Some((start, msg)))
}

/// Writes a log as the messages arrive, so that whatever was recorded
/// survives a recorder that stops early.
pub struct LogWriter {
    file: std::io::BufWriter<std::fs::File>,
    bytes: u64,
    messages: u64,
}

impl LogWriter {
    /// Creates `path` (truncating it) and writes the header.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: &Path, hello: &Hello) -> Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("creating the log {}", path.display()))?;
        let mut w = Self {
            file: std::io::BufWriter::new(file),
            bytes: 0,
            messages: 0,
        };
        let h = header(hello);
        w.file.write_all(&h)?;
        w.bytes = h.len() as u64;
        Ok(w)
    }

    /// Appends one delivered message.
    ///
    /// # Errors
    /// A control message (it has no place in a log), or a write error.
    pub fn append(&mut self, msg: &Message) -> Result<()> {
        if !msg.is_sequenced() {
            bail!("{:?} is a control message, not a log record", msg.tag());
        }
        let mut rec = Vec::with_capacity(4 + msg.wire_size());
        push_record(&mut rec, msg);
        self.file.write_all(&rec)?;
        self.bytes += rec.len() as u64;
        self.messages += 1;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Messages appended so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Flushes the file.
    ///
    /// # Errors
    /// A write error.
    pub fn finish(mut self) -> Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok(())
    }
}

/// What a log holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Epochs the log covers (the last one, ended by power-off, has no
    /// `EpochEnd`).
    pub epochs: u64,
    /// `EpochEnd` messages.
    pub boundaries: u64,
    /// `LogEntry` messages by kind.
    pub entries: BTreeMap<&'static str, u64>,
    /// Other sequenced messages (Takeover, StateChunk) by tag.
    pub other: BTreeMap<String, u64>,
    /// The file's size.
    pub bytes: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.entries.values().sum();
        writeln!(
            f,
            "epochs:      {} ({} boundaries)",
            self.epochs, self.boundaries
        )?;
        write!(f, "log entries: {total}")?;
        if !self.entries.is_empty() {
            let parts: Vec<String> = self
                .entries
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, " ({})", parts.join(" "))?;
        }
        writeln!(f)?;
        for (k, v) in &self.other {
            writeln!(f, "other:       {k}={v}")?;
        }
        write!(f, "log bytes:   {}", self.bytes)?;
        if self.epochs > 0 {
            write!(
                f,
                " ({:.1} per epoch)",
                self.bytes as f64 / self.epochs as f64
            )?;
        }
        Ok(())
    }
}

/// A short name for an input kind, for summaries.
pub fn kind_name(kind: InputKind) -> &'static str {
    match kind {
        InputKind::CounterRead => "counter-read",
        InputKind::TimerRegRead => "timer-register",
        InputKind::MmioRead => "mmio-read",
        InputKind::FirmwareResult => "firmware",
        InputKind::SysRegRead => "sysreg-read",
        InputKind::TimeAdvance => "time-advance",
        _ => "other",
    }
}

/// Copies the log at `log` to `out` with `delta` ticks added to the guest
/// time at which the epoch after the first `EpochEnd` of epoch
/// `epoch_at_least` or later starts. Returns the epoch that runs on the
/// changed time: a replay of `out` must diverge at its boundary (the base
/// is part of that epoch's inputs digest, whether the guest reads the
/// counter or not).
///
/// # Errors
/// The log does not parse, has no such epoch end, or `out` cannot be
/// written.
pub fn corrupt_epoch_time(log: &Path, out: &Path, epoch_at_least: u64, delta: u64) -> Result<u64> {
    let mut l = Log::read(log)?;
    let end = l
        .messages
        .iter_mut()
        .find_map(|m| match m {
            Message::EpochEnd(e) if e.epoch >= epoch_at_least => Some(e),
            _ => None,
        })
        .with_context(|| {
            format!(
                "{} has no epoch end in epoch {epoch_at_least} or later",
                log.display()
            )
        })?;
    end.time = end.time.wrapping_add(delta);
    let runs_on_it = end.epoch + 1;
    l.write(out)?;
    Ok(runs_on_it)
}

/// Copies the log at `log` to `out` with `delta` added (wrapping) to the
/// value of the first `LogEntry` in epoch `epoch_at_least` or later for
/// which `pick` holds. Returns that entry's epoch and count.
///
/// # Errors
/// The log does not parse, has no such entry, or `out` cannot be written.
pub fn corrupt_first_entry(
    log: &Path,
    out: &Path,
    epoch_at_least: u64,
    pick: impl Fn(&LogEntry) -> bool,
    delta: u64,
) -> Result<(u64, u64)> {
    let mut l = Log::read(log)?;
    let entry = l
        .messages
        .iter_mut()
        .find_map(|m| match m {
            Message::LogEntry(e) if e.epoch >= epoch_at_least && pick(e) => Some(e),
            _ => None,
        })
        .with_context(|| {
            format!(
                "{} has no such entry in epoch {epoch_at_least} or later",
                log.display()
            )
        })?;
    entry.value = entry.value.wrapping_add(delta);
    let at = (entry.epoch, entry.count);
    l.write(out)?;
    Ok(at)
}

/// The guest's lines in a console transcript (what `runner` keeps, with or
/// without its leading `$ qemu…` line): everything the hypervisor itself
/// prints is dropped, so that a recorded and a replayed console compare
/// equal when the guest did the same. Dropped:
/// - the command line (`$ …`, first line) and QEMU's stderr (from
///   `[qemu stderr]` on);
/// - the banner: the `tandem <version>: …` line and the indented lines
///   that follow it;
/// - lines starting with `hypervisor:`, `[hv] ` (defmt logs), `replay:`,
///   `record:`, `selftest:`;
/// - blank lines (the hypervisor opens some reports with one);
/// - trailing whitespace (the guest's `\r`).
pub fn guest_lines(transcript: &str) -> Vec<&str> {
    const HV_PREFIXES: [&str; 7] = [
        "hypervisor:",
        "[board] ",
        "[hv] ",
        "replay:",
        "record:",
        "selftest:",
        "tandem ",
    ];
    let mut out = Vec::new();
    let mut in_banner = false;
    for (i, raw) in transcript.lines().enumerate() {
        let line = raw.trim_end();
        if i == 0 && line.starts_with("$ ") {
            continue;
        }
        if line == "[qemu stderr]" {
            break;
        }
        if in_banner && line.starts_with("  ") {
            continue;
        }
        in_banner = false;
        if line.starts_with("tandem ") {
            in_banner = true;
        }
        if line.is_empty() || HV_PREFIXES.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        out.push(line);
    }
    out
}

/// Compares the guest's part of two console transcripts line by line
/// (see [`guest_lines`]).
///
/// # Errors
/// The first difference: a differing line, or one console ending early,
/// with the guest line number and both texts.
pub fn compare_consoles(recorded: &str, replayed: &str) -> Result<(), String> {
    let a = guest_lines(recorded);
    let b = guest_lines(replayed);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            return Err(format!(
                "guest line {} differs:\n  recorded: {x}\n  replayed: {y}",
                i + 1
            ));
        }
    }
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(format!(
            "the replayed guest console ends after {} lines; the recorded one goes on with line {}:\n  recorded: {}",
            b.len(),
            b.len() + 1,
            a[b.len()]
        )),
        std::cmp::Ordering::Less => Err(format!(
            "the recorded guest console ends after {} lines; the replayed one goes on with line {}:\n  replayed: {}",
            a.len(),
            a.len() + 1,
            b[a.len()]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_link::{EpochEnd, Role, Takeover};

    fn hello() -> Hello {
        Hello::new(Role::Primary, 0x1234, [1; 32], [2; 32], [3; 32])
    }

    fn entry(epoch: u64, count: u64, kind: InputKind, value: u64) -> Message {
        Message::LogEntry(LogEntry {
            epoch,
            count,
            kind,
            detail: 0,
            source: 0x5F02,
            value,
        })
    }

    fn end(epoch: u64) -> Message {
        Message::EpochEnd(EpochEnd {
            epoch,
            count: 1_000_000,
            pc: 0xffff_8000_0800_0000 + epoch,
            fingerprint: 0xdead_beef ^ epoch,
            time: 1_000 * (epoch + 1),
            interrupts: [27u32].as_slice().try_into().unwrap(),
        })
    }

    fn sample() -> Log {
        Log {
            hello: hello(),
            messages: vec![
                entry(0, 10, InputKind::MmioRead, 7),
                end(0),
                entry(1, 5, InputKind::CounterRead, 100),
                entry(1, 9, InputKind::CounterRead, 200),
                end(1),
                entry(2, 3, InputKind::CounterRead, 300),
                entry(2, 4, InputKind::FirmwareResult, 0),
            ],
        }
    }

    #[test]
    fn round_trip_in_memory_and_through_the_writer() {
        let log = sample();
        let bytes = log.encode();
        assert_eq!(&bytes[..8], b"TNDMLOG2");
        assert_eq!(
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
            Hello::WIRE_SIZE as u32
        );
        assert_eq!(Log::decode(&bytes).unwrap(), log);

        let dir = std::env::temp_dir().join(format!("tandem-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let mut w = LogWriter::create(&path, &log.hello).unwrap();
        for m in &log.messages {
            w.append(m).unwrap();
        }
        assert_eq!(w.bytes(), bytes.len() as u64);
        assert!(w.append(&Message::Hello(hello())).is_err());
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(Log::read(&path).unwrap(), log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_truncation_is_an_error_or_a_prefix() {
        let log = sample();
        let bytes = log.encode();
        // Record boundaries: a cut there is a shorter, valid log.
        let mut boundaries = vec![];
        let mut at = 8;
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + len;
            boundaries.push(at);
        }
        for cut in 0..bytes.len() {
            match Log::decode(&bytes[..cut]) {
                Ok(l) => {
                    assert!(boundaries.contains(&cut), "cut {cut} parsed");
                    assert_eq!(l.messages[..], log.messages[..l.messages.len()]);
                }
                Err(e) => {
                    assert!(!boundaries.contains(&cut), "cut {cut}: {e}");
                    assert!(e.offset <= cut, "cut {cut}: {e}");
                }
            }
        }
        let e = Log::decode(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(e.what.starts_with("truncated"), "{e}");
    }

    #[test]
    fn bad_magic_and_garbage_are_errors() {
        let mut bytes = sample().encode();
        bytes[3] = b'X';
        assert!(Log::decode(&bytes).unwrap_err().what.contains("bad magic"));
        assert!(Log::decode(b"").is_err());
        assert!(Log::decode(b"TNDMLOG2").unwrap_err().what.contains("Hello"));
        let mut old = sample().encode();
        old[..8].copy_from_slice(b"TNDMLOG1");
        assert!(
            Log::decode(&old)
                .unwrap_err()
                .what
                .contains("record it again")
        );
        // Impossible length.
        let mut bytes = sample().encode();
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Log::decode(&bytes).unwrap_err().what.contains("impossible"));
        // A body record that is not a Hello first.
        let mut bad = MAGIC.to_vec();
        push_record(&mut bad, &end(0));
        assert!(
            Log::decode(&bad)
                .unwrap_err()
                .what
                .contains("not the board's Hello")
        );
        // A control message in the body.
        let mut bad = header(&hello());
        push_record(&mut bad, &Message::Ack(replication_link::Ack { up_to: 3 }));
        assert!(Log::decode(&bad).unwrap_err().what.contains("sequenced"));
        // Pseudo-random garbage after the magic never panics.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 0..2000 {
            let mut buf = MAGIC.to_vec();
            for _ in 0..(n % 300) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            let _ = Log::decode(&buf);
            let mut good = sample().encode();
            let i = 8 + (x as usize % (good.len() - 8));
            good[i] ^= (x >> 8) as u8 | 1;
            let _ = Log::decode(&good);
        }
    }

    #[test]
    fn summary_and_last_epoch() {
        let mut log = sample();
        let s = log.summary();
        assert_eq!((s.epochs, s.boundaries), (3, 2));
        assert_eq!(s.entries["counter-read"], 3);
        assert_eq!(s.entries["mmio-read"], 1);
        assert_eq!(s.entries["firmware"], 1);
        assert_eq!(s.bytes, log.encode().len() as u64);
        assert!(s.to_string().contains("log entries: 5"));
        assert_eq!(log.last_epoch(), 2);
        log.messages
            .push(Message::Takeover(Takeover { epoch: 3, count: 0 }));
        assert_eq!(log.last_epoch(), 3);
    }

    #[test]
    fn corrupts_an_entry_or_an_epoch_time_at_or_after_an_epoch() {
        let dir = std::env::temp_dir().join(format!("tandem-corrupt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.log"), dir.join("b.log"));
        sample().write(&a).unwrap();
        // Epoch 1's end starts epoch 2 at 2,000: moved, epoch 2 runs on it.
        assert_eq!(corrupt_epoch_time(&a, &b, 1, 5).unwrap(), 2);
        let mut want = sample();
        let Message::EpochEnd(e) = &mut want.messages[4] else {
            panic!()
        };
        e.time = 2_005;
        assert_eq!(Log::read(&b).unwrap(), want);
        assert_eq!(corrupt_epoch_time(&a, &b, 0, 5).unwrap(), 1);
        assert!(corrupt_epoch_time(&a, &b, 2, 5).is_err());
        let mmio = |e: &LogEntry| e.kind == InputKind::MmioRead;
        assert_eq!(corrupt_first_entry(&a, &b, 0, mmio, 5).unwrap(), (0, 10));
        let mut want = sample();
        want.messages[0] = entry(0, 10, InputKind::MmioRead, 12);
        assert_eq!(Log::read(&b).unwrap(), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const RECORDED: &str = concat!(
        "$ qemu-system-aarch64 -M virt -append tandem.mode=record\n",
        "tandem 0.1.0: EL2 lockstep hypervisor, board qemu-virt\n",
        "  model:   linux,dummy-virt\n",
        "  cpu:     ecv=yes\n",
        "[hv] INFO  hypervisor up: dtb 1048576 bytes, 1024 MiB RAM\n",
        "hypervisor: link: waiting for the peer\n",
        "hypervisor: link: paired with a Recorder (session 0x1)\n",
        "hypervisor: epochs of 1000000 guest instructions (Record)\n",
        "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]\r\n",
        "[    0.000000]   DMA      [mem 0x0000000042000000-0x000000007fffffff]\r\n",
        "tandem-guest: workload result 905564\r\n",
        "[    8.818528] reboot: Power down\r\n",
        "\n",
        "hypervisor: the guest powered off\n",
        "hypervisor: recorded 812 epochs, 90000 log entries\n",
    );

    #[test]
    fn guest_lines_drop_the_hypervisor() {
        assert_eq!(
            guest_lines(RECORDED),
            [
                "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]",
                "[    0.000000]   DMA      [mem 0x0000000042000000-0x000000007fffffff]",
                "tandem-guest: workload result 905564",
                "[    8.818528] reboot: Power down",
            ]
        );
        assert_eq!(guest_lines("a\n[qemu stderr]\nqemu: warning\n"), ["a"]);
    }

    #[test]
    fn consoles_compare_on_the_guest_only() {
        let replayed = RECORDED
            .replace("tandem.mode=record", "tandem.mode=replay")
            .replace("(Record)", "(Replay)")
            .replace("Recorder", "Replayer")
            .replace("recorded 812", "replayed 812")
            + "replay: complete: every epoch matched the log\n";
        assert_eq!(compare_consoles(RECORDED, &replayed), Ok(()));
        // Without the command line (runner's Outcome::console) too.
        let bare = RECORDED.split_once('\n').unwrap().1;
        assert_eq!(compare_consoles(bare, &replayed), Ok(()));

        let changed = replayed.replace("905564", "905565");
        let e = compare_consoles(RECORDED, &changed).unwrap_err();
        assert!(e.starts_with("guest line 3 differs"), "{e}");
        assert!(e.contains("905565"), "{e}");

        let short = replayed.replace("[    8.818528] reboot: Power down\r\n", "");
        let e = compare_consoles(RECORDED, &short).unwrap_err();
        assert!(
            e.contains("replayed guest console ends after 3 lines"),
            "{e}"
        );
        assert!(e.contains("Power down"), "{e}");
        let e = compare_consoles(&short, RECORDED).unwrap_err();
        assert!(
            e.contains("recorded guest console ends after 3 lines"),
            "{e}"
        );
    }
}
