//! Running one QEMU board: the console decoded live, a timeout, the
//! transcript kept as a file.

use crate::console::{Demux, LogDecoder, Piece, table_from_elf};
use crate::cpu_time::CpuSamples;
use crate::line_times::LineTimes;
use crate::qemu::{self, Vars};
use crate::util::describe;
use anyhow::{Context, Result};
use el2_hypervisor::exit::ExitStatus;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// One board run.
pub struct BoardRun<'a> {
    /// `qemu-configs/<config>.args`.
    pub config: &'a str,
    pub vars: Vars,
    /// The hypervisor ELF (for decoding its defmt logs).
    pub elf: Option<&'a Path>,
    pub timeout: Duration,
    /// Echo the console to our stdout as it arrives.
    pub echo: bool,
    /// Give the board our stdin (interactive `run`).
    pub interactive: bool,
    /// Where to keep the decoded console transcript.
    pub transcript: PathBuf,
    /// Extra QEMU arguments appended to the config's.
    pub extra_args: Vec<String>,
}

/// How it ended.
#[derive(Debug)]
pub struct Outcome {
    /// QEMU's own exit code; `None` if it was killed by a signal.
    pub qemu_exit: Option<i32>,
    /// What the exit record said: `None` no record, `Some(None)` a damaged one.
    pub record: Option<Option<u8>>,
    pub timed_out: bool,
    /// The decoded console (text with `[hv] LEVEL message` log lines).
    pub console: String,
    pub wall: Duration,
    /// Each console line with the host time (since QEMU started) at which
    /// its end was read from QEMU (`line_times`): for timing parts of a run
    /// from the outside. The last line is here even without a newline.
    pub lines: Vec<(Duration, String)>,
    /// QEMU's peak resident memory in KiB, sampled while it ran.
    pub peak_rss_kib: Option<u64>,
    /// QEMU's CPU time, sampled as its console arrived (times since it
    /// started, as in `lines`).
    pub cpu: CpuSamples,
}

pub fn run(board: &BoardRun<'_>) -> Result<Outcome> {
    let mut args = qemu::config(board.config, &board.vars)?;
    args.extend(board.extra_args.iter().cloned());
    let mut cmd = Command::new(qemu::QEMU);
    cmd.args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if board.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    let command_line = describe(&cmd);
    crate::util::die_with_parent(&mut cmd);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{command_line}`"))?;

    let mut stdout = child.stdout.take().expect("piped");
    // Each chunk is stamped when it is read, here, so that its lines carry
    // the time they arrived whenever the loop below decodes them.
    // QEMU's CPU time is sampled here too: QEMU is alive while it writes,
    // so each line has its CPU time.
    let (tx, rx) = mpsc::channel::<(Duration, Vec<u8>)>();
    let pid = child.id();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut cpu = CpuSamples::default();
        while let Ok(n) = stdout.read(&mut buf) {
            let at = start.elapsed();
            cpu.sample(pid, at);
            if n == 0 || tx.send((at, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        cpu
    });
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let elf_bytes = board.elf.and_then(|p| std::fs::read(p).ok());
    let table = elf_bytes.as_deref().and_then(table_from_elf);
    let mut decoder = LogDecoder::new(table.as_ref());
    let mut demux = Demux::default();
    let mut console = String::new();
    let mut lines = LineTimes::default();
    let mut timed_out = false;
    let mut record = None;
    // Decodes what arrived, and notes when each line ended.
    let mut take = |(at, bytes): (Duration, Vec<u8>), console: &mut String| {
        let before = console.len();
        absorb(
            &mut demux,
            &mut decoder,
            &bytes,
            console,
            &mut record,
            board.echo,
        );
        lines.push(at, &console[before..]);
    };
    let mut peak_rss_kib = None;
    let status = loop {
        while let Ok(chunk) = rx.try_recv() {
            take(chunk, &mut console);
        }
        if let Some(k) = crate::util::peak_rss_kib(child.id()) {
            peak_rss_kib = Some(k);
        }
        match child.wait_timeout(Duration::from_millis(50))? {
            Some(status) => break Some(status),
            None if start.elapsed() > board.timeout => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => {}
        }
    };
    let cpu = reader.join().unwrap_or_default();
    // What the reader passed on after QEMU exited: its lines keep the
    // times they arrived, and an unterminated last line is kept too.
    while let Ok(chunk) = rx.try_recv() {
        take(chunk, &mut console);
    }
    let lines = lines.finish();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    if !qemu_stderr.trim().is_empty() {
        console.push_str("\n[qemu stderr]\n");
        console.push_str(&qemu_stderr);
        if board.echo {
            eprint!("{qemu_stderr}");
        }
    }
    if let Some(dir) = board.transcript.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&board.transcript, format!("$ {command_line}\n{console}"))?;
    let qemu_exit = status.and_then(|s| s.code());
    Ok(Outcome {
        qemu_exit,
        record,
        timed_out,
        console,
        wall: start.elapsed(),
        lines,
        peak_rss_kib,
        cpu,
    })
}

impl Outcome {
    /// The board's exit status (`el2_hypervisor::exit`), from the exit
    /// record on its console; `None` if QEMU ended without one (killed,
    /// timed out, a QEMU error, or a damaged record): see [`Outcome::describe`].
    pub fn exit_code(&self) -> Option<i32> {
        match (self.qemu_exit, self.record) {
            (Some(0), Some(Some(s))) if !self.timed_out => Some(i32::from(s)),
            _ => None,
        }
    }

    /// How the run ended, in words: the board's status and its meaning, or
    /// why there is none.
    pub fn describe(&self) -> String {
        let status = |s: u8| match ExitStatus::from_code(s) {
            Some(e) => format!("the board stopped with status {s} ({})", e.meaning()),
            None => format!("the board stopped with status {s} (not a status the hypervisor uses)"),
        };
        match (self.timed_out, self.qemu_exit, self.record) {
            (true, _, _) => "QEMU timed out and was killed".into(),
            (false, Some(0), Some(Some(s))) => status(s),
            (false, _, Some(None)) => "the board's exit record was damaged".into(),
            (false, Some(0), None) => {
                "QEMU exited without the board's exit record (the board did not stop by itself: QEMU was terminated, or the hypervisor never ran)".into()
            }
            (false, Some(c), _) => format!("QEMU failed with exit code {c}"),
            (false, None, _) => "QEMU was killed by a signal".into(),
        }
    }
}

fn absorb(
    demux: &mut Demux,
    decoder: &mut LogDecoder<'_>,
    bytes: &[u8],
    console: &mut String,
    record: &mut Option<Option<u8>>,
    echo: bool,
) {
    for piece in demux.push(bytes) {
        let text = match piece {
            Piece::Text(t) | Piece::Guest(t) => String::from_utf8_lossy(&t).into_owned(),
            Piece::Exit(s) => {
                *record = Some(s);
                let mut line = match s {
                    Some(s) => format!(
                        "[board] exit status {s} ({})\n",
                        ExitStatus::from_code(s).map_or("unknown", |e| e.meaning())
                    ),
                    None => "[board] <damaged exit record>\n".into(),
                };
                if !console.is_empty() && !console.ends_with('\n') {
                    line.insert(0, '\n');
                }
                line
            }
            Piece::Frame(f) => {
                let mut line = decoder.line(&f);
                if !console.is_empty() && !console.ends_with('\n') {
                    line.insert(0, '\n');
                }
                line.push('\n');
                line
            }
        };
        if echo {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
        console.push_str(&text);
    }
}
