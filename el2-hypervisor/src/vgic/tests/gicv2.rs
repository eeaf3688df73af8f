//! The GICv2 (GIC-400) flavour: Linux's irq-gic.c boot, SGIs through
//! GICD_SGIR, and GICH_LRn output.

use super::*;

const ITARGETSR: u64 = 0x800;
const SGIR: u64 = 0xf00;
const CPENDSGIR: u64 = 0xf10;
const SPENDSGIR: u64 = 0xf20;

pub(super) fn v2_linux_boot() -> Vgic {
    let mut g = Vgic::new(VgicConfig {
        version: GicVersion::V2,
        affinity: 0,
    });
    wd(&mut g, GICD_CTLR, 0);
    let typer = rd(&g, GICD_TYPER);
    assert_eq!(32 * ((typer & 0x1f) + 1), 256);
    assert_eq!((typer >> 5) & 0b111, 0, "one CPU interface");
    assert_eq!((rd(&g, 0xfe8) >> 4) & 0xf, 2, "ArchRev");
    // gic_get_cpumask: the first non-zero banked ITARGETSR.
    let mask = rd(&g, ITARGETSR);
    assert_eq!(mask, 0x0101_0101);
    for i in (32..256).step_by(4) {
        wd(&mut g, ITARGETSR + i, 0x0101_0101);
    }
    for i in (32..256).step_by(16) {
        wd(&mut g, GICD_ICFGR + i / 4, 0);
    }
    for i in (0..256).step_by(4) {
        wd(&mut g, GICD_IPRIORITYR + i, 0xa0a0_a0a0);
    }
    for i in (0..256).step_by(32) {
        wd(&mut g, 0x380 + i / 8, 0xffff_ffff);
        wd(&mut g, GICD_ICENABLER + i / 8, 0xffff_ffff);
    }
    wd(&mut g, GICD_ISENABLER, 0x0000_ffff); // SGIs
    wd(&mut g, GICD_CTLR, 1);
    g
}

#[test]
fn linux_boot_and_a_level_timer_ppi_in_gich_lr_format() {
    let mut g = v2_linux_boot();
    assert_eq!(rd(&g, ITARGETSR + 40), 0x0101_0101, "SPIs target CPU 0");
    wd(&mut g, GICD_ISENABLER, 1 << VTIMER);
    g.set_level(VTIMER, true).unwrap();
    let mut lrs = [0u64; 4];
    assert_eq!(g.fill_list_registers(&mut lrs), 0);
    // VirtualID 27, priority 0xa0 >> 3, pending, Group 0 (Linux's GICv2 default).
    assert_eq!(lrs[0], 27 | (0xa0 >> 3) << 23 | 0b01 << 28);
    assert_eq!(g.lr_format(), LrFormat::V2);
    // The guest acknowledges and EOIs through GICV; the line stays high.
    lrs[0] = (lrs[0] & !(0b11 << 28)) | 0b10 << 28;
    g.sync_from_list_registers(&lrs);
    assert!(g.irq(VTIMER).unwrap().active());
    lrs[0] &= !(0b11 << 28);
    g.sync_from_list_registers(&lrs);
    assert!(g.has_pending_deliverable());
}

#[test]
fn spi_not_targeting_cpu0_is_not_delivered() {
    let mut g = v2_linux_boot();
    g.distributor_write(ITARGETSR + 33, 1, 0x02).unwrap();
    assert_eq!(
        g.distributor_read(ITARGETSR + 33, 1).unwrap(),
        0,
        "only CPU 0 exists"
    );
    wd(&mut g, GICD_ISENABLER + 4, 1 << 1);
    g.set_level(UART, true).unwrap();
    assert!(!g.has_pending_deliverable());
    g.distributor_write(ITARGETSR + 33, 1, 0x01).unwrap();
    assert!(g.has_pending_deliverable());
}

#[test]
fn sgis_through_sgir_and_the_pendsgir_registers() {
    let mut g = v2_linux_boot();
    // ISPENDR0's SGI bits are read-only.
    wd(&mut g, 0x200, 1 << 3);
    assert!(!g.irq(3).unwrap().pending());
    // TargetListFilter 0b10: to myself.
    wd(&mut g, SGIR, 2 << 24 | 3);
    assert!(g.irq(3).unwrap().pending());
    assert_eq!(g.distributor_read(SPENDSGIR + 3, 1).unwrap(), 1);
    // 0b01: everyone else, and a list without CPU 0: nothing.
    wd(&mut g, SGIR, 1 << 24 | 5);
    wd(&mut g, SGIR, 0b10 << 16 | 6);
    assert!(!g.irq(5).unwrap().pending() && !g.irq(6).unwrap().pending());
    g.distributor_write(CPENDSGIR + 3, 1, 1).unwrap();
    assert!(!g.irq(3).unwrap().pending());
    g.distributor_write(SPENDSGIR, 4, 0x0100_0000).unwrap();
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    let lr = LrFormat::V2.decode(lrs[0]);
    assert_eq!(
        (lr.vintid, lr.state, lr.pintid),
        (3, LrState::Pending, None)
    );
}

#[test]
fn v2_widths() {
    let g = v2_linux_boot();
    assert_eq!(g.distributor_read(ITARGETSR + 1, 1), Ok(1));
    assert!(g.distributor_read(ITARGETSR, 8).is_err());
    assert!(g.distributor_read(GICD_CTLR, 2).is_err());
    assert_eq!(g.distributor_read(0xffc, 4), Ok(0));
}
