//! The lint step of `cargo xtask test`: formatting, and clippy with
//! warnings as errors on the host (every crate, tests included) and on the
//! bare-metal target (the `tandem` image and the test guest, which the
//! host build never compiles). Each is one pass/fail line.

use crate::paths;
use anyhow::Result;
use std::process::Command;

/// One lint: its name and the cargo arguments that run it.
struct Lint {
    name: &'static str,
    args: &'static [&'static str],
}

const LINTS: [Lint; 4] = [
    Lint {
        name: "fmt",
        args: &["fmt", "--all", "--check"],
    },
    Lint {
        name: "clippy-host",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
    },
    Lint {
        name: "clippy-bare-metal-hypervisor",
        args: &[
            "clippy",
            "-p",
            "el2-hypervisor",
            "--bins",
            "--features",
            "test-hooks",
            "--target",
            paths::TARGET,
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
    },
    Lint {
        name: "clippy-bare-metal-test-guest",
        args: &[
            "clippy",
            "-p",
            "test-guest",
            "--bins",
            "--target",
            paths::TARGET,
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
    },
];

/// Runs every lint; prints `lint NAME ... ok|FAILED`; returns (passed, failed).
pub fn run() -> Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    for lint in &LINTS {
        let status = Command::new(env!("CARGO"))
            .current_dir(paths::root())
            .args(lint.args)
            .status()?;
        if status.success() {
            passed += 1;
            println!("lint {} ... ok", lint.name);
        } else {
            failed += 1;
            println!(
                "lint {} ... FAILED (`cargo {}`)",
                lint.name,
                lint.args.join(" ")
            );
        }
    }
    Ok((passed, failed))
}
