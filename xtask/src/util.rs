//! Running commands with clear messages.

use anyhow::{Context, Result, bail};
use std::process::{Command, Output};

/// Runs a command, streaming its output; fails with the command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its stdout; fails with its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    let out: Output = cmd
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Prints a step so the user sees what is happening.
pub fn step(msg: &str) {
    eprintln!("xtask: {msg}");
}

/// Makes the child get SIGKILL when xtask dies (killed itself, so that
/// its `Drop` never runs, or the timeout's kill never comes): no QEMU board
/// outlives the xtask that started it. (Linux sends it when the *thread*
/// that forked dies; every caller waits for its QEMU on that thread.)
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes one async-signal-safe system call.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The peak resident memory of a running process so far, in KiB (its
/// VmHWM, a high-water mark), or `None` once it is gone. Sampled while a
/// QEMU board runs, the last sample is its peak to within what it commits
/// between samples (`cargo xtask bench pair`'s QEMU peak memory).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_proc_status() {
        let status = "Name:\tqemu\nVmPeak:\t 9000 kB\nVmHWM:\t  251204 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(251_204));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
        // This process is running, so it has a peak.
        assert!(peak_rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }
}
