//! The order of the steps at one exit: sync, the trapped GICD/GICR
//! access, fill. The runtime syncs first (so that a read sees what the
//! guest did to its LRs in hardware); a write to an interrupt held in an
//! LR also survives a sync that comes after it with the LR values read at
//! that exit (the old order, or a second sync before the fill).

use super::boot::linux_boot;
use super::*;

// IHI 0069H §12.8: one bit per INTID, SPIs 32-63 in the second word.
const GICD_ISPENDR1: u64 = 0x0204;
const GICD_ICPENDR1: u64 = 0x0284;
const GICD_ISACTIVER1: u64 = 0x0304;
const GICD_ICACTIVER1: u64 = 0x0384;
const GICD_IGROUPR1: u64 = 0x0084;
const GICD_ISENABLER1: u64 = GICD_ISENABLER + 4;
const GICD_ICENABLER1: u64 = GICD_ICENABLER + 4;

/// An edge SPI (a virtio-mmio slot), a level SPI held high by its device,
/// a level SPI pended by software (its line low).
const EDGE: u32 = 40;
const LEVEL: u32 = 41;
const SOFT: u32 = 42;

const fn bit(intid: u32) -> u64 {
    1 << (intid % 32)
}

/// ICC_IAR1_EL1 in hardware: the LR goes pending -> active.
fn ack(lr: &mut u64) {
    assert_eq!(*lr >> 62, 0b01, "acknowledging a non-pending LR");
    *lr = (*lr & !(0b11 << 62)) | 0b10 << 62;
}

/// ICC_EOIR1_EL1 (EOImode 0) in hardware: active -> invalid.
fn eoi(lr: &mut u64) {
    *lr &= !(0b10 << 62);
}

/// Linux's boot, then `intid` set up and made pending (and delivered into
/// LR 0 by a fill).
fn delivered(intid: u32) -> (Vgic, [u64; 4]) {
    let mut g = linux_boot();
    match intid {
        EDGE => {
            setup_spi(&mut g, EDGE, 0x80, true);
            g.set_pending(EDGE).unwrap();
        }
        LEVEL => {
            setup_spi(&mut g, LEVEL, 0x80, false);
            g.set_level(LEVEL, true).unwrap();
        }
        _ => {
            setup_spi(&mut g, SOFT, 0x80, false);
            wd(&mut g, GICD_ISPENDR1, bit(SOFT));
        }
    }
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (intid, LrState::Pending));
    (g, lrs)
}

fn isactiver(g: &Vgic, intid: u32) -> bool {
    rd(g, GICD_ISACTIVER1) & bit(intid) != 0
}

fn ispendr(g: &Vgic, intid: u32) -> bool {
    rd(g, GICD_ISPENDR1) & bit(intid) != 0
}

#[test]
fn sync_then_isactiver_read_shows_the_guests_acknowledge() {
    let (mut g, mut lrs) = delivered(EDGE);
    ack(&mut lrs[0]); // The guest runs and reads ICC_IAR1_EL1.
    // The next exit is its GICD_ISACTIVER1 read: sync first.
    g.sync_from_list_registers(&lrs);
    assert!(isactiver(&g, EDGE));
    assert!(!ispendr(&g, EDGE), "the acknowledge took the pend");
    let mut again = lrs;
    g.fill_list_registers(&mut again);
    assert_eq!(lr_view(&again)[0], (EDGE, LrState::Active));
}

/// Why the runtime syncs before it emulates the access: the acknowledge
/// happened in the LR only, so the model has not seen it yet.
#[test]
fn isactiver_read_before_the_sync_is_stale() {
    let (mut g, mut lrs) = delivered(EDGE);
    ack(&mut lrs[0]);
    assert!(!isactiver(&g, EDGE), "not active before the sync");
    assert!(ispendr(&g, EDGE), "still pending before the sync");
    g.sync_from_list_registers(&lrs);
    assert!(isactiver(&g, EDGE));
}

/// Linux's mask path for an acknowledged interrupt (irq_chip
/// `irq_set_irqchip_state(ACTIVE, false)`): GICD_ICACTIVER on an LR that
/// the guest made active in hardware.
fn icactiver_of_an_acknowledged_lr(order: Order) -> (Vgic, [u64; 4]) {
    let (mut g, mut lrs) = delivered(EDGE);
    ack(&mut lrs[0]);
    order(&mut g, &lrs, &|g| wd(g, GICD_ICACTIVER1, bit(EDGE)));
    g.fill_list_registers(&mut lrs);
    (g, lrs)
}

