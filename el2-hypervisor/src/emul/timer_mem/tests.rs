//! The memory-mapped timer, register by register, the way Linux 6.1's
//! `arm_arch_timer.c` drives it, and as a hostile guest might.

use super::*;
use crate::emul::vtimer::{CTL_ENABLE, CTL_IMASK, CTL_ISTATUS};
use alloc::string::ToString;

const HZ: u32 = 62_500_000;

fn ctl(f: &mut TimerFrame) -> ControlFrame<'_> {
    ControlFrame {
        frame: f,
        frequency: HZ,
    }
}

fn at(f: &mut TimerFrame, now: u64) -> CounterFrame<'_> {
    CounterFrame {
        frame: f,
        frequency: HZ,
        now,
    }
}

fn r32(f: &mut TimerFrame, now: u64, off: u64) -> u64 {
    at(f, now).read(off, Width::Word).unwrap()
}

fn w32(f: &mut TimerFrame, now: u64, off: u64, v: u64) {
    assert_eq!(at(f, now).write(off, Width::Word, v), Ok(WriteEffect::None));
}

fn w64(f: &mut TimerFrame, now: u64, off: u64, v: u64) {
    assert_eq!(
        at(f, now).write(off, Width::Double, v),
        Ok(WriteEffect::None)
    );
}

#[test]
fn the_control_frame_says_one_virtual_capable_frame_and_keeps_cntacr() {
    let mut f = TimerFrame::new();
    let mut c = ctl(&mut f);
    assert_eq!(c.read(0x08, Width::Word), Ok(0b0011), "CNTTIDR: FI | FVI");
    assert_eq!(c.read(0x00, Width::Word), Ok(u64::from(HZ)), "CNTFRQ");
    assert_eq!(c.write(0x00, Width::Word, 5), Ok(WriteEffect::None));
    assert_eq!(
        c.read(0x00, Width::Word),
        Ok(u64::from(HZ)),
        "CNTFRQ is the firmware's"
    );
    assert_eq!(c.read(0x04, Width::Word), Ok(0), "CNTNSAR: RAZ");
    // Linux: "try enabling everything, and see what sticks".
    assert_eq!(
        c.write(0x40, Width::Word, 0xffff_ffff),
        Ok(WriteEffect::None)
    );
    assert_eq!(
        c.read(0x40, Width::Word),
        Ok(0x3f),
        "only the six bits stick"
    );
    assert_eq!(c.write(0x40, Width::Word, 0x12), Ok(WriteEffect::None));
    assert_eq!(c.read(0x40, Width::Word), Ok(0x12));
    // CNTVOFF0: zero, whole or by halves, and it stays zero.
    assert_eq!(c.write(0x80, Width::Double, 77), Ok(WriteEffect::None));
    assert_eq!(c.read(0x80, Width::Double), Ok(0));
    assert_eq!(c.read(0x84, Width::Word), Ok(0));
    assert_eq!(f.access, 0x12);
}

#[test]
fn the_counters_are_guest_time_whole_or_by_halves() {
    let mut f = TimerFrame::new();
    let now = 0x0123_4567_89ab_cdef;
    for base in [0x00, 0x08] {
        assert_eq!(at(&mut f, now).read(base, Width::Double), Ok(now));
        assert_eq!(r32(&mut f, now, base), 0x89ab_cdef);
        assert_eq!(r32(&mut f, now, base + 4), 0x0123_4567);
    }
    assert_eq!(r32(&mut f, now, 0x10), u64::from(HZ), "CNTFRQ");
    // Read-only: a write changes nothing, and is no fault.
    w64(&mut f, now, 0x08, 0);
    w32(&mut f, now, 0x10, 1);
    assert_eq!(r32(&mut f, now, 0x10), u64::from(HZ));
    assert_eq!(f, TimerFrame::new());
}

/// Linux's `arch_counter_get_cnt_mem`: high, low, high again, retried
/// while the two highs differ. Each read is its own exit, at its own
/// guest time.
fn linux_read(f: &mut TimerFrame, times: &mut impl Iterator<Item = u64>, lo_off: u64) -> u64 {
    loop {
        let hi = r32(f, times.next().unwrap(), lo_off + 4);
        let lo = r32(f, times.next().unwrap(), lo_off);
        let hi2 = r32(f, times.next().unwrap(), lo_off + 4);
        if hi == hi2 {
            return (hi << 32) | lo;
        }
    }
}

