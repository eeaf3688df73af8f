//! Exclusive windows: where an exit to EL2 would be visible to the guest.
//!
//! Every exception return clears the PE's exclusive monitor (Arm ARM
//! DDI 0487, "Exclusive access instructions and the monitors"; QEMU's
//! `exception_return` does the same), so an exit taken between a guest's
//! load-exclusive (LDXR, LDAXR, LDXP, ...) and its store-exclusive makes
//! that STXR fail and the guest's loop go round again. An exit that both
//! boards take at the same instruction (a trapped instruction, the exact
//! counter's overflow) is harmless; one that only one board takes there
//! is not: the skidded overflow of a real core, and the single steps that
//! start from it (`replica::step_to_count`). A Cortex-A72 has no LSE, so
//! every Linux atomic and lock is such a loop.
//!
//! So a board that exits inside a window rewinds the guest to the
//! window's load-exclusive and runs the window again whole, with no exit
//! inside it (hardware breakpoints on its ways out, not steps): exactly
//! what a failed STXR would have made the guest do, without the failure.
//! The instructions between a window's load and its store are re-executable
//! by construction (the loop retries from the load), and the count of the
//! rewound instructions is taken back, so the board counts as one that
//! never exited there. Here: which instruction words make a window, and
//! where its ways out are. Only straight-line windows of plain
//! data-processing instructions and forward conditional branches are
//! recognised (the shapes of Linux's `atomic_ll_sc.h` and `cmpxchg.h`,
//! and of glibc's fallbacks); anything else is left alone.

/// Instructions looked at on each side of the PC.
pub const REACH: usize = 8;

/// Instructions a window run whole may take before the board takes
/// control back anyway (the epoch counter armed to overflow there): a
/// recognised window is at most `2 * REACH` instructions, and a guest
/// that spins inside one (a branch back to its load that never falls
/// through) must not keep the board from ever ending its epoch. Stepping
/// then resumes where the overflow lands, and a step inside the window
/// rewinds it again: each round counts at least `BUDGET - REACH`
/// instructions on, so the epoch's end is reached. (Tried with a budget of
/// 1, below the rewind's reach: the count stood still and the board hung.)
pub const BUDGET: u64 = 4 * REACH as u64;

/// What one A64 instruction word is, for [`window`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// LDXR, LDAXR, LDXP, LDAXP (any size).
    LoadExclusive,
    /// STXR, STLXR, STXP, STLXP (any size).
    StoreExclusive,
    /// B.cond, CBZ/CBNZ, TBZ/TBNZ: the target.
    CondBranch { target: u64 },
    /// Data processing (immediate or register), a hint (NOP): nothing an
    /// exit or a re-run can change.
    Plain,
    /// Anything else: a load or store, a branch, a system instruction.
    Other,
}

/// B.cond: 0101 0100 imm19 0 cond (Arm ARM C4.1.65).
const B_COND_MASK: u64 = 0xff00_0010;
const B_COND: u64 = 0x5400_0000;
/// HINT #imm (NOP, YIELD, ...): 1101 0101 0000 0011 0010 CRm op2 11111.
const HINT_MASK: u64 = 0xffff_f01f;
const HINT: u64 = 0xd503_201f;

const fn sext(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

/// What `insn`, at `pc`, is.
pub const fn classify(insn: u32, pc: u64) -> Kind {
    let i = insn as u64;
    // Load/store exclusive: size 001000 o2 L o1 ..., o2 (bit 23) = 0
    // (o2 = 1 is the ordered LDAR/STLR and CAS families).
    if (i >> 24) & 0x3f == 0x08 && (i >> 23) & 1 == 0 {
        return if (i >> 22) & 1 == 1 {
            Kind::LoadExclusive
        } else {
            Kind::StoreExclusive
        };
    }
    let imm19 = sext((i >> 5) & 0x7_ffff, 19);
    if i & B_COND_MASK == B_COND
        // CBZ/CBNZ: sf 011 010 op imm19 Rt.
        || i & 0x7e00_0000 == 0x3400_0000
    {
        return Kind::CondBranch {
            target: pc.wrapping_add((imm19 * 4) as u64),
        };
    }
    // TBZ/TBNZ: b5 011 011 op b40 imm14 Rt.
    if i & 0x7e00_0000 == 0x3600_0000 {
        let imm14 = sext((i >> 5) & 0x3fff, 14);
        return Kind::CondBranch {
            target: pc.wrapping_add((imm14 * 4) as u64),
        };
    }
    // Data processing, immediate (op0 bits 28:26 = 100) or register
    // (bits 27:25 = x101); hints (HINT #n, NOP among them).
    if (i >> 26) & 0b111 == 0b100 || (i >> 25) & 0b111 == 0b101 || i & HINT_MASK == HINT {
        return Kind::Plain;
    }
    Kind::Other
}

/// The registers an instruction of a window reads and writes (31: SP or
/// XZR, taken as one), and whether it reads or writes NZCV; `None` for an
/// instruction whose registers are not decoded here (the window is then
/// left alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Regs {
    reads: [Option<u8>; 3],
    writes: [Option<u8>; 2],
    reads_flags: bool,
    writes_flags: bool,
}

