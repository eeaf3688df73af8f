//! Filling and syncing list registers.

use super::boot::linux_boot;
use super::*;
use crate::vgic::{ListRegister, VgicError};

/// What the CPU interface does to an LR when the guest acknowledges it
/// (ICC_IAR1_EL1: pending -> active) ...
fn ack(lr: &mut u64) {
    assert_eq!(*lr >> 62, 0b01, "acknowledging a non-pending LR");
    *lr = (*lr & !(0b11 << 62)) | 0b10 << 62;
}

/// ... and when it EOIs it (EOImode 0: active -> invalid, or
/// pending+active -> pending).
fn eoi(lr: &mut u64) {
    *lr &= !(0b10 << 62);
}

#[test]
fn level_ppi_27_appears_in_an_lr_with_the_right_encoding() {
    let mut g = linux_boot();
    g.set_level(VTIMER, true).unwrap();
    assert!(g.has_pending_deliverable());
    let mut lrs = [0u64; 4];
    assert_eq!(g.fill_list_registers(&mut lrs), 0);
    // vINTID 27, priority 0xa0, Group 1, HW 0, state pending.
    assert_eq!(lrs[0], 27 | 0xa0 << 48 | 1 << 60 | 0b01 << 62);
    assert_eq!(&lrs[1..], &[0, 0, 0]);
    assert_eq!(g.list_register_owner(0), Some(VTIMER));
    assert!(!g.has_pending_deliverable());
    assert!(!g.needs_fill());
}

#[test]
fn level_eoi_with_line_high_is_pended_again() {
    let mut g = linux_boot();
    g.set_level(VTIMER, true).unwrap();
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    ack(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    assert!(g.irq(VTIMER).unwrap().active());
    // Active with the line still high: no "pending and active" is added.
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs[0] >> 62, 0b10);
    eoi(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    let irq = g.irq(VTIMER).unwrap();
    assert!(irq.pending() && !irq.active() && irq.list_register().is_none());
    assert!(g.has_pending_deliverable());
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (VTIMER, LrState::Pending));
}

#[test]
fn level_eoi_with_line_low_is_done() {
    let mut g = linux_boot();
    g.set_level(VTIMER, true).unwrap();
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    ack(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    g.set_level(VTIMER, false).unwrap();
    eoi(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    assert!(!g.irq(VTIMER).unwrap().pending());
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs, [0; 4]);
}

#[test]
fn level_line_dropping_before_the_ack_withdraws_the_lr() {
    let mut g = linux_boot();
    g.set_level(VTIMER, true).unwrap();
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    g.sync_from_list_registers(&lrs);
    g.set_level(VTIMER, false).unwrap();
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs[0], 0);
    assert_eq!(g.list_register_owner(0), None);
}

#[test]
fn edge_while_active_becomes_pending_and_active() {
    let mut g = linux_boot();
    setup_spi(&mut g, 40, 0x80, true);
    g.set_pending(40).unwrap();
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    ack(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    assert!(!g.irq(40).unwrap().pending());
    g.set_pending(40).unwrap();
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (40, LrState::PendingActive));
    eoi(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    assert_eq!(lr_view(&lrs)[0], (40, LrState::Pending));
    assert_eq!(g.list_register_owner(0), Some(40));
    ack(&mut lrs[0]);
    eoi(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    assert_eq!(g.list_register_owner(0), None);
    assert!(!g.irq(40).unwrap().pending() && !g.irq(40).unwrap().active());
}

#[test]
fn disabled_interrupt_never_reaches_an_lr() {
    let mut g = linux_boot();
    // SPI 34: configured but left disabled.
    g.distributor_write(GICD_IPRIORITYR + 34, 1, 0x10).unwrap();
    g.set_level(34, true).unwrap();
    // PPI 20: enabled, but in Group 0, which GICD_CTLR leaves disabled.
    wr(&mut g, GICR_ISENABLER0, 1 << 20);
    wr(&mut g, SGI_BASE + 0x0080, !(1u64 << 20) & 0xffff_ffff);
    g.set_pending(20).unwrap();
    wd(&mut g, GICD_CTLR, 0b10);
    // SPI 35: enabled but routed to another PE.
    setup_spi(&mut g, 35, 0, false);
    g.distributor_write(GICD_IROUTER + 35 * 8, 8, 0x100)
        .unwrap();
    g.set_level(35, true).unwrap();
    let mut lrs = [0u64; 4];
    assert_eq!(g.fill_list_registers(&mut lrs), 0);
    assert_eq!(lrs, [0; 4]);
    assert!(!g.has_pending_deliverable());
    // Still pending in the model, for GICD_ISPENDR.
    assert!(g.irq(34).unwrap().pending() && g.irq(20).unwrap().pending());
    wd(&mut g, GICD_CTLR, 0b11);
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (20, LrState::Pending));
    assert!(!LrFormat::V3.decode(lrs[0]).group1);
    assert_eq!(lrs[1], 0);
}

#[test]
fn disabling_a_pending_lr_withdraws_it_and_keeps_the_edge() {
    let mut g = linux_boot();
    setup_spi(&mut g, 40, 0x80, true);
    g.set_pending(40).unwrap();
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    g.sync_from_list_registers(&lrs);
    wd(&mut g, GICD_ICENABLER + 4, 1 << 8);
    assert!(g.needs_fill());
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs[0], 0);
    assert!(g.irq(40).unwrap().pending());
    wd(&mut g, GICD_ISENABLER + 4, 1 << 8);
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (40, LrState::Pending));
}

