//! The default guest: Debian's own arm64 kernel and a busybox initramfs
//! whose `/init` runs a small deterministic workload and powers off.
//!
//! The kernel package's name changes with every Debian kernel update, so
//! it is resolved through the `linux-image-arm64:arm64` metapackage each
//! time, never written down here.

use crate::cpio::Cpio;
use crate::paths;
use crate::util::{output, run, step};
use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The prepared guest files.
#[derive(Clone, Debug)]
pub struct Guest {
    /// Uncompressed arm64 Image.
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The Debian package the kernel came from (e.g. `linux-image-6.1.0-56-arm64`).
    pub kernel_package: String,
}

/// The workload `/init` runs: a fixed arithmetic loop in busybox awk. Its
/// answer is computed here too ([`expected_workload_result`]), so tests
/// check the guest computed the right thing, not just something.
pub const WORKLOAD_ITERATIONS: u64 = 200_000;

/// What the workload prints after `tandem-guest: workload result `.
pub fn expected_workload_result() -> u64 {
    let mut s: u64 = 0;
    for i in 1..=WORKLOAD_ITERATIONS {
        s = (s * 31 + i) % 1_000_003;
    }
    s
}

/// The guest's `/init`.
pub fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
# tandem guest init: a small deterministic workload, then power off.
/bin/busybox mkdir -p /proc /sys /tmp /dev
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
echo "tandem-guest: init started"
# Readers that the kernel wakes through irq_work, which Linux raises with
# a self-IPI (a write of ICC_SGI1R_EL1, trapped and emulated by the
# hypervisor): the trace ring buffer's wakeup is such an irq_work; the
# /dev/kmsg reader's is "lazy" (it waits for the next tick, and raises an
# IPI only when the tick is stopped).
mount -t tracefs tracefs /sys/kernel/tracing
cat /sys/kernel/tracing/trace_pipe > /dev/null &
tracer=$!
cat /dev/kmsg > /dev/null &
reader=$!
echo "tandem-guest: kmsg line from user space" > /dev/kmsg
echo "tandem-guest: trace marker" > /sys/kernel/tracing/trace_marker
r=$(awk 'BEGIN {{ s = 0; for (i = 1; i <= {n}; i++) s = (s * 31 + i) % 1000003; print s }}')
echo "tandem-guest: kmsg line after the workload" > /dev/kmsg
echo "tandem-guest: trace marker after the workload" > /sys/kernel/tracing/trace_marker
kill $tracer $reader
echo "tandem-guest: workload result $r"
echo "tandem-guest: powering off"
poweroff -f
"#,
        n = WORKLOAD_ITERATIONS
    )
}

/// [`DEFAULT_CMDLINE`]'s words, as a literal that `concat!` can extend
/// ([`BENCH_CMDLINE`]).
macro_rules! default_cmdline {
    () => {
        "console=ttyAMA0 earlycon panic=-1 clocksource.arm_arch_timer.evtstrm=0 nokaslr"
    };
}

/// The kernel command line for the guest. `earlycon` with no address
/// takes the console from the guest DTB's `/chosen/stdout-path`, so the
/// same command line fits every board (virt's PL011 at 0x0900_0000, the
/// Pi 4's at 0xfe20_1000).
pub const DEFAULT_CMDLINE: &str = default_cmdline!();

/// The default command line and `norandmaps`, for the benchmarks: every
/// configuration's guest processes then get the same address-space layout.
/// QEMU's softmmu TLB is direct-mapped (8 victim entries beside it), so the
/// layout decides how often the workload's hot pages evict each other; with
/// the guest's addresses randomized from a clock that differs from run to
/// run, that varied the CPU-bound workload's cost by up to 10 % between
/// runs of one configuration (docs/measurements.md, "Noise").
pub const BENCH_CMDLINE: &str = concat!(default_cmdline!(), " norandmaps");

