//! Where things live: the workspace, build outputs, the download cache.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Build outputs of xtask: images, guest files, test consoles.
pub fn out_dir() -> PathBuf {
    root().join("target").join("tandem")
}

/// Downloads kept across clones and CI runs (`TANDEM_CACHE`, else
/// `~/.cache/tandem`): Debian packages are large and do not change for a
/// given version.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TANDEM_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("tandem")
}

/// The prepared guest: kernel Image, initramfs, bundle.
pub fn guest_dir() -> PathBuf {
    out_dir().join("guest")
}

pub const TARGET: &str = "aarch64-unknown-none-softfloat";
