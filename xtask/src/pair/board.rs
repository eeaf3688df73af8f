//! One QEMU board of a pair: started with its role's command line, its
//! console read on a thread, its process id kept in a file so that anyone
//! can `kill -9` it, and SIGKILL on request.

use super::kill::Who;
use crate::cpu_time::CpuSamples;
use crate::qemu::{self, Vars};
use crate::util::describe;
use anyhow::{Context, Result};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Sender;
use std::time::Instant;

/// Console bytes from a board, as they arrive.
pub struct Chunk {
    pub who: Who,
    pub bytes: Vec<u8>,
    pub at: Instant,
}

/// A running board.
pub struct Board {
    pub who: Who,
    child: Child,
    pub pid: u32,
    pub command_line: String,
    pid_file: PathBuf,
    stderr: Option<std::thread::JoinHandle<String>>,
    pub exited: Option<ExitStatus>,
    pub killed_at: Option<Instant>,
    /// QEMU's peak resident memory in KiB, sampled at each poll.
    pub peak_rss_kib: u64,
    /// The console reader, which samples QEMU's CPU time as each chunk
    /// arrives (times since the pair's start) and returns the samples.
    stdout: Option<std::thread::JoinHandle<CpuSamples>>,
}

impl Board {
    /// Starts QEMU with `qemu-configs/<config>.args`; its console goes to
    /// `tx`, its pid to `pid_file`; its CPU time is sampled as time since
    /// `origin` (the pair's start) as its console arrives.
    pub fn start(
        who: Who,
        config: &str,
        vars: &Vars,
        pid_file: PathBuf,
        tx: Sender<Chunk>,
        origin: Instant,
    ) -> Result<Self> {
        let args = qemu::config(config, vars)?;
        let mut cmd = Command::new(qemu::QEMU);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command_line = describe(&cmd);
        crate::util::die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting the {who}: `{command_line}`"))?;
        let pid = child.id();
        std::fs::write(&pid_file, format!("{pid}\n"))
            .with_context(|| format!("writing {}", pid_file.display()))?;
        let mut stdout = child.stdout.take().expect("piped");
        let stdout = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut cpu = CpuSamples::default();
            while let Ok(n) = stdout.read(&mut buf) {
                let at = Instant::now();
                // QEMU is alive while it writes: a line's CPU time is there.
                cpu.sample(pid, at.duration_since(origin));
                let chunk = Chunk {
                    who,
                    bytes: buf[..n].to_vec(),
                    at,
                };
                if n == 0 || tx.send(chunk).is_err() {
                    break;
                }
            }
            cpu
        });
        let mut stderr = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Ok(Self {
            who,
            child,
            pid,
            command_line,
            pid_file,
            stderr: Some(stderr),
            exited: None,
            killed_at: None,
            peak_rss_kib: 0,
            stdout: Some(stdout),
        })
    }

    /// Whether QEMU has ended (noting how, once).
    pub fn poll_exit(&mut self) -> bool {
        if self.exited.is_none()
            && let Some(k) = crate::util::peak_rss_kib(self.pid)
        {
            self.peak_rss_kib = self.peak_rss_kib.max(k);
        }
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
            let _ = std::fs::remove_file(&self.pid_file);
        }
        self.exited.is_some()
    }

    /// SIGKILL, as a board dying would (no goodbye on the link).
    pub fn kill(&mut self) {
        if self.exited.is_none() && self.killed_at.is_none() {
            let _ = self.child.kill();
            self.killed_at = Some(Instant::now());
        }
    }

    /// Waits for QEMU to end; what it wrote on stderr, and its CPU time
    /// samples.
    pub fn finish(&mut self) -> (String, CpuSamples) {
        if self.exited.is_none() {
            self.exited = self.child.wait().ok();
        }
        let _ = std::fs::remove_file(&self.pid_file);
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let cpu = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (stderr, cpu)
    }

    /// How QEMU ended, in words.
    pub fn describe_exit(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match self.exited {
            None => "still running".into(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("QEMU exited {c}"),
                (None, Some(9)) if self.killed_at.is_some() => "killed (SIGKILL, by --kill)".into(),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                (None, None) => "ended".into(),
            },
        }
    }

    /// Killed by a signal (ours or anyone's `kill -9`).
    pub fn was_killed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.exited.is_some_and(|s| s.signal().is_some())
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}
