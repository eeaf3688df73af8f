//! The maintenance interrupt: more interrupts pending than list
//! registers. When EOI and underflow maintenance are asked for, what a
//! taken maintenance interrupt quiets, and that every interrupt is
//! delivered by refills at maintenance exits alone, on GICv2 and GICv3.

use super::boot::linux_boot;
use super::gicv2::v2_linux_boot;
use super::*;
use crate::hw::Hw;
use crate::vgic::{ExitListRegisters, ListRegister, Maintenance, maintenance, quiet_maintenance};
use alloc::vec::Vec;

/// Four list registers and the underflow enable, as the hardware holds them.
#[derive(Default)]
struct Cpu {
    lrs: [u64; 4],
    underflow: bool,
}

impl Hw for Cpu {
    fn read_lr(&self, n: usize) -> u64 {
        self.lrs[n]
    }
    fn write_lr(&mut self, n: usize, value: u64) {
        self.lrs[n] = value;
    }
    fn set_underflow(&mut self, on: bool) {
        self.underflow = on;
    }
    fn counter(&self) -> u64 {
        unreachable!()
    }
    fn frequency(&self) -> u64 {
        unreachable!()
    }
    fn arm_timer(&mut self, _: Option<u64>) {
        unreachable!()
    }
    fn wait_for_interrupt(&mut self) {
        unreachable!()
    }
    fn read_ram(&self, _: crate::mem::TouchedSpan, _: &mut [u64]) {
        unreachable!()
    }
}

/// The EOI bit of each format (bit 41 of ICH_LR<n>_EL2, bit 19 of GICH_LRn).
fn eoi_bit(format: LrFormat) -> u64 {
    match format {
        LrFormat::V3 => 1 << 41,
        LrFormat::V2 => 1 << 19,
    }
}

/// What the virtual CPU interface raises: EOI maintenance (an invalid LR
/// with its EOI bit) or underflow (UIE and at most one valid LR).
fn asserted(cpu: &Cpu, format: LrFormat) -> bool {
    let eoi = cpu
        .lrs
        .iter()
        .any(|&lr| format.state(lr) == LrState::Invalid && lr & eoi_bit(format) != 0);
    let valid = cpu
        .lrs
        .iter()
        .filter(|&&lr| format.state(lr) != LrState::Invalid)
        .count();
    eoi || (cpu.underflow && valid <= 1)
}

/// The guest takes the most urgent pending LR (acknowledge, then EOI with
/// EOImode 0, which deactivates): the LR goes invalid, its other bits
/// (the EOI bit among them) stay. Returns its INTID.
fn guest_takes_one(cpu: &mut Cpu, format: LrFormat) -> Option<u32> {
    let (slot, lr) = cpu
        .lrs
        .iter()
        .enumerate()
        .filter(|(_, lr)| format.state(**lr) == LrState::Pending)
        .map(|(i, &lr)| (i, format.decode(lr)))
        .min_by_key(|(_, lr)| (lr.priority, lr.vintid))?;
    let state_mask = match format {
        LrFormat::V3 => 0b11 << 62,
        LrFormat::V2 => 0b11 << 28,
    };
    cpu.lrs[slot] &= !state_mask;
    Some(lr.vintid)
}

/// `n` SGIs pending at once, on a booted guest of `version`.
fn pend_sgis(version: GicVersion, n: u32) -> Vgic {
    let mut g = match version {
        GicVersion::V2 => v2_linux_boot(),
        GicVersion::V3 => {
            let mut g = linux_boot();
            wr(&mut g, GICR_ISENABLER0, 0xffff);
            g
        }
    };
    for sgi in 0..n {
        g.set_pending(sgi).unwrap();
    }
    g
}

#[test]
fn nothing_waiting_asks_for_nothing() {
    for version in [GicVersion::V2, GicVersion::V3] {
        let mut g = pend_sgis(version, 3);
        let mut cpu = Cpu::default();
        let mut lrs = ExitListRegisters::sync(&mut g, &cpu, 4);
        assert_eq!(lrs.fill(&mut g, &mut cpu), Some(Maintenance::NONE));
        assert!(!cpu.underflow);
        let format = g.lr_format();
        assert!(cpu.lrs.iter().all(|&lr| lr & eoi_bit(format) == 0));
        assert!(!asserted(&cpu, format));
    }
}

#[test]
fn an_overflow_asks_for_eoi_on_every_held_lr_and_underflow() {
    for version in [GicVersion::V2, GicVersion::V3] {
        let mut g = pend_sgis(version, 6);
        let mut cpu = Cpu::default();
        let format = g.lr_format();
        let mut lrs = ExitListRegisters::sync(&mut g, &cpu, 4);
        let m = lrs.fill(&mut g, &mut cpu);
        assert_eq!(
            m,
            Some(Maintenance {
                underflow: true,
                eoi: 0b1111
            })
        );
        assert!(cpu.underflow);
        for lr in cpu.lrs {
            assert_ne!(lr & eoi_bit(format), 0, "{version:?}: {lr:#x}");
            assert_eq!(format.state(lr), LrState::Pending);
        }
        // Nothing is asserted until the guest deactivates one.
        assert!(!asserted(&cpu, format));
        assert_eq!(guest_takes_one(&mut cpu, format), Some(0));
        assert!(asserted(&cpu, format), "{version:?}: EOI maintenance");
    }
}

