//! A deterministic random hammering of the whole interface: no panic, the
//! errors are exactly the ones the access deserves, the LR bookkeeping
//! stays consistent, and a twin that syncs at extra (asynchronous) exits
//! ends in the same state. One twin fills through the exit protocol
//! (`ExitListRegisters`), which skips a fill that would change nothing;
//! its debug check runs a real fill at every skip and compares.

use super::exit_lrs::FakeCpuInterface;
use super::*;
use crate::vgic::ExitListRegisters;
use crate::vgic::{GICD_V2_SIZE, GICD_V3_SIZE, GICR_SIZE, MAX_LIST_REGISTERS, NR_IRQS, VgicError};

/// xorshift64*: small, fixed, good enough to hammer with.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WIDTHS: [u8; 8] = [1, 2, 4, 8, 4, 4, 0, 3];

/// Offsets near the registers, now and then anywhere.
fn offset(rng: &mut Rng, version: GicVersion, size: u64) -> u64 {
    const V3: [u64; 12] = [
        0, 0x80, 0x100, 0x200, 0x300, 0x400, 0xc00, 0x6000, 0xffe0, 0x1_0000, 0x1_0400, 0x1_0c00,
    ];
    const V2: [u64; 12] = [
        0, 0x80, 0x100, 0x180, 0x200, 0x300, 0x400, 0x800, 0x820, 0xc00, 0xf00, 0xfe0,
    ];
    let bases = if version == GicVersion::V3 { &V3 } else { &V2 };
    match rng.below(10) {
        0 => rng.next(),
        1 => size - rng.below(16),
        _ => bases[rng.below(bases.len() as u64) as usize] + rng.below(0x120),
    }
}

/// The error an access must get whatever register it hits, or `None`
/// when it may succeed (or be refused by the register for its width).
fn frame_error(offset: u64, width: u8, size: u64) -> Option<VgicError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        Some(VgicError::BadWidth { width })
    } else if offset & (u64::from(width) - 1) != 0 {
        Some(VgicError::Misaligned { offset, width })
    } else if offset >= size || size - offset < u64::from(width) {
        Some(VgicError::OutOfRange { offset, width })
    } else {
        None
    }
}

fn check_result<T>(r: Result<T, VgicError>, offset: u64, width: u8, size: u64) {
    match (frame_error(offset, width, size), r) {
        (Some(want), Err(got)) => assert_eq!(got, want),
        (None, Ok(_) | Err(VgicError::UnsupportedWidth { .. })) => {}
        (want, got) => panic!(
            "{width}-byte access at {offset:#x}: want {want:?}, got {:?}",
            got.err()
        ),
    }
}

/// Ownership is a bijection between occupied LRs and the interrupts that
/// name them; what the LRs hold agrees with it.
/// Right after a fill a free LR is zero; after a sync it may still hold
/// the vINTID of an entry the guest EOI'd (state invalid).
fn check_lrs(g: &Vgic, lrs: &[u64], after_fill: bool) {
    for (slot, owner) in g.lr_owner.iter().enumerate() {
        if let Some(intid) = owner {
            assert_eq!(g.irqs[usize::from(*intid)].lr, Some(slot as u8));
        }
    }
    for (intid, irq) in g.irqs.iter().enumerate() {
        if let Some(slot) = irq.lr {
            assert_eq!(g.lr_owner[usize::from(slot)], Some(intid as u16));
        }
    }
    let format = g.lr_format();
    for (slot, &raw) in lrs.iter().enumerate() {
        match g.list_register_owner(slot) {
            None if after_fill => assert_eq!(raw, 0),
            None => assert_eq!(format.state(raw), LrState::Invalid),
            Some(intid) => {
                let lr = format.decode(raw);
                assert_eq!(lr.vintid, intid);
                assert_ne!(lr.state, LrState::Invalid);
                if lr.state.pending() {
                    assert!(
                        g.forwardable(intid as usize),
                        "INTID {intid} pending in an LR but not forwardable"
                    );
                }
            }
        }
    }
}

/// What the guest's CPU interface may do to an LR: acknowledge, EOI.
fn guest_step(rng: &mut Rng, format: LrFormat, lrs: &mut [u64]) {
    let shift = match format {
        LrFormat::V3 => 62,
        LrFormat::V2 => 28,
    };
    for lr in lrs.iter_mut() {
        let state = (*lr >> shift) & 0b11;
        let next = match (state, rng.below(3)) {
            (0b01, 0) => 0b10,
            (0b10, 0) => 0b00,
            (0b11, 0) => 0b01,
            _ => state,
        };
        *lr = (*lr & !(0b11 << shift)) | next << shift;
    }
}