/// One exit's steps before its fill, around the trapped `write`, given the
/// LR values read at that exit.
type Order = fn(&mut Vgic, &[u64], &dyn Fn(&mut Vgic));

fn sync_then_write(g: &mut Vgic, lrs: &[u64], write: &dyn Fn(&mut Vgic)) {
    g.sync_from_list_registers(lrs);
    write(g);
}

fn write_then_sync(g: &mut Vgic, lrs: &[u64], write: &dyn Fn(&mut Vgic)) {
    write(g);
    g.sync_from_list_registers(lrs);
}

/// Sync first, and again before the fill (as a runtime that also syncs
/// on its way back into the guest does).
fn sync_write_sync(g: &mut Vgic, lrs: &[u64], write: &dyn Fn(&mut Vgic)) {
    g.sync_from_list_registers(lrs);
    write(g);
    g.sync_from_list_registers(lrs);
}

#[test]
fn icactiver_after_the_sync_deactivates_the_lr() {
    for order in [sync_then_write, sync_write_sync as Order] {
        let (g, lrs) = icactiver_of_an_acknowledged_lr(order);
        assert_eq!(lrs, [0; 4], "the entry is neither pending nor active");
        assert!(!isactiver(&g, EDGE) && !ispendr(&g, EDGE));
        assert_eq!(g.list_register_owner(0), None);
    }
}

#[test]
fn icactiver_before_a_stale_sync_is_kept() {
    let (g, lrs) = icactiver_of_an_acknowledged_lr(write_then_sync);
    assert_eq!(lrs, [0; 4], "the stale LR's active bit did not come back");
    assert!(!isactiver(&g, EDGE));
    // The guest's acknowledge still counts: the pend it took is gone.
    assert!(!ispendr(&g, EDGE));
}

/// GICD_ICPENDR on an edge that sits pending in an LR (not acknowledged).
fn icpendr_of_a_pending_lr(order: Order) -> [u64; 4] {
    let (mut g, mut lrs) = delivered(EDGE);
    order(&mut g, &lrs, &|g| wd(g, GICD_ICPENDR1, bit(EDGE)));
    assert!(!ispendr(&g, EDGE));
    g.fill_list_registers(&mut lrs);
    assert!(!ispendr(&g, EDGE) && !isactiver(&g, EDGE));
    assert!(!g.has_pending_deliverable());
    lrs
}

#[test]
fn icpendr_after_the_sync_withdraws_the_pend_from_the_lr() {
    assert_eq!(icpendr_of_a_pending_lr(sync_then_write), [0; 4]);
    assert_eq!(icpendr_of_a_pending_lr(sync_write_sync), [0; 4]);
}

#[test]
fn icpendr_before_a_stale_sync_is_kept() {
    assert_eq!(icpendr_of_a_pending_lr(write_then_sync), [0; 4]);
}

/// A software pend of a level interrupt made after the guest acknowledged
/// the previous one stands, whichever order: it is delivered after the EOI.
#[test]
fn ispendr_after_an_acknowledge_stands_in_every_order() {
    for order in [sync_then_write, write_then_sync, sync_write_sync as Order] {
        let (mut g, mut lrs) = delivered(SOFT);
        ack(&mut lrs[0]);
        order(&mut g, &lrs, &|g| wd(g, GICD_ISPENDR1, bit(SOFT)));
        g.fill_list_registers(&mut lrs);
        assert_eq!(lr_view(&lrs)[0], (SOFT, LrState::Active));
        assert!(ispendr(&g, SOFT));
        eoi(&mut lrs[0]);
        g.sync_from_list_registers(&lrs);
        g.fill_list_registers(&mut lrs);
        assert_eq!(lr_view(&lrs)[0], (SOFT, LrState::Pending));
    }
}

/// The same for a software pend from the hypervisor ([`Vgic::set_pending`])
/// fed in before the sync that sees the guest acknowledge the previous one.
#[test]
fn set_pending_before_a_stale_sync_stands() {
    let (mut g, mut lrs) = delivered(SOFT);
    ack(&mut lrs[0]);
    g.set_pending(SOFT).unwrap();
    g.sync_from_list_registers(&lrs);
    assert!(
        ispendr(&g, SOFT),
        "the acknowledge consumed only the old pend"
    );
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (SOFT, LrState::Active));
    eoi(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (SOFT, LrState::Pending));
}

