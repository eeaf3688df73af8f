//! The first instructions at EL2: the arm64 Image header, the stack, BSS,
//! and the hand-off to the hypervisor with a checked view of the device tree.
//!
//! `boot.s` does what Rust cannot (check CurrentEL, park other cores, set
//! SP, zero BSS) and calls [`bootstub_rust_entry`], which validates the one
//! unsafe input, the DTB pointer in x0, and calls the hypervisor's
//! `hypervisor_main(dtb)`. The layout is `link.ld` beside this crate.
#![cfg_attr(not(test), no_std)]

/// The flattened-device-tree header magic (big-endian `0xd00dfeed`).
pub const FDT_MAGIC: u32 = 0xd00d_feed;

/// A DTB larger than this is not believed (QEMU's is 1 MiB at most; the
/// Raspberry Pi firmware's about 60 KiB).
pub const MAX_DTB_SIZE: usize = 2 << 20;

/// The DTB's `totalsize`, if its first 8 bytes are a plausible FDT header.
///
/// Pure so that the host tests it; `bootstub_rust_entry` reads the 8 bytes.
pub fn dtb_size_from_header(header: [u8; 8]) -> Option<usize> {
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    (magic == FDT_MAGIC && (40..=MAX_DTB_SIZE).contains(&size)).then_some(size)
}

/// Cores (by MPIDR Aff0) that can report themselves parked in
/// [`SECONDARY_PARKED`].
pub const SECONDARY_SLOTS: usize = 8;

/// Set to 1 by each secondary core (index: its MPIDR Aff0) once it runs
/// `secondary_park` (boot.s), exceptions masked, about to wait in WFI for
/// good. Read by the boot core to check that every core it released got
/// there.
#[unsafe(no_mangle)]
pub static SECONDARY_PARKED: [core::sync::atomic::AtomicU8; SECONDARY_SLOTS] =
    [const { core::sync::atomic::AtomicU8::new(0) }; SECONDARY_SLOTS];

#[cfg(target_os = "none")]
unsafe extern "C" {
    /// The secondary cores' entry point (boot.s): the address the
    /// hypervisor writes to a spin table's `cpu-release-addr`. Not to be
    /// called: its address is all that is used.
    pub fn secondary_park() -> !;
}

#[cfg(target_os = "none")]
mod entry {
    core::arch::global_asm!(
        include_str!("boot.s"),
        SECONDARY_SLOTS = const super::SECONDARY_SLOTS,
    );

    unsafe extern "Rust" {
        /// The hypervisor, given the board's DTB when x0 held a valid one.
        fn hypervisor_main(dtb: Option<&'static mut [u8]>) -> !;
    }

    /// Called by `boot.s` with x0 as the boot loader left it.
    #[unsafe(no_mangle)]
    extern "C" fn bootstub_rust_entry(dtb_addr: usize) -> ! {
        let dtb = checked_dtb(dtb_addr);
        // SAFETY: `hypervisor_main` is defined by the hypervisor binary with
        // exactly this signature; it is called once, on the boot core.
        unsafe { hypervisor_main(dtb) }
    }

    /// Turns x0 into a slice only if it points at something with an FDT header.
    fn checked_dtb(addr: usize) -> Option<&'static mut [u8]> {
        if addr == 0 || !addr.is_multiple_of(8) {
            return None;
        }
        // SAFETY: the boot protocol puts the DTB (8-byte aligned, in RAM) at
        // x0; we read only its 8-byte header before believing the size.
        let header = unsafe { core::ptr::read_volatile(addr as *const [u8; 8]) };
        let size = super::dtb_size_from_header(header)?;
        // SAFETY: the header says `size` bytes follow, bounded by
        // MAX_DTB_SIZE; the boot protocol hands them, in RAM, to the kernel
        // (us) alone: nothing else reads or writes them from here on. The
        // hypervisor edits them once in place (removing FDT_NOPs).
        Some(unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, size) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_real_header() {
        assert_eq!(
            dtb_size_from_header([0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0x1d, 0xc8]),
            Some(0x1dc8)
        );
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(dtb_size_from_header([0; 8]), None);
        assert_eq!(
            dtb_size_from_header([0xd0, 0x0d, 0xfe, 0xed, 0xff, 0, 0, 0]),
            None
        );
        assert_eq!(
            dtb_size_from_header([0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 4]),
            None
        );
    }
}