fn hammer(version: GicVersion, seed: u64, ops: usize) {
    let config = VgicConfig {
        version,
        affinity: 0,
    };
    let (mut a, mut b) = (Vgic::new(config), Vgic::new(config));
    // Both groups enabled, as after boot; random writes may change it.
    wd(&mut a, GICD_CTLR, 0b11);
    wd(&mut b, GICD_CTLR, 0b11);
    let (mut la, mut lb) = ([0u64; 4], [0u64; 4]);
    let mut rng = Rng(seed);
    let gicd_size = if version == GicVersion::V3 {
        GICD_V3_SIZE
    } else {
        GICD_V2_SIZE
    };
    let (mut injected, mut refused, mut skips) = (0usize, 0usize, 0usize);
    let mut hw = FakeCpuInterface::default();
    for op in 0..ops {
        let width = WIDTHS[rng.below(8) as usize];
        let value = if rng.below(2) == 0 {
            rng.next()
        } else {
            u64::MAX
        };
        match rng.below(12) {
            0..=2 => {
                let off = offset(&mut rng, version, gicd_size);
                let r = a.distributor_write(off, width, value);
                refused += usize::from(r.is_err());
                check_result(r, off, width, gicd_size);
                let _ = b.distributor_write(off, width, value);
            }
            3..=4 => {
                let off = offset(&mut rng, version, gicd_size);
                let r = a.distributor_read(off, width);
                assert_eq!(r, b.distributor_read(off, width));
                check_result(r, off, width, gicd_size);
            }
            5 if version == GicVersion::V3 => {
                let off = offset(&mut rng, version, GICR_SIZE);
                check_result(
                    a.redistributor_write(off, width, value),
                    off,
                    width,
                    GICR_SIZE,
                );
                let _ = b.redistributor_write(off, width, value);
                check_result(a.redistributor_read(off, width), off, width, GICR_SIZE);
            }
            6 => {
                let intid = rng.below(NR_IRQS as u64 + 40) as u32;
                let high = rng.below(2) == 0;
                let edge = rng.below(2) == 0;
                let ra = if edge {
                    a.set_pending(intid)
                } else {
                    a.set_level(intid, high)
                };
                let rb = if edge {
                    b.set_pending(intid)
                } else {
                    b.set_level(intid, high)
                };
                assert_eq!(ra.is_ok(), (intid as usize) < NR_IRQS);
                assert_eq!(ra, rb);
            }
            7 => {
                let sgi = rng.next() & !(0xff << 32 | 0xff << 48 | 0xf << 44 | 0xff << 16);
                let group1 = rng.below(2) == 0;
                a.generate_sgi(sgi, group1);
                b.generate_sgi(sgi, group1);
            }
            _ => {
                // A guest run: fill at the synchronous exit, the guest
                // works on its LRs, b also exits asynchronously midway.
                hw.lrs = la;
                let mut exit = ExitListRegisters::sync(&mut a, &hw, 4);
                let skipped = !a.needs_fill();
                exit.fill(&mut a, &mut hw);
                skips += usize::from(skipped);
                la = hw.lrs;
                b.fill_list_registers(&mut lb);
                assert_eq!(la, lb);
                check_lrs(&a, &la, true);
                injected += la.iter().filter(|&&v| v != 0).count();
                let format = a.lr_format();
                guest_step(&mut rng, format, &mut la);
                lb = la;
                b.sync_from_list_registers(&lb);
                guest_step(&mut rng, format, &mut la);
                lb = la;
                a.sync_from_list_registers(&la);
                b.sync_from_list_registers(&lb);
                check_lrs(&a, &la, false);
            }
        }
        assert_eq!(a, b);
        if op % 64 == 0 {
            assert_eq!(a.snapshot_hash(), b.snapshot_hash());
        }
        assert!(a.lr_owner.iter().flatten().count() <= MAX_LIST_REGISTERS);
    }
    // Not vacuous: interrupts flowed, and some accesses were refused.
    assert!(
        injected > ops / 20,
        "only {injected} LR entries in {ops} operations"
    );
    assert!(refused > ops / 100, "only {refused} refused writes");
    assert!(skips > ops / 100, "only {skips} fills skipped");
}

#[test]
fn hammer_v3_100k() {
    hammer(GicVersion::V3, 0x7a6d_656e_2d76_6763, 100_000);
}

#[test]
fn hammer_v2_30k() {
    hammer(GicVersion::V2, 0x0123_4567_89ab_cdef, 30_000);
}
