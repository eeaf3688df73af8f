//! Where the guest's pieces go in guest RAM, decided before anything moves.
//!
//! The bundle sits wherever the boot loader put the initrd, usually inside
//! what becomes guest RAM. The kernel must start at a 2 MiB-aligned base
//! plus its `text_offset` and have `image_size` bytes (BSS included) free;
//! the initramfs and the guest DTB go at the top of guest RAM, out of the
//! kernel's way. Copies are memmoves done in the order the plan gives; the
//! plan is refused if a copy would overwrite a source not yet copied.
//!
//! Where the kernel already lies at such a place inside guest RAM (a
//! bundle written with its kernel 2 MiB in, loaded on a 2 MiB boundary, as
//! QEMU's virt does) and its header allows any base (`flags` bit 3, which
//! Linux sets), it runs where it is: no copy, and none of the tens of
//! MiB of host memory a copy would commit under QEMU. Otherwise it is
//! copied to the base of guest RAM.
//!
//! ```text
//!  copied:   guest RAM base (2 MiB aligned)                   guest RAM end
//!            | kernel Image ... BSS |  free (the bundle may be here) | initramfs | DTB (2 MiB) |
//!  in place: | free | bundle header | kernel Image ... BSS |   free    | initramfs | DTB (2 MiB) |
//! ```

use board_support::Region;
use core::fmt;

/// Room kept for the guest DTB at the top of guest RAM.
pub const DTB_SLOT: u64 = 2 << 20;
/// Largest guest DTB accepted (it is far smaller in practice).
pub const MAX_DTB: u64 = 64 << 10;

/// The inputs: where guest RAM is and where the bundle's parts are now.
#[derive(Clone, Copy, Debug)]
pub struct Inputs {
    pub guest_ram: Region,
    /// The kernel Image's bytes, in place inside the bundle.
    pub kernel_src: Region,
    pub kernel_text_offset: u64,
    /// From the Image header: bytes the kernel needs from its load address.
    pub kernel_image_size: u64,
    /// From the Image header: the kernel may run at any 2 MiB-aligned base
    /// (else it goes to the base of guest RAM).
    pub kernel_placed_anywhere: bool,
    /// The initramfs's bytes inside the bundle (size 0: none).
    pub initramfs_src: Region,
}

/// Where everything goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Copy the kernel here first (nothing to copy when it is the source:
    /// [`Plan::kernel_in_place`]).
    pub kernel: Region,
    /// Then the initramfs here (size 0: none).
    pub initramfs: Region,
    /// Then write the DTB here (at most [`MAX_DTB`] bytes).
    pub dtb: Region,
    /// The guest's first instruction (x0 = `dtb.base`).
    pub entry: u64,
}

/// Why the guest does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    GuestRamTooSmall {
        needed: u64,
        have: u64,
    },
    /// The bundle lies (partly) below the kernel's load address or outside
    /// guest RAM in a way the copies cannot handle.
    BundleInTheWay,
    BadImageSize,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::GuestRamTooSmall { needed, have } => write!(
                f,
                "guest RAM too small: the guest needs {} MiB, the board leaves it {} MiB",
                needed.div_ceil(1 << 20),
                have >> 20
            ),
            LayoutError::BundleInTheWay => f.write_str(
                "the guest bundle was loaded where the guest kernel must go (below it); load the initrd higher",
            ),
            LayoutError::BadImageSize => f.write_str("the kernel's image_size is smaller than the kernel"),
        }
    }
}

const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

const fn align_down(v: u64, a: u64) -> u64 {
    v / a * a
}

impl Plan {
    /// The kernel runs where the boot loader put it.
    pub fn kernel_in_place(&self, i: &Inputs) -> bool {
        self.kernel.base == i.kernel_src.base
    }
}

/// Plans the guest's layout: the kernel in place if it can run there,
/// otherwise copied to the base of guest RAM.
///
/// # Errors
/// [`LayoutError`] when the pieces do not fit or cannot be moved safely.
pub fn plan(i: &Inputs) -> Result<Plan, LayoutError> {
    if i.kernel_image_size < i.kernel_src.size {
        return Err(LayoutError::BadImageSize);
    }
    let in_place = i
        .kernel_src
        .base
        .checked_sub(i.kernel_text_offset)
        .filter(|b| i.kernel_placed_anywhere && b % (2 << 20) == 0 && *b >= i.guest_ram.base);
    if let Some(base) = in_place
        && let Ok(p) = plan_at(i, base)
    {
        return Ok(p);
    }
    plan_at(i, align_up(i.guest_ram.base, 2 << 20))
}