#[test]
fn a_high_low_high_read_across_a_carry_retries_and_is_consistent() {
    let mut f = TimerFrame::new();
    // The low word wraps between the first high read and the low read.
    let mut times = [
        0x1_ffff_fff0,
        0x2_0000_0004,
        0x2_0000_0008,
        0x2_0000_000c,
        0x2_0000_0010,
        0x2_0000_0014,
    ]
    .into_iter();
    let v = linux_read(&mut f, &mut times, 0x08);
    assert_eq!(v, 0x2_0000_0010, "the retry's low word with its high word");
    assert_eq!(times.next(), None, "one retry: six reads");
    // No carry: three reads.
    let mut times = [0x5_0000_0001, 0x5_0000_0002, 0x5_0000_0003].into_iter();
    assert_eq!(linux_read(&mut f, &mut times, 0x00), 0x5_0000_0002);
}

#[test]
fn the_virtual_timer_as_linux_programs_it() {
    let mut f = TimerFrame::new();
    // set_next_event_mem: CTL read; CVAL = now + delta (64-bit store);
    // CTL = ENABLE, IMASK clear.
    assert_eq!(r32(&mut f, 1_000, 0x3c), 0);
    w64(&mut f, 1_010, 0x30, 1_500);
    w32(&mut f, 1_020, 0x3c, CTL_ENABLE);
    assert_eq!(at(&mut f, 1_030).read(0x30, Width::Double), Ok(1_500));
    assert_eq!(r32(&mut f, 1_030, 0x34), 0, "CVAL's high word");
    assert_eq!(f.next_deadline(), Some(1_500));
    assert_eq!(r32(&mut f, 1_499, 0x3c), CTL_ENABLE);
    assert_eq!(
        f.lines(1_499),
        [(FRAME_PHYS_INTID, false), (FRAME_VIRT_INTID, false)]
    );
    // Due: ISTATUS, and the virtual timer's line.
    assert_eq!(r32(&mut f, 1_500, 0x3c), CTL_ENABLE | CTL_ISTATUS);
    assert_eq!(
        f.lines(1_500),
        [(FRAME_PHYS_INTID, false), (FRAME_VIRT_INTID, true)]
    );
    // The handler masks it: the line drops, ISTATUS stays.
    w32(&mut f, 1_600, 0x3c, CTL_ENABLE | CTL_IMASK | CTL_ISTATUS);
    assert_eq!(
        r32(&mut f, 1_600, 0x3c),
        CTL_ENABLE | CTL_IMASK | CTL_ISTATUS
    );
    assert!(!f.lines(1_600)[1].1);
    assert_eq!(f.next_deadline(), None);
    // TVAL: a signed 32-bit down-count from guest time.
    w32(&mut f, 2_000, 0x38, 300);
    assert_eq!(f.virt.read_cval(), 2_300);
    assert_eq!(r32(&mut f, 2_100, 0x38), 200);
    assert_eq!(f.phys, Timer::new(), "the physical timer is apart");
}

#[test]
fn the_physical_timer_and_cval_by_halves() {
    let mut f = TimerFrame::new();
    w32(&mut f, 0, 0x20, 0x89ab_cdef);
    w32(&mut f, 0, 0x24, 0x0123_4567);
    assert_eq!(f.phys.read_cval(), 0x0123_4567_89ab_cdef);
    w32(&mut f, 0, 0x24, 0);
    assert_eq!(f.phys.read_cval(), 0x89ab_cdef, "the low word kept");
    w32(&mut f, 0, 0x2c, CTL_ENABLE);
    assert_eq!(f.next_deadline(), Some(0x89ab_cdef));
    assert_eq!(r32(&mut f, 0x89ab_cdef, 0x2c), CTL_ENABLE | CTL_ISTATUS);
    assert_eq!(f.lines(0x89ab_cdef)[0], (FRAME_PHYS_INTID, true));
    assert_eq!(r32(&mut f, 0x89ab_cdee, 0x28), 1, "TVAL");
    assert_eq!(f.virt, Timer::new());
}

#[test]
fn cntacr_gates_the_frame() {
    let mut f = TimerFrame::new();
    w64(&mut f, 0, 0x30, 10);
    w32(&mut f, 0, 0x3c, CTL_ENABLE);
    w64(&mut f, 0, 0x20, 20);
    f.access = 0;
    // Nothing granted: every register reads zero and ignores writes.
    for off in [
        0x00, 0x04, 0x08, 0x0c, 0x10, 0x20, 0x28, 0x2c, 0x30, 0x38, 0x3c,
    ] {
        assert_eq!(r32(&mut f, 99, off), 0, "{off:#x}");
        w32(&mut f, 99, off, 0xffff_ffff);
    }
    assert_eq!((f.virt.read_cval(), f.phys.read_cval()), (10, 20));
    assert!(f.virt.enabled() && !f.phys.enabled());
    // Each bit opens its own registers only.
    for (bit, off) in [
        (CNTACR_RPCT, 0x00),
        (CNTACR_RVCT, 0x08),
        (CNTACR_RFRQ, 0x10),
        (CNTACR_RWPT, 0x20),
        (CNTACR_RWVT, 0x30),
    ] {
        f.access = bit;
        assert_ne!(r32(&mut f, 99, off), 0, "{bit:#x} opens {off:#x}");
        let others = CNTACR_ALL & !bit & !CNTACR_RVOFF;
        f.access = others;
        assert_eq!(r32(&mut f, 99, off), 0, "the others leave {off:#x} shut");
    }
}

