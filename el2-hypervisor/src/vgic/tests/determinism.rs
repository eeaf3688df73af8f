//! Same inputs, same outputs: what lets two boards inject identically.

use super::boot::linux_boot;
use super::*;

fn busy(g: &mut Vgic) {
    for (intid, prio, edge) in [
        (33, 0xa0, false),
        (40, 0x20, true),
        (41, 0x20, true),
        (42, 0x60, false),
    ] {
        setup_spi(g, intid, prio, edge);
    }
    g.set_level(VTIMER, true).unwrap();
    g.set_level(33, true).unwrap();
    g.set_pending(41).unwrap();
    g.set_pending(40).unwrap();
    g.set_level(42, true).unwrap();
}

#[test]
fn fill_is_a_pure_function_of_the_state() {
    let mut a = linux_boot();
    let mut b = linux_boot();
    busy(&mut a);
    busy(&mut b);
    let (mut la, mut lb) = ([0u64; 4], [0xdead_beef_u64; 4]);
    assert_eq!(a.fill_list_registers(&mut la), 1);
    assert_eq!(b.fill_list_registers(&mut lb), 1);
    assert_eq!(la, lb, "stale LR contents do not leak into the output");
    assert_eq!(a.snapshot_hash(), b.snapshot_hash());
    let got: Vec<u32> = lr_view(&la).iter().map(|v| v.0).collect();
    assert_eq!(
        got,
        [40, 41, 42, VTIMER],
        "priority, then lowest INTID (27 before 33)"
    );
}

#[test]
fn sync_is_idempotent() {
    let mut g = linux_boot();
    busy(&mut g);
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    lrs[0] = (lrs[0] & !(0b11 << 62)) | 0b10 << 62;
    lrs[3] = (lrs[3] & !(0b11 << 62)) | 0b10 << 62;
    g.sync_from_list_registers(&lrs);
    let once = g.clone();
    g.sync_from_list_registers(&lrs);
    g.sync_from_list_registers(&lrs);
    assert_eq!(g, once);
    // And a fill right after is stable too.
    let mut again = lrs;
    g.fill_list_registers(&mut again);
    let mut third = again;
    g.fill_list_registers(&mut third);
    assert_eq!(again, third);
}

#[test]
fn the_hash_sees_every_change() {
    let base = linux_boot();
    let h = base.snapshot_hash();
    assert_eq!(h, linux_boot().snapshot_hash());
    let mut g = base.clone();
    g.set_level(VTIMER, true).unwrap();
    assert_ne!(g.snapshot_hash(), h);
    let mut g = base.clone();
    g.distributor_write(GICD_IPRIORITYR + 100, 1, 0x08).unwrap();
    assert_ne!(g.snapshot_hash(), h);
    let mut g = base.clone();
    wr(&mut g, GICR_WAKER, 0b10);
    assert_ne!(g.snapshot_hash(), h);
    let mut g = base;
    g.distributor_write(GICD_IROUTER + 200 * 8, 8, 1 << 32)
        .unwrap();
    assert_ne!(g.snapshot_hash(), h);
}

#[test]
fn fnv1a_known_answer() {
    use core::hash::Hasher;
    let mut h = crate::vgic::Fnv1a64::new();
    assert_eq!(h.finish(), 0xcbf2_9ce4_8422_2325);
    h.write(b"a");
    assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
}
