//! The hypervisor image (`tandem`): boot on the board, print what was
//! found, and run the guest. Pure logic lives in the library
//! (`el2_hypervisor`); this binary adds the AArch64 layer (`arch/`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[path = "arch/aarch64/mod.rs"]
mod arch;
#[cfg(target_os = "none")]
mod runtime;

// The boot stub's `_start` and `bootstub_rust_entry` must be linked in.
#[cfg(target_os = "none")]
extern crate bootstub;

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("tandem is a bare-metal image for aarch64: build it with `cargo xtask build`");
    std::process::exit(2);
}