/// Priority, group and enable are not in an LR's State, so no sync could
/// undo them; the fill carries them into the LR.
#[test]
fn priority_group_and_enable_writes_survive_a_stale_sync() {
    let (mut g, mut lrs) = delivered(EDGE);
    ack(&mut lrs[0]);
    g.distributor_write(GICD_IPRIORITYR + u64::from(EDGE), 1, 0x20)
        .unwrap();
    wd(&mut g, GICD_IGROUPR1, !bit(EDGE) & 0xffff_ffff);
    wd(&mut g, GICD_ICENABLER1, bit(EDGE));
    g.sync_from_list_registers(&lrs);
    g.fill_list_registers(&mut lrs);
    let lr = LrFormat::V3.decode(lrs[0]);
    assert_eq!((lr.vintid, lr.state), (EDGE, LrState::Active));
    assert_eq!((lr.priority, lr.group1), (0x20, false));
    assert!(!g.irq(EDGE).unwrap().enabled());
}

/// The model's authority ends at the fill: the LR then shows the model,
/// and what the guest does to it afterwards is synced again.
#[test]
fn a_fill_hands_authority_back_to_the_lrs() {
    let (mut g, mut lrs) = delivered(EDGE);
    wd(&mut g, GICD_ISACTIVER1, bit(EDGE));
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (EDGE, LrState::PendingActive));
    eoi(&mut lrs[0]); // The guest deactivates it: pending + active -> pending.
    g.sync_from_list_registers(&lrs);
    assert!(!isactiver(&g, EDGE), "the EOI after the fill is seen");
    assert!(ispendr(&g, EDGE));
}

#[test]
fn sync_stays_idempotent_after_a_write() {
    let (mut g, mut lrs) = delivered(LEVEL);
    ack(&mut lrs[0]);
    g.sync_from_list_registers(&lrs);
    wd(&mut g, GICD_ICACTIVER1, bit(LEVEL));
    let once = g.clone();
    g.sync_from_list_registers(&lrs);
    assert_eq!(g, once);
    g.sync_from_list_registers(&lrs);
    assert_eq!(g, once);
}

/// Every write Linux makes to a delivered interrupt, at every point of its
/// life in an LR: sync-first, write-first and sync-write-sync end in the
/// same model and write the same LRs.
#[test]
fn every_order_ends_in_the_same_state() {
    type Guest = fn(&mut u64);
    let steps: [(&str, Guest); 3] = [
        ("untouched", |_| {}),
        ("acknowledged", ack),
        ("acknowledged and EOI'd", |lr| {
            ack(lr);
            eoi(lr);
        }),
    ];
    type Write = fn(&mut Vgic, u32);
    let writes: [(&str, Write); 9] = [
        ("ISACTIVER", |g, i| wd(g, GICD_ISACTIVER1, bit(i))),
        ("ICACTIVER", |g, i| wd(g, GICD_ICACTIVER1, bit(i))),
        ("ISPENDR", |g, i| wd(g, GICD_ISPENDR1, bit(i))),
        ("ICPENDR", |g, i| wd(g, GICD_ICPENDR1, bit(i))),
        ("ICENABLER", |g, i| wd(g, GICD_ICENABLER1, bit(i))),
        ("ISENABLER", |g, i| wd(g, GICD_ISENABLER1, bit(i))),
        ("IGROUPR", |g, i| {
            wd(g, GICD_IGROUPR1, !bit(i) & 0xffff_ffff)
        }),
        ("IPRIORITYR", |g, i| {
            let word = GICD_IPRIORITYR + u64::from(i & !3);
            wd(g, word, 0x1010_1010);
        }),
        ("ICPENDR then ISACTIVER", |g, i| {
            wd(g, GICD_ICPENDR1, bit(i));
            wd(g, GICD_ISACTIVER1, bit(i));
        }),
    ];
    let mut checked = 0;
    for intid in [EDGE, LEVEL, SOFT] {
        for (step, guest) in steps {
            for (name, write) in writes {
                let write = |g: &mut Vgic| write(g, intid);
                let (start, mut lrs) = delivered(intid);
                guest(&mut lrs[0]);
                let mut out = Vec::new();
                for order in [sync_then_write, write_then_sync, sync_write_sync as Order] {
                    let (mut g, mut l) = (start.clone(), lrs);
                    order(&mut g, &l, &write);
                    g.fill_list_registers(&mut l);
                    out.push((g, l));
                }
                let what = format!("INTID {intid} {step}, then {name}");
                assert_eq!(out[0].1, out[1].1, "{what}: LRs, write first");
                assert_eq!(out[0].0, out[1].0, "{what}: model, write first");
                assert_eq!(out[0].1, out[2].1, "{what}: LRs, second sync");
                assert_eq!(out[0].0, out[2].0, "{what}: model, second sync");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 9);
}