const fn reg(i: u64, at: u32) -> Option<u8> {
    Some(((i >> at) & 0x1f) as u8)
}

/// [`Regs`] of `insn` (Arm ARM C4.1, the data-processing, branch and
/// load/store-exclusive encodings that [`classify`] lets into a window).
fn regs(insn: u32) -> Option<Regs> {
    let i = insn as u64;
    let (rd, rn, rm, ra) = (reg(i, 0), reg(i, 5), reg(i, 16), reg(i, 10));
    let s_bit = (i >> 29) & 1 == 1;
    let r = |reads: [Option<u8>; 3], writes: Option<u8>, reads_flags, writes_flags| Regs {
        reads,
        writes: [writes, None],
        reads_flags,
        writes_flags,
    };
    match classify(insn, 0) {
        Kind::LoadExclusive => {
            // A pair (o1, bit 21) also writes Rt2 (bits 14:10).
            let pair = (i >> 21) & 1 == 1;
            return Some(Regs {
                reads: [rn, None, None],
                writes: [rd, if pair { ra } else { None }],
                ..Regs::default()
            });
        }
        Kind::CondBranch { .. } => {
            // B.cond reads the flags; CBZ/CBNZ/TBZ/TBNZ read Rt.
            return Some(if i & B_COND_MASK == B_COND {
                r([None; 3], None, true, false)
            } else {
                r([rd, None, None], None, false, false)
            });
        }
        Kind::StoreExclusive | Kind::Other => return None,
        Kind::Plain => {}
    }
    if i & HINT_MASK == HINT {
        return Some(Regs::default());
    }
    if (i >> 26) & 0b111 == 0b100 {
        // Data processing, immediate: bits 25:23.
        return match (i >> 23) & 0b111 {
            0b000 | 0b001 => Some(r([None; 3], rd, false, false)), // ADR, ADRP
            0b010 | 0b011 => Some(r([rn, None, None], rd, false, s_bit)), // ADD/SUB
            0b100 => Some(r([rn, None, None], rd, false, (i >> 29) & 0b11 == 0b11)), // logical
            0b101 => Some(match (i >> 29) & 0b11 {
                0b11 => r([rd, None, None], rd, false, false), // MOVK keeps the rest
                _ => r([None; 3], rd, false, false),           // MOVN, MOVZ
            }),
            0b110 => Some(match (i >> 29) & 0b11 {
                0b01 => r([rd, rn, None], rd, false, false), // BFM keeps the rest
                _ => r([rn, None, None], rd, false, false),  // SBFM, UBFM
            }),
            _ => Some(r([rn, rm, None], rd, false, false)), // EXTR
        };
    }
    // Data processing, register: op1 (bit 28), op2 (bits 24:21).
    let op2 = (i >> 21) & 0b1111;
    if (i >> 28) & 1 == 0 {
        return Some(if op2 & 0b1000 == 0 {
            r([rn, rm, None], rd, false, (i >> 29) & 0b11 == 0b11) // logical
        } else {
            r([rn, rm, None], rd, false, s_bit) // add/sub, shifted or extended
        });
    }
    match op2 {
        0b0000 => Some(r([rn, rm, None], rd, true, s_bit)), // ADC, SBC
        0b0010 => Some(r([rn, rm, None], None, true, true)), // CCMN, CCMP
        0b0100 => Some(r([rn, rm, None], rd, true, false)), // CSEL and kin
        0b0110 => Some(r([rn, rm, None], rd, false, false)), // 1- and 2-source
        o if o & 0b1000 != 0 => Some(r([rn, rm, ra], rd, false, false)), // 3-source
        _ => None,
    }
}