/// Resolves the current kernel package behind `linux-image-arm64:arm64`.
pub fn resolve_kernel_package() -> Result<String> {
    let deps = output(Command::new("apt-cache").args(["depends", "linux-image-arm64:arm64"]))?;
    parse_kernel_dependency(&deps)
        .context("`apt-cache depends linux-image-arm64:arm64` names no linux-image package")
}

fn parse_kernel_dependency(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(|d| d.trim().trim_end_matches(":arm64").to_string())
        .find(|d| d.starts_with("linux-image-") && d != "linux-image-arm64")
}

/// Downloads `package:arm64` into the cache (once) and extracts it.
fn fetch_and_extract(package: &str) -> Result<PathBuf> {
    let cache = paths::cache_dir().join("debs");
    std::fs::create_dir_all(&cache)?;
    let extracted = cache.join(format!("{package}.d"));
    if extracted.join(".complete").exists() {
        return Ok(extracted);
    }
    step(&format!("downloading {package}:arm64 from Debian"));
    run(Command::new("apt-get")
        .current_dir(&cache)
        .args(["download", "-q"])
        .arg(format!("{package}:arm64")))?;
    let deb = std::fs::read_dir(&cache)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with("_arm64.deb"))
        })
        .with_context(|| {
            format!(
                "apt-get download left no {package}_*_arm64.deb in {}",
                cache.display()
            )
        })?;
    let _ = std::fs::remove_dir_all(&extracted);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&extracted))?;
    std::fs::write(extracted.join(".complete"), b"")?;
    Ok(extracted)
}

/// Reads a kernel file, gunzipping it if it is compressed (Debian ships
/// `vmlinuz` as a gzip of the arm64 Image; Linux on arm64 does not
/// decompress itself, and our loader wants the Image).
pub fn decompress_kernel(data: &[u8]) -> Result<Vec<u8>> {
    let image = if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .context("gunzip of the kernel failed")?;
        out
    } else {
        data.to_vec()
    };
    if image.get(56..60) != Some(b"ARM\x64") {
        bail!("the kernel is not an arm64 Image (no ARM\\x64 magic at offset 56)");
    }
    Ok(image)
}

/// Makes sure the default guest exists; downloads and builds what is missing.
pub fn prepare() -> Result<Guest> {
    let package = resolve_kernel_package()?;
    let dir = paths::guest_dir();
    std::fs::create_dir_all(&dir)?;
    let kernel = dir.join("Image");
    let initramfs = dir.join("initramfs.cpio");
    let stamp = dir.join("kernel-package");
    let current = std::fs::read_to_string(&stamp).unwrap_or_default();
    if current.trim() != package || !kernel.exists() {
        let root = fetch_and_extract(&package)?;
        let vmlinuz = find_file(&root.join("boot"), "vmlinuz-")?;
        step(&format!("unpacking {}", vmlinuz.display()));
        std::fs::write(&kernel, decompress_kernel(&std::fs::read(&vmlinuz)?)?)?;
        std::fs::write(&stamp, &package)?;
    }
    let pi4_dtb = dir.join(crate::board::PI4_DTB);
    if !pi4_dtb.exists() {
        copy_pi4_dtb(&fetch_and_extract(&package)?, &package, &pi4_dtb)?;
    }
    let busybox_root = fetch_and_extract("busybox-static")?;
    let busybox = std::fs::read(busybox_root.join("bin/busybox"))
        .context("busybox-static has no bin/busybox")?;
    let archive = initramfs_archive(&busybox);
    if std::fs::read(&initramfs).ok().as_deref() != Some(&archive[..]) {
        step("writing the guest initramfs");
        std::fs::write(&initramfs, archive)?;
    }
    Ok(Guest {
        kernel,
        initramfs,
        kernel_package: package,
    })
}

/// Copies the Raspberry Pi 4's device tree out of the extracted kernel
/// package (`usr/lib/<package>/broadcom/`): `--board raspi4b` gives it to
/// QEMU (`-dtb`), and `sdcard` puts it on the cards.
fn copy_pi4_dtb(root: &Path, package: &str, to: &Path) -> Result<()> {
    let from = root
        .join("usr/lib")
        .join(package)
        .join("broadcom")
        .join(crate::board::PI4_DTB);
    std::fs::copy(&from, to).with_context(|| {
        format!(
            "copying {} (Debian's kernel package ships it)",
            from.display()
        )
    })?;
    Ok(())
}