/// The plan with the kernel's 2 MiB-aligned base at `base`.
fn plan_at(i: &Inputs, base: u64) -> Result<Plan, LayoutError> {
    let ram = i.guest_ram;
    let kernel = Region::new(base + i.kernel_text_offset, i.kernel_src.size);
    let kernel_end = kernel.base.saturating_add(i.kernel_image_size);
    let dtb = Region::new(ram.end().saturating_sub(DTB_SLOT), MAX_DTB);
    let initramfs_base = align_down(dtb.base.saturating_sub(i.initramfs_src.size), 4096);
    let initramfs = Region::new(initramfs_base, i.initramfs_src.size);
    let needed = (kernel_end - ram.base) + i.initramfs_src.size + DTB_SLOT;
    if needed > ram.size || initramfs.base < kernel_end {
        return Err(LayoutError::GuestRamTooSmall {
            needed,
            have: ram.size,
        });
    }
    // Copy 1 (the kernel, a memmove, so overlapping its own source is fine)
    // must not overwrite the initramfs source, which is copied after it.
    if kernel.overlaps(&i.initramfs_src) && i.initramfs_src.size > 0 {
        return Err(LayoutError::BundleInTheWay);
    }
    // Copy 2 cannot reach the kernel (it starts past kernel_end, checked
    // above), and the DTB, written last, must not land on any source.
    if dtb.overlaps(&i.initramfs_src) && i.initramfs_src.size > 0 || dtb.overlaps(&i.kernel_src) {
        return Err(LayoutError::BundleInTheWay);
    }
    Ok(Plan {
        kernel,
        initramfs,
        dtb,
        entry: kernel.base,
    })
}