/// Whether the instructions `words` (the load-exclusive first, up to the
/// PC) give the same registers when run a second time: none of them
/// reads a register, or the flags, that one of them writes before the
/// instruction wrote it itself in that run (a register they only consume
/// keeps its value; one they derive from the load is derived again).
/// Linux's loops (`add w0, w0, w3` after `ldxr w0`) are; a counter
/// decremented inside the window is not, and is left alone.
fn reexecutable(words: &[u32]) -> bool {
    let mut writes_flags = false;
    let mut written = 0u32;
    let mut decoded = [Regs::default(); REACH];
    for (d, &w) in decoded.iter_mut().zip(words) {
        let Some(r) = regs(w) else {
            return false;
        };
        *d = r;
        writes_flags |= r.writes_flags;
        for x in r.writes.into_iter().flatten() {
            written |= 1 << x;
        }
    }
    let mut fresh = 0u32;
    let mut fresh_flags = false;
    for r in &decoded[..words.len()] {
        for x in r.reads.into_iter().flatten() {
            if fresh & (1 << x) == 0 && written & (1 << x) != 0 {
                return false;
            }
        }
        if r.reads_flags && !fresh_flags && writes_flags {
            return false;
        }
        for x in r.writes.into_iter().flatten() {
            fresh |= 1 << x;
        }
        fresh_flags |= r.writes_flags;
    }
    true
}

/// A window the PC is inside: its load-exclusive, and where the guest
/// leaves it (the instruction after its store-exclusive, and the targets
/// of forward branches out of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub load: u64,
    pub exits: [Option<u64>; 3],
}

impl Window {
    /// Instructions between the load-exclusive and `pc` (which run
    /// again after a rewind).
    pub const fn rewound(&self, pc: u64) -> u64 {
        pc.wrapping_sub(self.load) / 4
    }
}