/// The initramfs: busybox, `/init`, and `/dev/console` (Linux opens it for
/// init's stdio before any devtmpfs exists).
pub fn initramfs_archive(busybox: &[u8]) -> Vec<u8> {
    let mut c = Cpio::new();
    c.dir("bin").dir("dev").dir("proc").dir("sys").dir("tmp");
    c.char_device("dev/console", 0o600, 5, 1);
    c.file("bin/busybox", 0o755, busybox);
    c.symlink("bin/sh", "busybox");
    c.file("init", 0o755, init_script().as_bytes());
    c.finish()
}

/// Writes a guest bundle (kernel Image, initramfs, command line: the one
/// file the hypervisor takes as the board's initrd) and checks it parses.
pub fn write_bundle(
    kernel: &Path,
    initramfs: Option<&Path>,
    cmdline: &str,
    out: &Path,
) -> Result<()> {
    let kernel_bytes = std::fs::read(kernel)
        .with_context(|| format!("reading the guest kernel {}", kernel.display()))?;
    let kernel_bytes = decompress_kernel(&kernel_bytes)
        .with_context(|| format!("guest kernel {}", kernel.display()))?;
    let initramfs_bytes = match initramfs {
        Some(p) => std::fs::read(p)
            .with_context(|| format!("reading the guest initramfs {}", p.display()))?,
        None => Vec::new(),
    };
    let bundle = el2_hypervisor::guest::bundle::encode(&kernel_bytes, &initramfs_bytes, cmdline);
    if let Err(e) = el2_hypervisor::guest::bundle::parse(&bundle) {
        bail!("{e}");
    }
    if std::fs::read(out).ok().as_deref() != Some(&bundle[..]) {
        std::fs::write(out, &bundle).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// The default guest, prepared, and its bundle (kernel, initramfs, default
/// command line) written to `target/tandem/guest/bundle.bin`.
pub fn default_bundle() -> Result<(Guest, PathBuf)> {
    prepared_bundle(DEFAULT_CMDLINE, "bundle.bin")
}

/// The default guest with [`BENCH_CMDLINE`], its bundle written to
/// `target/tandem/guest/bench-bundle.bin`.
pub fn bench_bundle() -> Result<(Guest, PathBuf)> {
    prepared_bundle(BENCH_CMDLINE, "bench-bundle.bin")
}

/// The default guest, prepared, with `cmdline`, its bundle written to
/// `target/tandem/guest/<name>`.
fn prepared_bundle(cmdline: &str, name: &str) -> Result<(Guest, PathBuf)> {
    let g = prepare()?;
    let bundle = paths::guest_dir().join(name);
    write_bundle(&g.kernel, Some(&g.initramfs), cmdline, &bundle)?;
    Ok((g, bundle))
}

fn find_file(dir: &Path, prefix: &str) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .with_context(|| format!("no {prefix}* in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_command_line_is_the_default_one_without_random_maps() {
        assert_eq!(BENCH_CMDLINE, format!("{DEFAULT_CMDLINE} norandmaps"));
    }

    #[test]
    fn resolves_the_kernel_from_apt_output() {
        let text = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-56-arm64:arm64\n";
        assert_eq!(
            parse_kernel_dependency(text).as_deref(),
            Some("linux-image-6.1.0-56-arm64")
        );
        assert_eq!(parse_kernel_dependency("nothing"), None);
    }

    #[test]
    fn workload_answer_is_in_range_and_script_uses_the_same_loop() {
        assert!(expected_workload_result() < 1_000_003);
        assert!(init_script().contains("i <= 200000"));
    }

    #[test]
    fn refuses_a_non_arm64_kernel() {
        assert!(decompress_kernel(b"not a kernel").is_err());
        let mut img = vec![0u8; 64];
        img[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(decompress_kernel(&img).unwrap(), img);
    }
}
