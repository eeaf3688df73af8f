//! Links the bare-metal image with `link.ld` (only for the bare-metal
//! target: the host build is a stub `main`, linked normally).

use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let script = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("link.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}