/// The parts of guest RAM not covered by `keep` (the guest's kernel with
/// its BSS, initramfs and DTB): the hypervisor zeroes them before the guest
/// starts, because whatever the boot loader left there (the guest bundle,
/// the board's own DTB with the board's command line, or, on hardware,
/// whatever RAM held) differs between two boards and would make their
/// memory, and so their fingerprints, differ.
pub fn gaps(ram: Region, keep: &[Region]) -> heapless::Vec<Region, 8> {
    let mut kept: heapless::Vec<Region, 8> = keep.iter().copied().filter(|r| r.size > 0).collect();
    kept.sort_unstable_by_key(|r| r.base);
    let mut out = heapless::Vec::new();
    let mut at = ram.base;
    for k in kept.iter() {
        let start = k.base.clamp(ram.base, ram.end());
        if start > at {
            let _ = out.push(Region::new(at, start - at));
        }
        at = at.max(k.end().min(ram.end()));
    }
    if ram.end() > at {
        let _ = out.push(Region::new(at, ram.end() - at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn inputs(ram: Region, bundle_at: u64) -> Inputs {
        Inputs {
            guest_ram: ram,
            kernel_src: Region::new(bundle_at + 4096, 32 * MIB),
            kernel_text_offset: 0,
            kernel_image_size: 36 * MIB,
            kernel_placed_anywhere: true,
            initramfs_src: Region::new(bundle_at + 4096 + 32 * MIB, 2 * MIB),
        }
    }

    #[test]
    fn qemu_virt_512m_with_the_bundle_at_qemus_initrd_address() {
        let ram = Region::new(0x4200_0000, 512 * MIB - 32 * MIB);
        let p = plan(&inputs(ram, 0x4800_0000)).unwrap();
        assert_eq!(p.kernel.base, 0x4200_0000);
        assert_eq!(p.entry, 0x4200_0000);
        assert_eq!(p.dtb.base, 0x6000_0000 - 2 * MIB);
        assert_eq!(p.initramfs.end(), p.dtb.base);
        assert!(p.initramfs.base >= p.kernel.base + 36 * MIB);
    }

    /// A version-2 bundle: its kernel 2 MiB into the file.
    fn inputs_kernel_2m_in(ram: Region, bundle_at: u64) -> Inputs {
        let mut i = inputs(ram, bundle_at);
        i.kernel_src = Region::new(bundle_at + 2 * MIB, 32 * MIB);
        i.initramfs_src = Region::new(bundle_at + 34 * MIB, 2 * MIB);
        i
    }

    #[test]
    fn a_kernel_on_a_2m_boundary_in_guest_ram_runs_in_place() {
        let ram = Region::new(0x4200_0000, 1024 * MIB - 32 * MIB);
        let i = inputs_kernel_2m_in(ram, 0x4800_0000);
        let p = plan(&i).unwrap();
        assert!(p.kernel_in_place(&i));
        assert_eq!(p.kernel, i.kernel_src);
        assert_eq!(p.entry, 0x4820_0000);
        // The initramfs still goes to the top, out of the kernel's BSS
        // (which covers its source).
        assert_eq!(p.initramfs.end(), p.dtb.base);
        assert!(p.initramfs.base >= p.kernel.base + 36 * MIB);
    }

    #[test]
    fn a_kernel_off_a_2m_boundary_or_outside_guest_ram_is_copied() {
        let ram = Region::new(0x4200_0000, 512 * MIB - 32 * MIB);
        // 4 KiB into the file: copied to the base (version-1 layout).
        let i = inputs(ram, 0x4800_0000);
        let p = plan(&i).unwrap();
        assert!(!p.kernel_in_place(&i));
        assert_eq!(p.kernel.base, 0x4200_0000);
        // On a 2 MiB boundary but below guest RAM (in the hypervisor's
        // part of the board's RAM).
        let mut i = inputs_kernel_2m_in(ram, 0x4000_0000);
        i.kernel_src.size = 4 * MIB;
        i.kernel_image_size = 6 * MIB;
        i.initramfs_src = Region::new(i.kernel_src.end(), MIB);
        let p = plan(&i).unwrap();
        assert!(!p.kernel_in_place(&i));
        assert_eq!(p.kernel.base, 0x4200_0000);
        // A text_offset moves the 2 MiB boundary the kernel must sit above.
        let mut i = inputs_kernel_2m_in(ram, 0x4800_0000);
        i.kernel_text_offset = 0x8_0000;
        assert_eq!(plan(&i).unwrap().kernel.base, 0x4208_0000);
        i.kernel_src.base += 0x8_0000;
        i.initramfs_src.base += 0x8_0000;
        let p = plan(&i).unwrap();
        assert!(p.kernel_in_place(&i));
        assert_eq!(p.entry, 0x4828_0000);
        // A kernel that asks for the base of RAM (flags bit 3 clear).
        let mut i = inputs_kernel_2m_in(ram, 0x4800_0000);
        i.kernel_placed_anywhere = false;
        assert_eq!(plan(&i).unwrap().kernel.base, 0x4200_0000);
    }

    #[test]
    fn a_kernel_in_place_too_near_the_top_is_copied_instead() {
        // 64 MiB of guest RAM, the bundle loaded 8 MiB below its end: in
        // place its BSS would run into the initramfs and DTB at the top.
        let ram = Region::new(0x4200_0000, 64 * MIB);
        let mut i = inputs_kernel_2m_in(ram, 0x4200_0000 + 40 * MIB);
        i.kernel_src.size = 16 * MIB;
        i.kernel_image_size = 20 * MIB;
        i.initramfs_src = Region::new(i.kernel_src.end(), MIB);
        let p = plan(&i).unwrap();
        assert!(!p.kernel_in_place(&i));
        assert_eq!(p.kernel.base, 0x4200_0000);
    }

    #[test]
    fn unaligned_ram_base_is_rounded_up_to_2m() {
        let ram = Region::new(0x4210_0000, 512 * MIB);
        assert_eq!(
            plan(&inputs(ram, 0x4800_0000)).unwrap().kernel.base,
            0x4220_0000
        );
    }

    #[test]
    fn gaps_are_the_complement_of_what_is_kept() {
        let ram = Region::new(0x1000, 0x9000);
        let keep = [
            Region::new(0x6000, 0x1000),
            Region::new(0x1000, 0x2000),
            Region::new(0x9000, 0x1000),
        ];
        let g = gaps(ram, &keep);
        assert_eq!(
            g.as_slice(),
            &[Region::new(0x3000, 0x3000), Region::new(0x7000, 0x2000)]
        );
        assert_eq!(gaps(ram, &[]).as_slice(), &[ram]);
        // Overlapping and out-of-range keeps.
        let g = gaps(
            ram,
            &[
                Region::new(0, 0x2000),
                Region::new(0x1800, 0x1000),
                Region::new(0x9800, 0x10000),
            ],
        );
        assert_eq!(g.as_slice(), &[Region::new(0x2800, 0x7000)]);
    }

    #[test]
    fn too_small() {
        let ram = Region::new(0x4200_0000, 32 * MIB);
        assert!(matches!(
            plan(&inputs(ram, 0x4800_0000)),
            Err(LayoutError::GuestRamTooSmall { .. })
        ));
    }

    #[test]
    fn bundle_where_the_kernel_goes_is_refused() {
        let ram = Region::new(0x4200_0000, 512 * MIB);
        // The initramfs source would be overwritten by the kernel copy.
        let mut i = inputs(ram, 0x4200_0000);
        i.initramfs_src = Region::new(0x4300_0000, 2 * MIB);
        assert_eq!(plan(&i), Err(LayoutError::BundleInTheWay));
    }

    #[test]
    fn image_size_smaller_than_the_kernel_is_refused() {
        let mut i = inputs(Region::new(0x4200_0000, 512 * MIB), 0x4800_0000);
        i.kernel_image_size = MIB;
        assert_eq!(plan(&i), Err(LayoutError::BadImageSize));
    }
}
