//! The register sequence Linux's irq-gic-v3.c runs at boot, and what it
//! expects to read back.

use super::*;

const GICD_IIDR: u64 = 0x0008;
const GICD_TYPER2: u64 = 0x000c;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ICACTIVER: u64 = 0x0380;
const GICD_PIDR2: u64 = 0xffe8;
const GICR_CTLR: u64 = 0x0000;
const GICR_TYPER: u64 = 0x0008;
const GICR_PIDR2: u64 = 0xffe8;
const GICR_IGROUPR0: u64 = SGI_BASE + 0x0080;
const GICR_ICENABLER0: u64 = SGI_BASE + 0x0180;
const GICR_ICACTIVER0: u64 = SGI_BASE + 0x0380;
const GICR_ICFGR1: u64 = SGI_BASE + 0x0c04;

const DEF_PRI_X4: u64 = 0xa0a0_a0a0;

/// gic_validate_dist_version, gic_init_bases, gic_iterate_rdists.
fn probe(g: &Vgic) {
    assert_eq!((rd(g, GICD_PIDR2) >> 4) & 0xf, 3, "GICD_PIDR2.ArchRev");
    let typer = rd(g, GICD_TYPER);
    assert_eq!(32 * ((typer & 0x1f) + 1), 256, "ITLinesNumber");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits");
    assert_eq!(
        typer & (1 << 17 | 1 << 16 | 1 << 8),
        0,
        "no LPIs, MBIs, ESPIs"
    );
    assert_ne!(rd(g, GICD_IIDR), 0, "IIDR 0 would enable the HIP07 quirk");
    assert_eq!(rd(g, GICD_TYPER2), 0);
    assert_eq!((rr(g, GICR_PIDR2) >> 4) & 0xf, 3, "GICR_PIDR2.ArchRev");
    let gicr_typer = g.redistributor_read(GICR_TYPER, 8).unwrap();
    assert_eq!(gicr_typer >> 32, 0, "affinity of CPU 0");
    assert_ne!(gicr_typer & 1 << 4, 0, "Last");
    assert_eq!((gicr_typer >> 8) & 0xffff, 0, "Processor_Number");
    assert_eq!((gicr_typer >> 27) & 0x1f, 0, "PPInum: 16 PPIs");
    assert_eq!(gicr_typer & 0b11, 0, "no PLPIS, VLPIS");
}

/// gic_dist_init (with gic_dist_config).
fn dist_init(g: &mut Vgic) {
    wd(g, GICD_CTLR, 0);
    assert_eq!(rd(g, GICD_CTLR) >> 31, 0, "RWP");
    for i in (32..256).step_by(32) {
        wd(g, GICD_IGROUPR + i / 8, 0xffff_ffff);
    }
    for i in (32..256).step_by(16) {
        wd(g, GICD_ICFGR + i / 4, 0);
    }
    for i in (32..256).step_by(4) {
        wd(g, GICD_IPRIORITYR + i, DEF_PRI_X4);
    }
    for i in (32..256).step_by(32) {
        wd(g, GICD_ICACTIVER + i / 8, 0xffff_ffff);
        wd(g, GICD_ICENABLER + i / 8, 0xffff_ffff);
    }
    wd(g, GICD_CTLR, 1 << 4 | 1 << 1 | 1);
    let ctlr = rd(g, GICD_CTLR);
    assert_eq!(ctlr >> 31, 0, "RWP");
    assert_eq!(
        ctlr & 0b1_0101_0011,
        0b0_0101_0011,
        "DS, ARE, both groups enabled"
    );
    for i in 32..256 {
        g.distributor_write(GICD_IROUTER + i * 8, 8, 0).unwrap();
    }
}

/// gic_cpu_init: wake the redistributor, then gic_cpu_config.
fn cpu_init(g: &mut Vgic) {
    let waker = rr(g, GICR_WAKER);
    assert_eq!(waker & 0b110, 0b110, "asleep at reset");
    wr(g, GICR_WAKER, waker & !0b10);
    assert_eq!(rr(g, GICR_WAKER) & 0b100, 0, "ChildrenAsleep clears");
    wr(g, GICR_IGROUPR0, 0xffff_ffff);
    wr(g, GICR_ICACTIVER0, 0xffff_ffff);
    wr(g, GICR_ICENABLER0, 0xffff_ffff);
    for i in (0..32).step_by(4) {
        wr(g, GICR_IPRIORITYR0 + i, DEF_PRI_X4);
    }
    assert_eq!(rr(g, GICR_CTLR) & 1 << 3, 0, "GICR_CTLR.RWP");
}

/// The arch timer driver: PPI 27 level-high, then enable_percpu_irq.
fn timer_init(g: &mut Vgic) {
    let cfg = rr(g, GICR_ICFGR1);
    let bit = 2 * (VTIMER - 16) + 1;
    wr(g, GICR_ICFGR1, cfg & !(1 << bit));
    wr(g, GICR_ISENABLER0, 1 << VTIMER);
}

pub(super) fn linux_boot() -> Vgic {
    let mut g = v3();
    probe(&g);
    dist_init(&mut g);
    cpu_init(&mut g);
    timer_init(&mut g);
    g
}

#[test]
fn linux_boot_sequence_reads_back_what_linux_expects() {
    let mut g = linux_boot();
    // The PL011: level SPI, enabled.
    setup_spi(&mut g, UART, 0xa0, false);
    assert_eq!(rr(&g, GICR_ISENABLER0), 1 << VTIMER);
    assert_eq!(rd(&g, GICD_ISENABLER + 4), 1 << (UART - 32));
    assert_eq!(rr(&g, GICR_IGROUPR0), 0xffff_ffff);
    assert_eq!(rd(&g, GICD_IGROUPR + 4), 0xffff_ffff);
    assert_eq!(rr(&g, GICR_IPRIORITYR0 + 24), DEF_PRI_X4);
    assert_eq!(rr(&g, SGI_BASE + 0x0c00), 0xaaaa_aaaa, "SGIs are edge");
    assert_eq!(g.distributor_read(GICD_IROUTER + 33 * 8, 8).unwrap(), 0);
    let irq = g.irq(VTIMER).unwrap();
    assert!(irq.enabled() && irq.group1() && irq.priority() == 0xa0);
    assert!(!g.has_pending_deliverable());
}

#[test]
fn banked_registers_in_the_distributor_are_raz_wi() {
    let mut g = linux_boot();
    wd(&mut g, GICD_ISENABLER, 0xffff_ffff);
    assert_eq!(rd(&g, GICD_ISENABLER), 0);
    assert!(!g.irq(0).unwrap().enabled());
    assert_eq!(g.distributor_read(GICD_IROUTER, 8).unwrap(), 0);
}

#[test]
fn waker_handshake_both_ways() {
    let mut g = v3();
    wr(&mut g, GICR_WAKER, 0);
    assert_eq!(rr(&g, GICR_WAKER), 0);
    // CPU_PM_ENTER with DS=1: ProcessorSleep=1, wait for ChildrenAsleep=1.
    wr(&mut g, GICR_WAKER, 0b10);
    assert_eq!(rr(&g, GICR_WAKER), 0b110);
}
