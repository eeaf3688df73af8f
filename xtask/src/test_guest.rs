//! The in-repo test guest (`test-guest/`): a bare-metal EL1 image that
//! checks the hypervisor's isolation from the inside and prints one
//! `test-guest: <check> ... PASS|FAIL` line per check. Built like the
//! hypervisor (cargo for the bare-metal target, then the ELF flattened into
//! a raw arm64 Image) and bundled without an initramfs:
//!
//! ```text
//! let kernel = test_guest::build()?;
//! guest::write_bundle(&kernel, None, "", &bundle)?;
//! ```

use crate::paths;
use crate::util::{run, step};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Builds the test guest and writes `target/tandem/test-guest.bin` (the raw
/// Image, linked and loaded at 0x42000000) beside `test-guest.elf`; returns
/// the `.bin`.
pub fn build() -> Result<PathBuf> {
    step("building the test guest");
    // Its own target dir, like each hypervisor variant: no rebuilds when
    // switching between them.
    let target_dir = paths::root().join("target").join("test-guest");
    run(Command::new(env!("CARGO"))
        .current_dir(paths::root())
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "test-guest",
            "--bin",
            "test-guest",
            "--target",
            paths::TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir))?;
    let built = target_dir
        .join(paths::TARGET)
        .join("release")
        .join("test-guest");
    let out = paths::out_dir();
    std::fs::create_dir_all(&out)?;
    let elf = out.join("test-guest.elf");
    let bin = out.join("test-guest.bin");
    std::fs::copy(&built, &elf).with_context(|| format!("copying {}", built.display()))?;
    let image = crate::image::flatten(&std::fs::read(&elf)?).context("the test guest ELF")?;
    std::fs::write(&bin, image).with_context(|| format!("writing {}", bin.display()))?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{self, ImageKind};
    use std::collections::BTreeMap;

    /// The checks, in the order the guest runs them.
    const CHECKS: [&str; 13] = [
        "counter-read-traps",
        "rndr-hidden",
        "hypervisor-memory-aborts",
        "unassigned-device-aborts",
        "beyond-ram-aborts",
        "unknown-hvc-not-supported",
        "stage2-ram-works",
        "pmu-sve-undefined",
        "injected-exception-state",
        "rndr-executes",
        "self-ipi-delivered",
        "sgi-overflow-delivered",
        "semihosting-closed",
    ];

    /// `key=N` pairs after `marker` on the last line that has it.
    fn counts_after(console: &str, marker: &str) -> BTreeMap<String, u64> {
        console
            .lines()
            .rev()
            .find_map(|l| l.split_once(marker).map(|(_, r)| r))
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect()
    }

    /// End to end: the hypervisor runs the test guest under QEMU; every
    /// check passes and the hypervisor counted exactly the traps the guest
    /// says it caused. Needs QEMU >= 10 and the bare-metal target:
    /// `cargo test -p xtask test_guest -- --ignored --nocapture`.
    #[test]
    #[ignore = "builds both images and runs QEMU"]
    fn runs_under_the_hypervisor() -> Result<()> {
        let hv = image::build(ImageKind::VIRT)?;
        let kernel = build()?;
        let bundle = paths::out_dir().join("test-guest.bundle");
        crate::guest::write_bundle(&kernel, None, "", &bundle)?;
        let mut vars = crate::qemu::Vars::new();
        for (k, v) in [("GIC", "3"), ("CPU", "max"), ("MEM", "1G")] {
            vars.insert(k.into(), v.into());
        }
        vars.insert("IMAGE".into(), hv.bin.display().to_string());
        vars.insert("BUNDLE".into(), bundle.display().to_string());
        crate::qemu::set_board_cmdline(&mut vars, crate::qemu::DEFAULT_SEED, "");
        let out = crate::runner::run(&crate::runner::BoardRun {
            config: "virt",
            vars,
            elf: Some(&hv.elf),
            timeout: std::time::Duration::from_secs(30),
            echo: false,
            interactive: false,
            transcript: paths::out_dir().join("test-guest-unit.console.txt"),
            extra_args: vec![],
        })?;
        let console = out.console.as_str();
        println!("{console}");
        assert_eq!(out.exit_code(), Some(0), "{}", out.describe());
        let mut lines = console.lines();
        for check in CHECKS {
            let want = format!("test-guest: {check} ... PASS");
            assert!(lines.any(|l| l == want), "missing `{want}` (in order)");
        }
        assert!(console.contains("test-guest: 13 passed, 0 failed"));
        let expected = counts_after(console, "test-guest: expected trap counts:");
        let counted = counts_after(console, "hypervisor: traps:");
        assert!(!expected.is_empty(), "no expected trap counts line");
        for (kind, n) in &expected {
            assert_eq!(counted.get(kind), Some(n), "trap count `{kind}`");
        }
        Ok(())
    }
}
