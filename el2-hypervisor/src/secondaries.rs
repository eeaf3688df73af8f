//! The secondary cores: which ones the hypervisor releases from the
//! board's spin table into its park loop, checked before any is written.
//!
//! Only core 0 runs the hypervisor and the guest's one vCPU. The others
//! must never run guest code and never execute instructions at all once
//! the guest runs (under QEMU icount every core's instructions move the
//! one virtual clock, and with it the boot core's epoch counter): each is
//! sent to `secondary_park` (bootstub/src/boot.s), which masks exceptions,
//! marks the core parked and waits in WFI for good. A spin-table core is
//! released by writing that address to its `cpu-release-addr` and sending
//! an event (Linux's Documentation/arch/arm64/booting.rst, "spin-table").

use board_support::{Region, SpinTableCpu};

/// Why the spin table cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParkError {
    /// A release address outside the RAM the hypervisor keeps from the
    /// guest, or inside the hypervisor's own image, or not 8-byte aligned:
    /// writing there would hand the guest (or the hypervisor) a word.
    ReleaseAddress { mpidr: u64, addr: u64 },
    /// A core with no slot of its own to report itself parked in (slots
    /// are by Aff0, so Aff1-Aff3 must be 0).
    NoSlot { mpidr: u64 },
}

impl core::fmt::Display for ParkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParkError::ReleaseAddress { mpidr, addr } => write!(
                f,
                "core {mpidr:#x}'s cpu-release-addr {addr:#x} is not an aligned word of the hypervisor's reserved RAM outside its image"
            ),
            ParkError::NoSlot { mpidr } => write!(
                f,
                "core {mpidr:#x} has no parking slot (only Aff0 < {} with Aff1-3 zero)",
                bootstub::SECONDARY_SLOTS
            ),
        }
    }
}

/// The MPIDR affinity fields (Aff3 at 39:32, Aff2..Aff0 at 23:0; ARM ARM
/// D23.2 MPIDR_EL1), which a device tree's cpu `reg` holds.
pub const fn affinity(mpidr: u64) -> u64 {
    mpidr & 0xff_00ff_ffff
}

/// The cores to release: every spin-table core but the boot core, each
/// release address checked to lie in `reserved` (the RAM kept from the
/// guest) and outside `image` (the hypervisor's code and data).
///
/// # Errors
/// The first core whose release address or affinity cannot be used.
pub fn to_release(
    cpus: &[SpinTableCpu],
    boot_mpidr: u64,
    reserved: Region,
    image: Region,
) -> Result<heapless::Vec<SpinTableCpu, { board_support::MAX_CPUS }>, ParkError> {
    let mut out = heapless::Vec::new();
    for c in cpus
        .iter()
        .filter(|c| affinity(c.mpidr) != affinity(boot_mpidr))
    {
        let word = Region::new(c.release_addr, 8);
        let inside = reserved.contains(word.base) && word.end() <= reserved.end();
        if !inside || word.overlaps(&image) || !c.release_addr.is_multiple_of(8) {
            return Err(ParkError::ReleaseAddress {
                mpidr: c.mpidr,
                addr: c.release_addr,
            });
        }
        if affinity(c.mpidr) >= bootstub::SECONDARY_SLOTS as u64 {
            return Err(ParkError::NoSlot { mpidr: c.mpidr });
        }
        // Never more than MAX_CPUS: the board's list has that capacity.
        let _ = out.push(*c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Pi 4's: cores 0-3 at 0xd8, 0xe0, 0xe8, 0xf0.
    fn pi4() -> [SpinTableCpu; 4] {
        core::array::from_fn(|n| SpinTableCpu {
            mpidr: n as u64,
            release_addr: 0xd8 + 8 * n as u64,
        })
    }
    const RESERVED: Region = Region::new(0, 32 << 20);
    const IMAGE: Region = Region::new(0x20_0000, 0x40_0000);

    #[test]
    fn the_pi4_releases_cores_1_to_3() {
        let r = to_release(&pi4(), 0x8000_0000, RESERVED, IMAGE).unwrap();
        let ids: heapless::Vec<u64, 4> = r.iter().map(|c| c.mpidr).collect();
        assert_eq!(ids.as_slice(), &[1, 2, 3]);
    }

    #[test]
    fn the_boot_core_is_found_by_affinity_not_by_index() {
        let r = to_release(&pi4(), 0x8000_0002, RESERVED, IMAGE).unwrap();
        let ids: heapless::Vec<u64, 4> = r.iter().map(|c| c.mpidr).collect();
        assert_eq!(ids.as_slice(), &[0, 1, 3]);
    }

    #[test]
    fn a_release_word_in_guest_ram_or_the_image_is_refused() {
        let mut cpus = pi4();
        cpus[2].release_addr = 32 << 20; // the first byte of guest RAM
        assert_eq!(
            to_release(&cpus, 0, RESERVED, IMAGE),
            Err(ParkError::ReleaseAddress {
                mpidr: 2,
                addr: 32 << 20
            })
        );
        cpus[2].release_addr = (32 << 20) - 4; // straddles into guest RAM
        assert!(to_release(&cpus, 0, RESERVED, IMAGE).is_err());
        cpus[2].release_addr = 0x20_0100; // the hypervisor's own code
        assert!(to_release(&cpus, 0, RESERVED, IMAGE).is_err());
        cpus[2].release_addr = 0xe4; // unaligned
        assert!(to_release(&cpus, 0, RESERVED, IMAGE).is_err());
    }

    #[test]
    fn a_core_without_a_slot_is_refused() {
        let mut cpus = pi4();
        cpus[3].mpidr = 0x100 | 3; // Aff1 = 1: its Aff0 slot could be another's
        assert_eq!(
            to_release(&cpus, 0, RESERVED, IMAGE),
            Err(ParkError::NoSlot { mpidr: 0x103 })
        );
        cpus[3].mpidr = 9;
        assert_eq!(
            to_release(&cpus, 0, RESERVED, IMAGE),
            Err(ParkError::NoSlot { mpidr: 9 })
        );
    }
}