#[test]
fn icpendr_and_icactiver_reach_the_lr() {
    let mut g = linux_boot();
    setup_spi(&mut g, 40, 0x80, true);
    g.set_pending(40).unwrap();
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    g.sync_from_list_registers(&lrs);
    wd(&mut g, 0x0280 + 4, 1 << 8); // GICD_ICPENDR1
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs[0], 0);
    assert!(!g.irq(40).unwrap().pending());
    // Active, then cleared by ICACTIVER (Linux's eoimode1 mask path).
    wd(&mut g, 0x0300 + 4, 1 << 8); // GICD_ISACTIVER1
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (40, LrState::Active));
    g.sync_from_list_registers(&lrs);
    wd(&mut g, 0x0380 + 4, 1 << 8); // GICD_ICACTIVER1
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs[0], 0);
}

#[test]
fn priority_order_then_lowest_intid_and_leftovers() {
    let mut g = linux_boot();
    for (intid, prio) in [
        (40, 0xa0),
        (41, 0x20),
        (42, 0xa0),
        (43, 0x60),
        (44, 0x20),
        (45, 0xf0),
    ] {
        setup_spi(&mut g, intid, prio, true);
        g.set_pending(intid).unwrap();
    }
    let mut lrs = [0u64; 4];
    assert_eq!(g.fill_list_registers(&mut lrs), 2);
    let got: Vec<u32> = lr_view(&lrs).iter().map(|v| v.0).collect();
    assert_eq!(got, [41, 44, 43, 40]);
    assert_eq!(LrFormat::V3.decode(lrs[1]).priority, 0x20);
    assert!(g.has_pending_deliverable());
}

#[test]
fn a_more_urgent_interrupt_evicts_the_least_urgent_pending_entry() {
    let mut g = linux_boot();
    for intid in 40..44 {
        setup_spi(&mut g, intid, 0xa0, true);
        g.set_pending(intid).unwrap();
    }
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    ack(&mut lrs[3]); // 43 is active: it stays.
    g.sync_from_list_registers(&lrs);
    setup_spi(&mut g, 50, 0x10, true);
    g.set_pending(50).unwrap();
    assert_eq!(g.fill_list_registers(&mut lrs), 1);
    let got: Vec<u32> = lr_view(&lrs).iter().map(|v| v.0).collect();
    assert_eq!(got, [40, 41, 50, 43]);
    assert!(g.irq(42).unwrap().pending(), "the evicted edge is kept");
    // Equal priority does not evict.
    setup_spi(&mut g, 39, 0xa0, true);
    g.set_pending(39).unwrap();
    g.fill_list_registers(&mut lrs);
    let got: Vec<u32> = lr_view(&lrs).iter().map(|v| v.0).collect();
    assert_eq!(got, [40, 41, 50, 43]);
}

#[test]
fn an_interrupt_is_never_in_two_lrs() {
    let mut g = linux_boot();
    setup_spi(&mut g, 40, 0x80, true);
    let mut lrs = [0u64; 4];
    for _ in 0..3 {
        g.set_pending(40).unwrap();
        g.fill_list_registers(&mut lrs);
        g.sync_from_list_registers(&lrs);
    }
    assert_eq!(lrs.iter().filter(|&&v| v != 0).count(), 1);
}