#[test]
fn quieting_lowers_the_level_and_changes_nothing_the_model_sees() {
    for version in [GicVersion::V2, GicVersion::V3] {
        let mut g = pend_sgis(version, 6);
        let mut cpu = Cpu::default();
        let format = g.lr_format();
        ExitListRegisters::sync(&mut g, &cpu, 4).fill(&mut g, &mut cpu);
        guest_takes_one(&mut cpu, format);
        let before = cpu.lrs;
        let mut twin = g.clone();
        twin.sync_from_list_registers(&before);

        quiet_maintenance(&mut cpu, format, 4);
        assert!(!asserted(&cpu, format));
        assert!(!cpu.underflow);
        // Only the freed LR was zeroed; the valid ones are as they were.
        assert_eq!(cpu.lrs[0], 0);
        assert_eq!(cpu.lrs[1..], before[1..]);
        g.sync_from_list_registers(&cpu.lrs);
        assert_eq!(g, twin, "{version:?}: the sync sees the same thing");
    }
}

#[test]
fn refills_at_maintenance_exits_alone_deliver_every_interrupt() {
    for version in [GicVersion::V2, GicVersion::V3] {
        for lr_count in [1usize, 2, 4] {
            let mut g = pend_sgis(version, 16);
            let mut cpu = Cpu::default();
            let format = g.lr_format();
            // The one synchronous exit: the first fill.
            ExitListRegisters::sync(&mut g, &cpu, lr_count).fill(&mut g, &mut cpu);
            let mut taken = Vec::new();
            for _ in 0..64 {
                // The guest runs: it takes what its LRs hold, one at a time,
                // until the maintenance interrupt is asserted.
                while !asserted(&cpu, format) {
                    match guest_takes_one(&mut cpu, format) {
                        Some(i) => taken.push(i),
                        None => break,
                    }
                }
                if !asserted(&cpu, format) {
                    break;
                }
                // The maintenance exit: quiet, sync, refill.
                quiet_maintenance(&mut cpu, format, lr_count);
                ExitListRegisters::sync(&mut g, &cpu, lr_count).fill(&mut g, &mut cpu);
            }
            assert_eq!(
                taken,
                (0..16).collect::<Vec<_>>(),
                "{version:?} with {lr_count} LRs: all delivered, in order"
            );
            assert!(!g.has_pending_deliverable());
            assert!(!cpu.underflow);
        }
    }
}

#[test]
fn one_list_register_gets_eoi_but_never_underflow() {
    // With one LR, underflow would hold the interrupt asserted for ever.
    let m = Maintenance::after_fill(LrFormat::V2, &[27 | 0b01 << 28], 3);
    assert_eq!(
        m,
        Maintenance {
            underflow: false,
            eoi: 1
        }
    );
}

#[test]
fn hardware_and_free_lrs_are_not_marked() {
    let hw = LrFormat::V3.encode(&ListRegister {
        vintid: 27,
        pintid: Some(27),
        priority: 0xa0,
        group1: true,
        state: LrState::Pending,
    });
    assert_eq!(LrFormat::V3.with_eoi(hw), hw, "HW=1: bit 41 is pINTID");
    let v2_hw = 1u64 << 31 | 27 << 10 | 27 | 0b01 << 28;
    assert_eq!(LrFormat::V2.with_eoi(v2_hw), v2_hw);
    let m = Maintenance::after_fill(LrFormat::V3, &[hw, 0, 0, 0], 2);
    assert_eq!(m.eoi, 0, "no virtual interrupt held");
    assert!(m.underflow);
}

#[test]
fn quiet_zeroes_only_invalid_non_zero_lrs() {
    let f = LrFormat::V2;
    let lrs = [
        0,
        5 | 1 << 19,              // invalid, EOI: zero it
        6 | 1 << 19 | 0b01 << 28, // pending: keep
        7 | 1 << 19 | 0b10 << 28, // active: keep
    ];
    assert_eq!(maintenance::quiet(f, &lrs), 0b0010);
}

#[test]
fn the_request_is_a_function_of_the_model() {
    // Two boards, the same inputs: the same LRs and the same request.
    for version in [GicVersion::V2, GicVersion::V3] {
        let (mut a, mut b) = (pend_sgis(version, 9), pend_sgis(version, 9));
        let (mut ca, mut cb) = (Cpu::default(), Cpu::default());
        let ma = ExitListRegisters::sync(&mut a, &ca, 4).fill(&mut a, &mut ca);
        let mb = ExitListRegisters::sync(&mut b, &cb, 4).fill(&mut b, &mut cb);
        assert_eq!((ma, ca.lrs, ca.underflow), (mb, cb.lrs, cb.underflow));
        assert_eq!(a.snapshot_hash(), b.snapshot_hash());
    }
}
