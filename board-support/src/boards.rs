//! One `const` description per supported board.
//!
//! The device tree is the source of truth at run time; these descriptions
//! hold what the device tree does not say (where the hypervisor image is
//! linked, how many cores to expect, the PMU interrupt) and are the
//! fallback used for the early console before the device tree has been
//! read, and for interrupts its nodes do not name.

/// The boards this hypervisor knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardKind {
    /// `qemu-system-aarch64 -M virt,virtualization=on`.
    QemuVirt,
    /// Raspberry Pi 4 Model B (BCM2711, Cortex-A72, GIC-400), also QEMU `-M raspi4b`.
    RaspberryPi4,
}

/// A board, as data.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    pub kind: BoardKind,
    /// Short name used in logs, image names and `cargo xtask --board`.
    pub name: &'static str,
    /// Physical base of RAM.
    pub ram_base: u64,
    /// Where the hypervisor image is linked and loaded: RAM base + 2 MiB,
    /// which is where QEMU's `-kernel` loader puts an arm64 Image whose
    /// header asks for `text_offset = 0` (hw/arm/boot.c moves it past its
    /// own boot stub).
    pub image_base: u64,
    /// RAM the hypervisor keeps for itself from `ram_base` on (its image,
    /// stacks, page tables, log buffers). The guest never sees it.
    pub hypervisor_reserved: u64,
    /// The console PL011, used before the device tree has been read.
    pub early_console: u64,
    /// CPU cores the board starts (only core 0 runs the hypervisor).
    pub cores: u32,
    /// The interrupts the hypervisor takes from the board's own devices.
    pub interrupts: Interrupts,
}

/// INTIDs of the interrupts the hypervisor takes itself. The device tree
/// wins where it names one; these are used where it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupts {
    /// The EL2 physical timer (CNTHP) PPI, when the device tree has no
    /// `arm,armv8-timer` node.
    pub hyp_timer: u32,
    /// The console PL011's SPI, when its node has no `interrupts`.
    pub console: u32,
    /// The PMU's overflow interrupt, which counts epochs. Always this one:
    /// the device tree's `pmu` node is not read.
    pub pmu: u32,
    /// The vGIC maintenance interrupt (PPI 9), when the GIC node's
    /// `interrupts` does not name it.
    pub maintenance: u32,
}

/// QEMU's `virt` machine (hw/arm/virt.c memory map).
pub const QEMU_VIRT: Board = Board {
    kind: BoardKind::QemuVirt,
    name: "qemu-virt",
    ram_base: 0x4000_0000,
    image_base: 0x4020_0000,
    hypervisor_reserved: 32 << 20,
    early_console: 0x0900_0000,
    cores: 1,
    // hw/arm/virt.c: PPI 10 (ARCH_TIMER_NS_EL2_IRQ), SPI 1 (the UART),
    // PPI 7 (VIRTUAL_PMU_IRQ), PPI 9 (ARCH_GIC_MAINT_IRQ).
    interrupts: Interrupts {
        hyp_timer: 26,
        console: 33,
        pmu: 23,
        maintenance: 25,
    },
};

/// Raspberry Pi 4 Model B (BCM2711 ARM peripherals, "low peripheral" mode).
pub const RASPBERRY_PI_4: Board = Board {
    kind: BoardKind::RaspberryPi4,
    name: "rpi4",
    ram_base: 0,
    image_base: 0x20_0000,
    hypervisor_reserved: 32 << 20,
    early_console: 0xfe20_1000,
    cores: 4,
    // The hypervisor timer's PPI 10 and the PMU's PPI 7, as measured on
    // QEMU `-M raspi4b` (design card, section 9), as is the maintenance
    // interrupt PPI 9; UART0's SPI 121, as in
    // Linux's arch/arm/boot/dts/broadcom/bcm2711.dtsi. That file gives the
    // real board's PMU as SPIs 16-19 (one per core): to be checked on the
    // board before epochs run there.
    interrupts: Interrupts {
        hyp_timer: 26,
        console: 153,
        pmu: 23,
        maintenance: 25,
    },
};

/// Every board, for lookups by name.
pub const ALL: [Board; 2] = [QEMU_VIRT, RASPBERRY_PI_4];

impl Board {
    /// Finds a board by its short name (`qemu-virt`, `rpi4`).
    pub fn by_name(name: &str) -> Option<Board> {
        ALL.iter().copied().find(|b| b.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_name() {
        assert_eq!(
            Board::by_name("qemu-virt").unwrap().kind,
            BoardKind::QemuVirt
        );
        assert_eq!(
            Board::by_name("rpi4").unwrap().kind,
            BoardKind::RaspberryPi4
        );
        assert!(Board::by_name("pi5").is_none());
    }

    #[test]
    fn interrupts_are_ppis_and_spis() {
        for b in ALL {
            let i = b.interrupts;
            assert!((16..32).contains(&i.hyp_timer), "{}: hyp timer PPI", b.name);
            assert!((16..32).contains(&i.pmu), "{}: PMU PPI", b.name);
            assert!((32..1020).contains(&i.console), "{}: console SPI", b.name);
        }
    }

    #[test]
    fn image_sits_inside_the_reserved_region() {
        for b in ALL {
            assert!(b.image_base >= b.ram_base);
            assert!(b.image_base < b.ram_base + b.hypervisor_reserved);
            assert_eq!(b.image_base % (2 << 20), 0, "{}: 2 MiB aligned", b.name);
        }
    }
}