#[test]
fn sgi_from_icc_sgi1r_targets_this_vcpu_only() {
    let mut g = linux_boot();
    wr(&mut g, GICR_ISENABLER0, 1 << 1);
    // INTID 1 to TargetList bit 0 at affinity 0.0.0.
    g.generate_sgi(1 << 24 | 1, true);
    // IRM=1 (everyone else), and a target list without us.
    g.generate_sgi(2 << 24 | 1 << 40, true);
    g.generate_sgi(3 << 24 | 0b10, true);
    // ICC_SGI0R_EL1 for a Group 1 SGI.
    g.generate_sgi(4 << 24 | 1, false);
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (1, LrState::Pending));
    assert_eq!(&lrs[1..], &[0, 0, 0]);
    assert!(!g.irq(2).unwrap().pending() && !g.irq(3).unwrap().pending());
    assert!(!g.irq(4).unwrap().pending());
}

#[test]
fn bad_intids_from_the_hypervisor_are_errors() {
    let mut g = v3();
    assert_eq!(g.set_pending(256), Err(VgicError::BadIntid { intid: 256 }));
    assert_eq!(
        g.set_level(1023, true),
        Err(VgicError::BadIntid { intid: 1023 })
    );
    assert!(!VgicError::BadIntid { intid: 0 }.is_guest_fault());
}

#[test]
fn v3_codec_round_trip_and_field_positions() {
    let lr = ListRegister {
        vintid: 0x1234_5678,
        pintid: Some(0x1abc),
        priority: 0xa8,
        group1: true,
        state: LrState::PendingActive,
    };
    let raw = LrFormat::V3.encode(&lr);
    assert_eq!(
        raw,
        0x1234_5678 | 0x1abc << 32 | 0xa8 << 48 | 1 << 60 | 1 << 61 | 0b11 << 62
    );
    assert_eq!(LrFormat::V3.decode(raw), lr);
    let soft = ListRegister {
        pintid: None,
        group1: false,
        state: LrState::Active,
        ..lr
    };
    assert_eq!(
        LrFormat::V3.encode(&soft),
        0x1234_5678 | 0xa8 << 48 | 0b10 << 62
    );
    assert_eq!(LrFormat::V3.decode(LrFormat::V3.encode(&soft)), soft);
}

#[test]
fn v2_codec_round_trip_and_field_positions() {
    let lr = ListRegister {
        vintid: 27,
        pintid: Some(0x3ff),
        priority: 0xa0,
        group1: true,
        state: LrState::Pending,
    };
    let raw = LrFormat::V2.encode(&lr);
    assert_eq!(
        raw,
        27 | 0x3ff << 10 | (0xa0 >> 3) << 23 | 0b01 << 28 | 1 << 30 | 1 << 31
    );
    assert!(raw <= u64::from(u32::MAX), "GICH_LRn is 32 bits");
    assert_eq!(LrFormat::V2.decode(raw), lr);
    // Priority keeps bits [7:3]; the INTID keeps 10 bits.
    let lossy = ListRegister {
        vintid: 0x7ff,
        pintid: None,
        priority: 0xa7,
        group1: false,
        state: LrState::Active,
    };
    let raw = LrFormat::V2.encode(&lossy);
    assert_eq!(raw, 0x3ff | (0xa0 >> 3) << 23 | 0b10 << 28);
    let back = LrFormat::V2.decode(raw);
    assert_eq!(
        (back.vintid, back.priority, back.state),
        (0x3ff, 0xa0, LrState::Active)
    );
    assert_eq!(LrFormat::V2.state(raw), LrState::Active);
}

#[test]
fn extra_lrs_are_zeroed_and_fewer_lrs_hand_state_back() {
    let mut g = linux_boot();
    g.set_level(VTIMER, true).unwrap();
    let mut many = [u64::MAX; 20];
    g.fill_list_registers(&mut many);
    assert_eq!(lr_view(&many[..1])[0], (VTIMER, LrState::Pending));
    assert!(many[1..].iter().all(|&v| v == 0));
    let mut none: [u64; 0] = [];
    assert_eq!(g.fill_list_registers(&mut none), 1);
    assert_eq!(g.list_register_owner(0), None);
    assert!(g.irq(VTIMER).unwrap().pending());
}
