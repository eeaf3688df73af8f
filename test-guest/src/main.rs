//! The test guest: a bare-metal EL1 image the hypervisor runs instead of
//! Linux, to check its isolation from the inside. Each check prints
//! `test-guest: <name> ... PASS` or `... FAIL (<detail>)`, then a summary,
//! then the guest powers off (PSCI SYSTEM_OFF).
//!
//! The checks live in `guest.rs`, the first instructions and the exception
//! vectors in `boot.s`, the pure helpers (host-tested) in the library.
//! Built by `xtask::test_guest::build` for `aarch64-unknown-none-softfloat`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "test-guest is a bare-metal EL1 image for aarch64: build it with xtask (test_guest::build)"
    );
    std::process::exit(2);
}
