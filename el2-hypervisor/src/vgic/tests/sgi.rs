//! SGIs the guest raises through a trapped ICC_SGI1R_EL1 (Linux's
//! irq_work and IPIs to itself), ICC_ASGI1R_EL1 or ICC_SGI0R_EL1, the way
//! the runtime hands them over: the register's group from
//! [`sgi_register`], then [`Vgic::generate_sgi`].

use super::boot::linux_boot;
use super::*;
use crate::emul::sysreg::{ICC_ASGI1R_EL1, ICC_SGI0R_EL1, ICC_SGI1R_EL1, SysReg, sgi_register};

const GICR_IGROUPR0: u64 = SGI_BASE + 0x0080;
const GICR_ICENABLER0: u64 = SGI_BASE + 0x0180;
const GICR_ISPENDR0: u64 = SGI_BASE + 0x0200;

/// Linux's IPI_IRQ_WORK.
const IRQ_WORK: u32 = 5;

/// A trapped MSR of `value` to `reg`, as the runtime handles it.
fn msr(g: &mut Vgic, reg: SysReg, value: u64) {
    let group = sgi_register(reg).expect("an SGI register");
    g.generate_sgi(value, group.is_group1());
}

/// ICC_SGI1R_EL1 fields (IHI 0069H §12.2): TargetList `[15:0]`, Aff1
/// `[23:16]`, INTID `[27:24]`, Aff2 `[39:32]`, IRM `[40]`, RS `[47:44]`,
/// Aff3 `[55:48]`.
fn sgir(intid: u32, aff3: u64, aff2: u64, aff1: u64, rs: u64, targets: u64) -> u64 {
    aff3 << 48 | rs << 44 | aff2 << 32 | u64::from(intid) << 24 | aff1 << 16 | targets
}

/// What Linux's gic_send_sgi writes to interrupt itself at affinity 0.
fn to_self(intid: u32) -> u64 {
    sgir(intid, 0, 0, 0, 0, 1)
}

/// Linux's boot and its SGI setup (gic_cpu_config: Group 1, priority
/// 0xa0; the IPIs enabled), with IRQ_WORK at another priority to see it
/// carried into the LR. Filled once: nothing to inject, nothing to fill.
fn booted() -> Vgic {
    let mut g = linux_boot();
    g.redistributor_write(GICR_IPRIORITYR0 + u64::from(IRQ_WORK), 1, 0x80)
        .unwrap();
    wr(&mut g, GICR_ISENABLER0, 0xffff);
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs, [0; 4]);
    assert!(!g.needs_fill());
    g
}

fn pending(g: &Vgic, intid: u32) -> bool {
    rr(g, GICR_ISPENDR0) & 1 << intid != 0
}

#[test]
fn self_sgi_reaches_an_lr_with_its_intid_group_and_priority() {
    let mut g = booted();
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK));
    assert!(pending(&g, IRQ_WORK));
    assert!(g.needs_fill() && g.has_pending_deliverable());
    let mut lrs = [0u64; 4];
    assert_eq!(g.fill_list_registers(&mut lrs), 0);
    // vINTID 5, priority 0x80, Group 1, no HW, pending.
    assert_eq!(lrs[0], 5 | 0x80 << 48 | 1 << 60 | 0b01 << 62);
    let lr = LrFormat::V3.decode(lrs[0]);
    assert_eq!(
        (lr.vintid, lr.pintid, lr.priority, lr.group1, lr.state),
        (IRQ_WORK, None, 0x80, true, LrState::Pending)
    );
    assert_eq!(&lrs[1..], &[0, 0, 0]);
}

#[test]
fn irm_means_everyone_else_and_there_is_no_one_else() {
    let mut g = booted();
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK) | 1 << 40);
    msr(&mut g, ICC_SGI1R_EL1, 1 << 40 | u64::from(IRQ_WORK) << 24);
    assert!(!pending(&g, IRQ_WORK));
    assert!(!g.needs_fill());
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    assert_eq!(lrs, [0; 4]);
}

/// At a non-zero affinity, so that a field read from the wrong bits would
/// be seen: Aff3.Aff2.Aff1.Aff0 = 1.2.3.5.
#[test]
fn only_our_affinity_and_target_list_bit_name_us() {
    let mut g = Vgic::new(VgicConfig {
        version: GicVersion::V3,
        affinity: 0x0102_0305,
    });
    wr(&mut g, GICR_ISENABLER0, 0xffff);
    wd(&mut g, GICD_CTLR, 0b11);
    let others = [
        (
            "TargetList without our bit",
            sgir(1, 1, 2, 3, 0, !(1 << 5) & 0xffff),
        ),
        ("another Aff1", sgir(2, 1, 2, 4, 0, 1 << 5)),
        ("another Aff2", sgir(3, 1, 3, 3, 0, 1 << 5)),
        ("another Aff3", sgir(4, 0, 2, 3, 0, 1 << 5)),
        ("another RS (Aff0 21)", sgir(6, 1, 2, 3, 1, 1 << 5)),
        ("our Aff0 as Aff1", sgir(7, 1, 2, 5, 0, 1 << 3)),
    ];
    for (what, value) in others {
        msr(&mut g, ICC_SGI1R_EL1, value);
        assert_eq!(rr(&g, GICR_ISPENDR0), 0, "{what}");
    }
    msr(&mut g, ICC_SGI1R_EL1, sgir(9, 1, 2, 3, 0, 1 << 5 | 1 << 4));
    assert_eq!(rr(&g, GICR_ISPENDR0), 1 << 9, "us among others");
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (9, LrState::Pending));
    assert_eq!(lrs[1], 0);
}

