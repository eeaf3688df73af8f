//! Board support: what differs from one board to the next, as data.
//!
//! Design principles:
//! - A board is a `const` description ([`boards`]), not `cfg` flags scattered
//!   through drivers. What the firmware tells us at boot (the device tree) is
//!   read once into plain data ([`dtb::BoardInfo`]) and checked there.
//! - Parsing is pure and runs on the host, so that `cargo test` proves it
//!   against device trees dumped from QEMU (`tests/fixtures`).
//! - MMIO drivers ([`pl011`], [`mini_uart`]) describe their register blocks with
//!   `tock-registers`; the one `unsafe` is turning a base address into a
//!   reference to the block.
#![cfg_attr(not(test), no_std)]

pub mod boards;
pub mod dtb;
pub mod mini_uart;
pub mod pl011;

pub use boards::{Board, BoardKind, PowerOff};
pub use dtb::*;
