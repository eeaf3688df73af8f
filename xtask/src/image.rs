//! Building the hypervisor image: cargo for the bare-metal target, then the
//! ELF flattened into the raw arm64 Image QEMU's `-kernel` (and a Raspberry
//! Pi's firmware) loads. The ELF is kept beside it: defmt decoding and
//! debuggers read it.

use crate::paths;
use crate::util::{run, step};
use anyhow::{Context, Result, bail};
use object::{Object, ObjectSegment};
use std::path::PathBuf;
use std::process::Command;

/// Which image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageKind {
    /// `board-support` board name (`qemu-virt`, `rpi4`).
    pub board: &'static str,
    /// Built with the `test-hooks` feature (deliberate failures on request).
    pub test_hooks: bool,
}

/// The built image's files.
#[derive(Clone, Debug)]
pub struct Image {
    pub elf: PathBuf,
    pub bin: PathBuf,
}

impl ImageKind {
    pub const VIRT: ImageKind = ImageKind {
        board: "qemu-virt",
        test_hooks: false,
    };
    pub const VIRT_TEST_HOOKS: ImageKind = ImageKind {
        board: "qemu-virt",
        test_hooks: true,
    };

    fn stem(&self) -> String {
        format!(
            "tandem-{}{}",
            self.board,
            if self.test_hooks { "-test-hooks" } else { "" }
        )
    }
}

/// Builds the hypervisor for `kind` and writes `target/tandem/<stem>.{elf,bin}`.
pub fn build(kind: ImageKind) -> Result<Image> {
    step(&format!("building the hypervisor image ({})", kind.stem()));
    // Each variant gets its own target dir so switching does not rebuild.
    let target_dir = paths::root()
        .join("target")
        .join(format!("hv-{}", kind.stem()));
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(paths::root())
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "el2-hypervisor",
            "--bin",
            "tandem",
            "--target",
            paths::TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("TANDEM_BOARD", kind.board)
        .env("DEFMT_LOG", "info");
    if kind.test_hooks {
        cmd.args(["--features", "test-hooks"]);
    }
    run(&mut cmd)?;
    let built = target_dir
        .join(paths::TARGET)
        .join("release")
        .join("tandem");
    let out = paths::out_dir();
    std::fs::create_dir_all(&out)?;
    let elf = out.join(format!("{}.elf", kind.stem()));
    let bin = out.join(format!("{}.bin", kind.stem()));
    std::fs::copy(&built, &elf).with_context(|| format!("copying {}", built.display()))?;
    let data = std::fs::read(&elf)?;
    std::fs::write(&bin, flatten(&data)?)?;
    Ok(Image { elf, bin })
}

/// Lays the ELF's loadable bytes out from the lowest load address: the raw
/// image. BSS and the stack are not in the file (the Image header's
/// `image_size` tells the loader to keep room for them).
pub fn flatten(elf: &[u8]) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).context("the hypervisor ELF does not parse")?;
    let segments: Vec<(u64, &[u8])> = file
        .segments()
        .filter_map(|s| {
            let data = s.data().ok()?;
            (!data.is_empty()).then_some((s.address(), data))
        })
        .collect();
    let Some(base) = segments.iter().map(|(a, _)| *a).min() else {
        bail!("the hypervisor ELF has no loadable bytes");
    };
    let end = segments
        .iter()
        .map(|(a, d)| a + d.len() as u64)
        .max()
        .unwrap_or(base);
    if end - base > 64 << 20 {
        bail!(
            "the hypervisor image would be {} MiB: segments are scattered",
            (end - base) >> 20
        );
    }
    let mut out = vec![0u8; (end - base) as usize];
    for (addr, data) in segments {
        let off = (addr - base) as usize;
        out[off..off + data.len()].copy_from_slice(data);
    }
    if out.get(56..60) != Some(b"ARM\x64") {
        bail!("the flattened image has no arm64 Image header (ARM\\x64 at offset 56)");
    }
    Ok(out)
}
