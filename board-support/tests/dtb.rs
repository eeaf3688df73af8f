//! The device-tree reader against device trees dumped from QEMU 10
//! (`-M virt,...,dumpdtb=FILE`).

use board_support::dtb::{self, DtbError, GicVersion, PsciMethod, Region};

const VIRT_GICV3_512M: &[u8] = include_bytes!("fixtures/virt-gicv3.dtb");
const VIRT_GICV2_1G: &[u8] = include_bytes!("fixtures/virt-gicv2.dtb");

#[test]
fn virt_gicv3() {
    let b = dtb::parse(VIRT_GICV3_512M).unwrap();
    assert_eq!(b.memory.as_slice(), &[Region::new(0x4000_0000, 512 << 20)]);
    assert_eq!(b.memory_size(), 512 << 20);
    assert_eq!(b.console.region, Region::new(0x0900_0000, 0x1000));
    assert_eq!(b.console.intid, Some(33));
    assert_eq!(b.gic.version, GicVersion::V3);
    assert_eq!(b.gic.distributor.base, 0x0800_0000);
    assert_eq!(b.gic.cpu_or_redistributor.base, 0x080a_0000);
    assert_eq!(b.gic.maintenance_intid, Some(25));
    let t = b.timer.unwrap();
    assert_eq!((t.phys, t.virt, t.hyp_phys), (30, 27, 26));
    assert_eq!(b.psci, Some(PsciMethod::Smc));
    assert!(b.initrd.is_none());
}

/// The QEMU virt description's fallbacks are what QEMU's own device tree
/// says, the PMU's included (a node `dtb::parse` does not read).
#[test]
fn virt_description_agrees_with_its_device_tree() {
    let b = dtb::parse(VIRT_GICV3_512M).unwrap();
    let i = board_support::boards::QEMU_VIRT.interrupts;
    assert_eq!(Some(i.console), b.console.intid);
    assert_eq!(i.hyp_timer, b.timer.unwrap().hyp_phys);
    let fdt = fdt::Fdt::new(VIRT_GICV3_512M).unwrap();
    let pmu = fdt.find_compatible(&["arm,armv8-pmuv3"]).unwrap();
    let cells: Vec<u32> = pmu
        .property("interrupts")
        .unwrap()
        .value
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(cells[0], 1, "a PPI");
    assert_eq!(i.pmu, 16 + cells[1]);
    assert_eq!(
        b.console.region,
        Region::new(
            board_support::boards::QEMU_VIRT.early_console,
            board_support::pl011::WINDOW_SIZE
        )
    );
}

#[test]
fn virt_gicv2() {
    let b = dtb::parse(VIRT_GICV2_1G).unwrap();
    assert_eq!(b.memory_size(), 1 << 30);
    assert_eq!(b.gic.version, GicVersion::V2);
    assert_eq!(b.gic.cpu_or_redistributor.base, 0x0801_0000);
    assert_eq!(b.gic.hyp_interface.unwrap().base, 0x0803_0000);
    assert_eq!(b.gic.virtual_cpu.unwrap().base, 0x0804_0000);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert_eq!(dtb::parse(&[]).unwrap_err(), DtbError::Malformed);
    assert_eq!(
        dtb::parse(&[0xd0, 0x0d, 0xfe, 0xed, 0, 0]).unwrap_err(),
        DtbError::Malformed
    );
    let mut truncated = VIRT_GICV3_512M.to_vec();
    truncated.truncate(100);
    assert!(dtb::parse(&truncated).is_err());
}

#[test]
fn region_arithmetic() {
    let r = Region::new(0x1000, 0x1000);
    assert!(r.contains(0x1fff) && !r.contains(0x2000));
    assert!(r.overlaps(&Region::new(0x1800, 0x10)));
    assert!(!r.overlaps(&Region::new(0x2000, 0x10)));
    assert_eq!(Region::new(u64::MAX - 1, 10).end(), u64::MAX);
}

#[test]
fn second_pl011_is_the_link_uart() {
    let b = dtb::parse(include_bytes!("fixtures/virt-gicv3-link.dtb")).unwrap();
    assert_eq!(b.console.region.base, 0x0900_0000);
    let link = b.link_uart.expect("a second PL011");
    assert_eq!(link.region.base, 0x0904_0000);
    assert_eq!(link.intid, Some(40));
    assert!(dtb::parse(VIRT_GICV3_512M).unwrap().link_uart.is_none());
}