#[test]
fn an_sgi_of_the_other_group_is_not_generated() {
    let mut g = booted();
    // SGI 5 in Group 0; SGI 6 stays in Group 1.
    wr(&mut g, GICR_IGROUPR0, 0xffff_ffff & !(1 << IRQ_WORK));
    g.fill_list_registers(&mut [0u64; 4]);
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK));
    assert!(!pending(&g, IRQ_WORK), "Group 0 SGI through ICC_SGI1R_EL1");
    msr(&mut g, ICC_SGI0R_EL1, to_self(6));
    msr(&mut g, ICC_ASGI1R_EL1, to_self(6));
    assert!(!pending(&g, 6), "Group 1 SGI through a Group 0 register");
    assert!(!g.needs_fill());
    // Each register does generate its own group.
    msr(&mut g, ICC_SGI0R_EL1, to_self(IRQ_WORK));
    assert!(pending(&g, IRQ_WORK));
    wr(&mut g, SGI_BASE + 0x0280, 1 << IRQ_WORK); // GICR_ICPENDR0
    msr(&mut g, ICC_ASGI1R_EL1, to_self(IRQ_WORK));
    assert!(
        pending(&g, IRQ_WORK),
        "ASGI1R: Secure Group 1 is Group 0 with DS=1"
    );
    msr(&mut g, ICC_SGI1R_EL1, to_self(6));
    assert!(pending(&g, 6));
    let mut lrs = [0u64; 4];
    g.fill_list_registers(&mut lrs);
    let groups: Vec<(u32, bool)> = lrs[..2]
        .iter()
        .map(|&raw| LrFormat::V3.decode(raw))
        .map(|lr| (lr.vintid, lr.group1))
        .collect();
    // IRQ_WORK (priority 0x80) before SGI 6 (0xa0).
    assert_eq!(groups, [(IRQ_WORK, false), (6, true)]);
}

#[test]
fn a_disabled_sgi_is_pending_but_waits_for_its_enable() {
    let mut g = booted();
    wr(&mut g, GICR_ICENABLER0, 1 << IRQ_WORK);
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK));
    assert!(pending(&g, IRQ_WORK), "pended although disabled");
    assert!(!g.has_pending_deliverable());
    let mut lrs = [0u64; 4];
    assert_eq!(g.fill_list_registers(&mut lrs), 0);
    assert_eq!(lrs, [0; 4]);
    assert!(pending(&g, IRQ_WORK), "kept for later");
    wr(&mut g, GICR_ISENABLER0, 1 << IRQ_WORK);
    assert!(g.needs_fill());
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (IRQ_WORK, LrState::Pending));
}

/// irq_work raised, handled, raised again: the second SGI is delivered
/// after the guest EOI'd the first; one raised while the first is being
/// handled becomes pending and active in the same LR.
#[test]
fn a_second_sgi_is_delivered_after_the_eoi_and_during_the_handler() {
    let mut g = booted();
    let mut lrs = [0u64; 4];
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK));
    g.fill_list_registers(&mut lrs);
    lrs[0] = (lrs[0] & !(0b11 << 62)) | 0b10 << 62; // ICC_IAR1_EL1
    lrs[0] &= !(0b10 << 62); // ICC_EOIR1_EL1: invalid
    g.sync_from_list_registers(&lrs);
    assert_eq!(g.list_register_owner(0), None);
    // Nothing pending, but the sync saw the guest change LR0: a fill is
    // due (it writes the register empty).
    assert!(!pending(&g, IRQ_WORK) && g.needs_fill());
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK));
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (IRQ_WORK, LrState::Pending));
    // Acknowledged, and raised again from its handler.
    lrs[0] = (lrs[0] & !(0b11 << 62)) | 0b10 << 62;
    g.sync_from_list_registers(&lrs);
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK));
    g.fill_list_registers(&mut lrs);
    assert_eq!(lr_view(&lrs)[0], (IRQ_WORK, LrState::PendingActive));
    assert_eq!(&lrs[1..], &[0, 0, 0]);
}

#[test]
fn a_gicv2_guest_has_no_sgi_system_registers() {
    let mut g = Vgic::new(VgicConfig {
        version: GicVersion::V2,
        affinity: 0,
    });
    wd(&mut g, GICD_ISENABLER, 0xffff);
    g.fill_list_registers(&mut [0u64; 4]);
    msr(&mut g, ICC_SGI0R_EL1, to_self(IRQ_WORK));
    msr(&mut g, ICC_SGI1R_EL1, to_self(IRQ_WORK));
    assert!(!g.irq(IRQ_WORK).unwrap().pending());
    assert!(!g.needs_fill());
}
