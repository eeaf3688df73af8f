//! Links the bare-metal image for the board named by `TANDEM_BOARD`
//! (default `qemu-virt`): writes `memory.ld` (the image base) and `board.rs`
//! (the board's description) into OUT_DIR, and passes the linker scripts.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=TANDEM_BOARD");
    println!("cargo:rerun-if-changed=../bootstub/link.ld");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let name = env::var("TANDEM_BOARD").unwrap_or_else(|_| "qemu-virt".into());
    let Some(board) = board_support::Board::by_name(&name) else {
        let known: Vec<_> = board_support::boards::ALL.iter().map(|b| b.name).collect();
        panic!(
            "TANDEM_BOARD={name}: unknown board (known: {})",
            known.join(", ")
        );
    };
    let konst = match board.kind {
        board_support::BoardKind::QemuVirt => "QEMU_VIRT",
        board_support::BoardKind::RaspberryPi4 => "RASPBERRY_PI_4",
    };
    fs::write(
        out.join("board.rs"),
        format!("/// The board this image is built for.\npub const BOARD: board_support::Board = board_support::boards::{konst};\n"),
    )
    .unwrap();
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    fs::write(
        out.join("memory.ld"),
        format!(
            "IMAGE_BASE = {:#x};\n/* The end of the RAM the hypervisor keeps from the guest. */\nRESERVED_END = {:#x};\n",
            board.image_base,
            board.ram_base + board.hypervisor_reserved
        ),
    )
    .unwrap();
    let bootstub = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../bootstub");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-search={}", bootstub.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.ld");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