#[test]
fn bad_widths_and_unknown_offsets_are_refused_by_name() {
    let mut f = TimerFrame::new();
    let bad = |offset, width| {
        Err(DeviceFault::Timer(TimerMemError::BadAccess {
            offset,
            width,
        }))
    };
    let none = |offset| Err(DeviceFault::Timer(TimerMemError::NoRegister { offset }));
    let mut c = at(&mut f, 5);
    assert_eq!(c.read(0x08, Width::Byte), bad(0x08, Width::Byte));
    assert_eq!(c.read(0x0c, Width::Half), bad(0x0c, Width::Half));
    assert_eq!(
        c.read(0x3c, Width::Double),
        bad(0x3c, Width::Double),
        "misaligned"
    );
    assert_eq!(
        c.read(0x10, Width::Double),
        bad(0x10, Width::Double),
        "two words"
    );
    assert_eq!(
        c.read(0x28, Width::Double),
        bad(0x28, Width::Double),
        "TVAL and CTL"
    );
    assert_eq!(c.read(0x0a, Width::Word), bad(0x0a, Width::Word));
    assert_eq!(
        c.write(0x3c, Width::Byte, 1).map(|_| 0),
        bad(0x3c, Width::Byte)
    );
    assert_eq!(c.read(0x40, Width::Word), none(0x40));
    assert_eq!(c.read(0xffc, Width::Word), none(0xffc), "no ID registers");
    assert_eq!(
        c.write(0x1c, Width::Word, 1).map(|_| ()),
        Ok(()),
        "CNTVOFF high: WI"
    );
    assert_eq!(c.read(0x48, Width::Double), none(0x48));
    let mut k = ctl(&mut f);
    assert_eq!(k.read(0x0c, Width::Word), none(0x0c));
    assert_eq!(k.read(0x44, Width::Word), none(0x44), "only frame 0");
    assert_eq!(k.read(0x40, Width::Double), bad(0x40, Width::Double));
    assert_eq!(
        k.write(0x40, Width::Half, 0).map(|_| 0),
        bad(0x40, Width::Half)
    );
    assert_eq!(
        TimerMemError::BadAccess {
            offset: 0x3c,
            width: Width::Byte
        }
        .to_string(),
        "1-byte access at offset 0x3c fits no timer register"
    );
    assert_eq!(
        DeviceFault::from(TimerMemError::NoRegister { offset: 0x40 }).to_string(),
        "memory-mapped timer: no timer register at offset 0x40"
    );
}

/// A hostile guest: every offset of both pages (and past them), every
/// width, both ways, with random values. Nothing panics; only the
/// writable registers change state; a refused access changes nothing.
#[test]
fn every_access_is_answered_and_only_writable_registers_change() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let writable_frame = [0x20, 0x24, 0x28, 0x2c, 0x30, 0x34, 0x38, 0x3c];
    let mut f = TimerFrame::new();
    for off in 0..0x1008u64 {
        for width in [Width::Byte, Width::Half, Width::Word, Width::Double] {
            for write in [false, true] {
                let before = f;
                let v = next();
                let now = next() >> 8;
                let (r_ctl, r_frame) = if write {
                    (
                        ctl(&mut f).write(off, width, v).map(|_| 0),
                        at(&mut f, now).write(off, width, v).map(|_| 0),
                    )
                } else {
                    (
                        ctl(&mut f).read(off, width),
                        at(&mut f, now).read(off, width),
                    )
                };
                let lane = off & !7;
                if r_frame.is_err() && r_ctl.is_err() {
                    assert_eq!(f, before, "{off:#x} {width:?}");
                }
                if write && f != before {
                    let frame_reg = writable_frame.contains(&off) || writable_frame.contains(&lane);
                    assert!(
                        frame_reg || off == 0x40,
                        "{off:#x} {width:?} changed the state"
                    );
                }
                if off >= FRAME_SIZE {
                    assert!(r_ctl.is_err() && r_frame.is_err(), "{off:#x}");
                }
            }
        }
    }
}