/// The window that the guest, about to run the instruction at `pc`, is
/// inside, given `fetch` for its instruction words (`None` where there is
/// none to read): the PC is after a load-exclusive with nothing but plain
/// instructions and conditional branches since, and a store-exclusive
/// follows within [`REACH`]. `None` otherwise, including at the load
/// itself (not run yet) and after the store.
pub fn window(pc: u64, mut fetch: impl FnMut(u64) -> Option<u32>) -> Option<Window> {
    // Backwards from the PC, the words kept (last first) for the check
    // that what runs again after a rewind gives what it gave.
    let mut back = [0u32; REACH];
    let mut load = None;
    for i in 1..=REACH {
        let at = pc.checked_sub(4 * i as u64)?;
        let word = fetch(at)?;
        back[REACH - i] = word;
        match classify(word, at) {
            Kind::LoadExclusive => {
                load = Some((at, i));
                break;
            }
            Kind::Plain | Kind::CondBranch { .. } => {}
            Kind::StoreExclusive | Kind::Other => return None,
        }
    }
    let (load, n_body) = load?;
    if !reexecutable(&back[REACH - n_body..]) {
        return None;
    }
    let mut exits = [None; 3];
    let mut n = 0;
    for j in 0..REACH as u64 {
        let at = pc.checked_add(4 * j)?;
        match classify(fetch(at)?, at) {
            Kind::StoreExclusive => {
                exits[n] = Some(at + 4);
                return Some(Window { load, exits });
            }
            Kind::CondBranch { target } => {
                // A branch back into the window (to the load: a retry)
                // stays inside; one out of it is a way out.
                if target < load || target > at {
                    if n + 1 >= exits.len() {
                        return None;
                    }
                    exits[n] = Some(target);
                    n += 1;
                }
            }
            Kind::Plain => {}
            Kind::LoadExclusive | Kind::Other => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux 6.1's `arch_spin_trylock`-style cmpxchg on a Cortex-A72
    /// (seen at a divergence with a simulated skid), at 0x1000:
    /// prfm; 1: ldaxr w1,[x5]; eor w4,w1,w0; cbnz w4,2f; stxr w4,w2,[x5];
    /// cbnz w4,1b; 2: b ...
    const CMPXCHG: [u32; 7] = [
        0xf980_00b1, // prfm pstl1strm, [x5]
        0x885f_fca1, // ldaxr w1, [x5]
        0x4a00_0024, // eor w4, w1, w0
        0x3500_0064, // cbnz w4, +12
        0x8804_7ca2, // stxr w4, w2, [x5]
        0x35ff_ff84, // cbnz w4, -16
        0x17ff_ffef, // b ...
    ];

    fn fetch(code: &[u32], base: u64) -> impl FnMut(u64) -> Option<u32> + '_ {
        move |at| {
            let i = at.checked_sub(base)? / 4;
            code.get(i as usize).copied()
        }
    }

    #[test]
    fn the_instructions_of_a_cmpxchg_loop() {
        assert_eq!(classify(CMPXCHG[1], 0x1004), Kind::LoadExclusive);
        assert_eq!(classify(CMPXCHG[4], 0x1010), Kind::StoreExclusive);
        assert_eq!(classify(CMPXCHG[2], 0x1008), Kind::Plain);
        assert_eq!(
            classify(CMPXCHG[3], 0x100c),
            Kind::CondBranch { target: 0x1018 }
        );
        assert_eq!(
            classify(CMPXCHG[5], 0x1014),
            Kind::CondBranch { target: 0x1004 }
        );
        assert_eq!(classify(CMPXCHG[0], 0x1000), Kind::Other);
        assert_eq!(classify(CMPXCHG[6], 0x1018), Kind::Other);
        // LDAR and STLR (o2 = 1) are not exclusives; a NOP is plain.
        assert_eq!(classify(0x88df_fc20, 0), Kind::Other);
        assert_eq!(classify(0x889f_fc20, 0), Kind::Other);
        assert_eq!(classify(0xd503_201f, 0), Kind::Plain);
        // TBNZ w0, #3, -8.
        assert_eq!(
            classify(0x371f_ffc0, 0x2000),
            Kind::CondBranch { target: 0x1ff8 }
        );
    }

    #[test]
    fn inside_a_window_the_load_and_the_ways_out_are_found() {
        let f = || fetch(&CMPXCHG, 0x1000);
        let want = Window {
            load: 0x1004,
            exits: [Some(0x1018), Some(0x1014), None],
        };
        // After the load, after the EOR: the branch out is ahead.
        for pc in [0x1008, 0x100c] {
            assert_eq!(window(pc, f()), Some(want), "{pc:#x}");
        }
        // After the CBNZ, not taken: only the store is ahead.
        let w = window(0x1010, f()).unwrap();
        assert_eq!(
            w,
            Window {
                load: 0x1004,
                exits: [Some(0x1014), None, None]
            }
        );
        assert_eq!(w.rewound(0x1010), 3);
    }

    #[test]
    fn outside_a_window_nothing_is_found() {
        let f = || fetch(&CMPXCHG, 0x1000);
        // At the load (not run yet), at the PRFM, after the store, at
        // the branch target out.
        for pc in [0x1000, 0x1004, 0x1014, 0x1018, 0x101c] {
            assert_eq!(window(pc, f()), None, "{pc:#x}");
        }
        // An unreadable word is no window.
        assert_eq!(window(0x1010, |_| None), None);
        // A plain load between the exclusives is not a recognised shape.
        let odd = [0x885f_fca1, 0xb940_0001, 0x8804_7ca2];
        assert_eq!(window(0x1008, fetch(&odd, 0x1000)), None);
    }

    #[test]
    fn only_a_body_that_runs_again_alike_is_rewound() {
        // ldxr w0,[x2]; add w0,w0,w3: derived from the load, again.
        assert!(reexecutable(&[0x885f_7c40, 0x0b03_0000]));
        // The cmpxchg: ldaxr w1,[x5]; eor w4,w1,w0; cbnz w4.
        assert!(reexecutable(&CMPXCHG[1..4]));
        // ldxr x0,[x3]; sub x2,x2,#1: a counter decremented in the window.
        let spin = [0xc85f_7c60, 0xd100_0442];
        assert!(!reexecutable(&spin));
        assert_eq!(
            window(0x1008, fetch(&[spin[0], spin[1], 0xc801_7c60], 0x1000)),
            None
        );
        // ldxr x0,[x0]: the load's own base overwritten.
        assert!(!reexecutable(&[0xc85f_7c00]));
        // subs x1,x0,#1; b.ne after the load: the flags are written first.
        assert!(reexecutable(&[0xc85f_7c40, 0xf100_0401, 0x5400_0041]));
        // b.ne before anything in the body writes the flags, then adds
        // that do: the flags were an input, changed by the first run.
        assert!(!reexecutable(&[0xc85f_7c40, 0x5400_0041, 0xf100_0401]));
    }

    #[test]
    fn an_atomic_add_loop_has_one_way_out() {
        // 1: ldxr w0,[x2]; add w0,w0,w3; stxr w1,w0,[x2]; cbnz w1,1b
        let code = [0x885f_7c40, 0x0b03_0000, 0x8801_7c40, 0x35ff_ffa1];
        let w = window(0x1008, fetch(&code, 0x1000)).unwrap();
        assert_eq!(
            w,
            Window {
                load: 0x1000,
                exits: [Some(0x100c), None, None]
            }
        );
    }
}
