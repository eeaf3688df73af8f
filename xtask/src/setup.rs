//! `cargo xtask setup`: install, idempotently, everything a fresh machine
//! lacks: the bare-metal Rust target, QEMU >= 10 (Debian bookworm-backports;
//! bookworm itself has 7.2), and the default guest.

use crate::util::{output, run, step};
use crate::{guest, qemu};
use anyhow::{Context, Result, bail};
use std::process::Command;

const BACKPORTS: &str = "/etc/apt/sources.list.d/tandem-bookworm-backports.sources";
const BACKPORTS_TEXT: &str = "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

/// What is missing, if anything.
pub fn missing() -> Vec<&'static str> {
    let mut m = Vec::new();
    if !target_installed() {
        m.push("rust target");
    }
    if !qemu_ok() {
        m.push("qemu >= 10");
    }
    if !crate::paths::guest_dir().join("initramfs.cpio").exists()
        || !crate::paths::guest_dir().join("Image").exists()
    {
        m.push("guest");
    }
    m
}

fn target_installed() -> bool {
    output(Command::new("rustup").args(["target", "list", "--installed"]))
        .map(|s| s.lines().any(|l| l.trim() == crate::paths::TARGET))
        .unwrap_or(false)
}

fn qemu_ok() -> bool {
    qemu::version().is_some_and(|v| v.0 >= 10)
}

/// Calls [`setup`] when something is missing.
pub fn ensure() -> Result<()> {
    let m = missing();
    if m.is_empty() {
        return Ok(());
    }
    step(&format!("missing: {}; running setup", m.join(", ")));
    setup()
}

/// Installs whatever is missing.
pub fn setup() -> Result<()> {
    if !target_installed() {
        step(&format!("adding the Rust target {}", crate::paths::TARGET));
        run(Command::new("rustup").args(["target", "add", crate::paths::TARGET]))?;
    }
    let mut apt_updated = false;
    if !qemu_ok() {
        require_root("install QEMU")?;
        if !std::path::Path::new(BACKPORTS).exists() {
            step("adding Debian's bookworm-backports suite to apt's sources");
            std::fs::write(BACKPORTS, BACKPORTS_TEXT)
                .with_context(|| format!("writing {BACKPORTS}"))?;
        }
        apt_update(&mut apt_updated)?;
        step("installing qemu-system-arm from bookworm-backports");
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args([
                "install",
                "-y",
                "-q",
                "-t",
                "bookworm-backports",
                "qemu-system-arm",
            ]))?;
        if !qemu_ok() {
            bail!(
                "qemu-system-aarch64 is still older than 10 after installing from bookworm-backports"
            );
        }
    }
    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if !foreign.lines().any(|l| l.trim() == "arm64") {
        require_root("add the arm64 architecture to dpkg")?;
        step("adding arm64 as a foreign dpkg architecture (for the guest's Debian packages)");
        run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        apt_updated = false;
    }
    if guest::resolve_kernel_package().is_err() {
        apt_update(&mut apt_updated)?;
    }
    let g = guest::prepare()?;
    step(&format!(
        "guest ready: {} ({}), {}",
        g.kernel.display(),
        g.kernel_package,
        g.initramfs.display()
    ));
    Ok(())
}

fn apt_update(done: &mut bool) -> Result<()> {
    if !*done {
        require_root("update apt's package lists")?;
        step("apt-get update");
        run(Command::new("apt-get").args(["update", "-q"]))?;
        *done = true;
    }
    Ok(())
}

fn require_root(what: &str) -> Result<()> {
    let uid = output(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        bail!("setup needs root to {what}: run `sudo -E cargo xtask setup` once");
    }
    Ok(())
}
