//! Tandem's EL2 hypervisor: the portable core.
//!
//! The hypervisor runs one guest Linux at EL1 and keeps it deterministic so
//! that a second board can run the same instruction stream (see
//! `docs/design.md`). This library holds everything that is pure logic —
//! decoding syndromes, parsing options, building the guest's device tree
//! and page tables, the system-register values, the vGIC model, the
//! guest's device table and what each trap comes to (`trap`), the replica
//! engine and the board's session around it (`replica`), over the
//! hardware traits (`hw`) — so that it builds and is unit-tested on the
//! host. The binary (`src/main.rs`) adds the AArch64 layer (`arch/`):
//! boot, vectors, system registers, the guest entry.
//!
//! Principles: guest-controlled values are untrusted (a guest fault is
//! injected or ends the guest, never a hypervisor panic); no heap in hot
//! paths; `unsafe` lives in the arch layer only.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod banner;
pub mod console_stream;
pub mod cpu_features;
pub mod emul;
pub mod esr;
pub mod exit;
pub mod guest;
pub mod hw;
pub mod mem;
pub mod options;
pub mod regs;
pub mod replica;
pub mod secondaries;
pub mod stats;
pub mod trap;
pub mod vgic;
pub mod vm_core;
