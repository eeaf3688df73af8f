//! Landing an epoch on its exact instruction count when the counter's
//! overflow interrupt comes late (skid), the way rr does: the overflow is
//! programmed [`STEP_MARGIN`] instructions early, and from wherever it
//! lands the guest is single-stepped (MDSCR_EL1.SS with MDCR_EL2.TDE, a
//! software-step exception to EL2 after each instruction, EC 0x32) until
//! the count is the epoch's end.
//!
//! The decisions are here; the register writes are the arch layer's
//! (`arch/aarch64/pmu.rs`). Everything decided is a function of the
//! instruction count and the epoch's end. A step is an exception to EL2
//! and its ERET clears the exclusive monitor (design card, section 8);
//! a step inside a guest's LDXR/STXR window is rewound so that the window
//! runs whole (`replica::exclusive`, below). The stepping is in the
//! pairing digest all the same: a board that steps and one that does not
//! are not known to see the same guest.
//!
//! What a step does to the count. Only a step exception, or the start of
//! stepping, lets the next instruction run ([`spsr_on_return`]); every
//! other exit returns in the step state the hardware saved or the
//! emulation left:
//! - an instruction that runs: +1;
//! - an instruction that traps to EL2 and is emulated (MMIO, a system
//!   register, WFE): the emulation completes it and clears SPSR_EL2.SS,
//!   as executing it would, and the step exception follows the return at
//!   once. A real core does not retire the trapped instruction (+0);
//!   QEMU under icount counts it (+1);
//! - an instruction that takes an exception to EL1 (SVC, an injected or
//!   a guest fault, a virtual interrupt taken before the instruction):
//!   the step ends at the vector, before the handler's first instruction.
//!   The SS bit the exception saved in SPSR_EL1 is cleared there
//!   ([`guest_spsr_after_step`]);
//! - a WFI: traps (HCR_EL2.TWI) and ends the epoch there, as without
//!   steps: the count is below the end, and the next epoch starts with
//!   stepping off.
//!
//! Steps that count two (under QEMU, a step exception taken with no
//! instruction stepped, ISS.ISV = 0: at a vector, or after an emulated
//! instruction's return, which QEMU's icount counts as one) are taken
//! back ([`stepped_nothing`]), so a stepped board counts as one that runs
//! the same instructions freely; a real core's INST_RETIRED does not count
//! them. The first step at or past the end is the end ([`landed`]), the
//! same instruction on both boards; a step that counts more than one is
//! reported ([`StepTally`]). A CI run once stopped a board with "the count
//! went 1 instructions past the epoch's end" (status 2), at an epoch's
//! last step, before these. What must never happen is a step that runs a
//! different number of instructions on two boards: setting SS on the
//! return from an interrupt taken between a stepped instruction and its
//! step exception would (the interrupts differ between boards).
//!
//! Where the stepping starts differs between two real boards (each
//! overflow skids its own way; `tandem.step-skid` simulates that on QEMU
//! with [`simulated_skid`]). The steps must then be invisible to the
//! guest, and apart from the exclusive monitor they are: every ERET
//! clears it, so a step, or the skidded landing itself, between a guest's
//! LDXR and its STXR fails the STXR on one board only (replayed with a
//! different skid, the default guest diverged at epoch 2 on `-cpu max`,
//! in early boot's LDXR/STXR loops, and at epoch 15 on a Cortex-A72,
//! whose Linux has no LSE atomics). So an exit that lands inside an
//! exclusive window rewinds the guest to the window's load-exclusive and
//! runs the window again whole under breakpoints (`replica::exclusive`);
//! with that, record/replay with different skids matches every epoch.
//!
//! An overflow that lands past the end (more skid than the margin) is
//! [`Landed::Overshot`]: the board cannot stop at the exact count, and
//! says so rather than end an epoch its peer would end elsewhere.
//!
//! Interrupts stay unmasked while stepping: the guest's virtual ones are
//! functions of the list registers, which change only where both boards
//! agree; physical ones are taken at EL2 (HCR_EL2.IMO) whatever the
//! guest's PSTATE.I, and return to the same step (SPSR_EL2.SS is set at
//! every return while stepping). Masking the guest's would change what
//! it sees.

/// The guest's SPSR_EL1 to write back when a step lands at one of its
/// exception vectors (`elr` is where the step stopped, `vbar` its
/// VBAR_EL1), or `None` to leave it. An asynchronous exception the guest
/// takes before the stepped instruction runs (a virtual interrupt) saves
/// PSTATE.SS = 1 in SPSR_EL1.SS (Arm ARM D2.12.5, "Behavior in the
/// active-not-pending state"); the guest never steps itself (its debug
/// registers trap), so without our stepping that bit would be 0. Left
/// set, it is visible (Linux saves SPSR_EL1 in `pt_regs`), and the
/// handler's ERET would return to the active-not-pending state, so that
/// the step holding it covers the ERET and the interrupted instruction.
pub const fn guest_spsr_after_step(elr: u64, vbar: u64, spsr_el1: u64) -> Option<u64> {
    /// The vector table: 16 entries of 0x80 bytes (VBAR_EL1, D1.10.2).
    const VECTORS: u64 = 0x800;
    const ENTRY: u64 = 0x80;
    const SS: u64 = crate::emul::exception::SPSR_SS;
    let offset = elr.wrapping_sub(vbar);
    if offset < VECTORS && offset.is_multiple_of(ENTRY) && spsr_el1 & SS != 0 {
        Some(spsr_el1 & !SS)
    } else {
        None
    }
}

/// What kind of exit the guest returns from, for [`spsr_on_return`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A software-step exception (EC 0x32): the stepped instruction ran.
    Step,
    /// Anything else: a trapped instruction (emulated, its SPSR_EL2.SS
    /// cleared as completing it does; or retried), an injected exception,
    /// a physical interrupt.
    Other,
}

/// SPSR_EL2 for the return to the guest from `exit`, with the step state
/// right (`stepping`: whether the guest is stepped from here; `was`:
/// whether it was stepped when the exit was taken). SPSR_EL2.SS = 1 makes
/// the ERET enter the active-not-pending state, so that one instruction
/// runs before the next step exception; SS = 0, the active-pending state,
/// takes the step exception at once (Arm ARM D2.12, "Software Step
/// exceptions"). SS is set after a step exception and where stepping
/// starts. Every other exit of a stepped guest keeps the state as the
/// hardware saved it or the emulation left it, because setting it there
/// would let one step cover two counted instructions:
/// - an emulated instruction completed the step (SS cleared) but may
///   itself count (QEMU's icount counts an instruction that traps);
/// - an interrupt taken between the stepped instruction and its step
///   exception (SS = 0 saved: the maintenance interrupt a guest's EOI
///   raises is one);
/// - an exception injected into the guest enters its vector with SS = 0,
///   as a real one does, and the step exception comes before the
///   handler's first instruction.
///
/// An interrupt or a retried instruction taken before the stepped
/// instruction ran saved SS = 1, which runs it.
pub const fn spsr_on_return(spsr: u64, exit: Exit, was: bool, stepping: bool) -> u64 {
    const SS: u64 = crate::emul::exception::SPSR_SS;
    if stepping && (!was || matches!(exit, Exit::Step)) {
        spsr | SS
    } else {
        spsr
    }
}

/// Whether a software-step exception's syndrome (ESR_EL2, EC 0x32) says
/// no instruction was stepped: ISS.ISV (bit 24) = 0, the exception taken
/// in the active-pending state (Arm ARM D2.12.7): at an EL1 vector the
/// guest's exception has just entered, or right after a return that left
/// SS = 0 (an emulated instruction completed the step). QEMU's cycle
/// counter under icount counts one for each of these, a real core's
/// INST_RETIRED none; the board takes it back (`EpochCounter::uncount`),
/// so that a stepped board and one that runs the same instructions freely
/// count alike, as two boards whose overflows skid differently must.
pub const fn stepped_nothing(esr: u64) -> bool {
    const ISV: u64 = 1 << 24;
    esr & ISV == 0
}

/// The single steps of one epoch, and how many of them took the count on
/// by more than one instruction ("wide" steps: under QEMU's icount a
/// step over a trapped instruction or into an exception vector; none on
/// a real core).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepTally {
    pub steps: u64,
    pub wide: u64,
    /// The count where the last step (or the stepping) started.
    last: Option<u64>,
}

impl StepTally {
    /// A tally of `steps`, `wide` of them wide.
    pub const fn of(steps: u64, wide: u64) -> Self {
        Self {
            steps,
            wide,
            last: None,
        }
    }

    /// A new epoch: nothing stepped.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// A step landed (or the stepping starts, the first time) with the
    /// count at `elapsed`.
    pub fn landed(&mut self, elapsed: u64, stepping: bool) {
        if stepping {
            self.steps += 1;
            if self.last.is_some_and(|last| elapsed > last + 1) {
                self.wide += 1;
            }
        }
        self.last = Some(elapsed);
    }
}

/// Instructions before the epoch's end at which the overflow is
/// programmed. On a Cortex-A72 the overflow interrupt travels from the PMU
/// through the GIC to the core while the pipeline keeps retiring (up to 3
/// instructions a cycle): tens to a hundred-odd instructions of skid,
/// which rr also budgets for on the cores it supports. 256 covers that
/// with room; each step is one EL2 round trip, some 256 per full epoch of
/// 10 M instructions. To be measured on the board: an overflow that lands
/// past the end is reported ([`Landed::Overshot`]), never absorbed.
/// Under QEMU the cycle counter is exact, so with the step path forced
/// every epoch takes exactly this many steps (fewer when a WFI ends it).
pub const STEP_MARGIN: u64 = 256;

/// The simulated skid of one overflow, in `0..=max` instructions, from
/// `noise` (the board's own clock where it arms the overflow:
/// `tandem.step-skid`). On QEMU the cycle counter overflows at the exact
/// instruction, so two boards land their early overflow at the same
/// count and step alike; real cores do not. With this, each board's
/// overflow lands up to `max` instructions late, wherever its clock says:
/// the two boards of a pair start stepping at different instructions, as
/// a Cortex-A72 pair would (the clock's low bits spread by the SplitMix64
/// mix the TRNG stand-in uses, `emul::trng::mix`).
pub const fn simulated_skid(noise: u64, max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    crate::emul::trng::mix(noise, 0) % (max + 1)
}

/// How far a 32-bit event counter (INST_RETIRED on a Cortex-A72, whose
/// PMUv3 has no 64-bit event counters) is armed at most: half its range,
/// so that its value read as a signed 32-bit difference from the target
/// ([`narrow_elapsed`]) is never ambiguous, before the overflow (down to
/// -2^31) or after it (a skid, a margin of steps).
pub const NARROW_PERIOD: u64 = 1 << 31;

/// What a 32-bit counter is loaded with to wrap when the count reaches
/// `zero`, `elapsed` counted now (`zero - elapsed` at most
/// [`NARROW_PERIOD`]).
pub const fn narrow_load(elapsed: u64, zero: u64) -> u32 {
    elapsed.wrapping_sub(zero) as u32
}

/// The count, from a 32-bit counter loaded by [`narrow_load`] for `zero`
/// and now reading `raw`: `raw` is the signed distance from `zero`.
pub const fn narrow_elapsed(zero: u64, raw: u32) -> u64 {
    zero.wrapping_add(raw as i32 as i64 as u64)
}

/// How to reach an epoch end `end` from `elapsed` instructions counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// Program the counter to overflow after `after` more instructions.
    Overflow { after: u64 },
    /// Within the margin already: single-step from here.
    Step,
}

/// Where to program the overflow, for a counter that overflows at most
/// `period` instructions after it is loaded (2^32 for a 32-bit event
/// counter, `u64::MAX` for the 64-bit cycle counter): `margin`
/// instructions before `end`, or as far as the counter reaches (and
/// again from there: [`landed`]).
pub const fn arm(elapsed: u64, end: u64, margin: u64, period: u64) -> Arm {
    let target = end.saturating_sub(margin);
    if target <= elapsed {
        return Arm::Step;
    }
    let after = target - elapsed;
    Arm::Overflow {
        after: if after < period { after } else { period },
    }
}

/// What the count means when the counter's overflow interrupt or a
/// software step lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landed {
    /// The epoch's end: `elapsed == end`, or the first step to reach
    /// past it ([`landed`]).
    End,
    /// Not there yet: program the overflow again (a long epoch on a
    /// narrow counter), or step ([`arm`]).
    Short(Arm),
    /// The overflow came past the end by this many instructions (more
    /// skid than the margin): the exact count cannot be reached any more.
    Overshot { by: u64 },
}

/// What `elapsed` means for an epoch that ends at `end` (`margin` and
/// `period` as for [`arm`]), landed on by a step (`by_step`) or by the
/// counter's overflow. A step that goes past the end is the end: once
/// both boards step, they take the same steps from the same state, so
/// the first step at or past the end is the same instruction on both
/// (under QEMU's icount a step over an instruction that traps, or one
/// into an exception vector, counts two: [`StepTally::wide`]). The
/// boundary is at the count the step reached, which the log carries and
/// the replay checks. An overflow past the end is not: the other board's
/// may come elsewhere.
pub const fn landed(elapsed: u64, end: u64, margin: u64, period: u64, by_step: bool) -> Landed {
    if elapsed == end || (elapsed > end && by_step) {
        Landed::End
    } else if elapsed > end {
        Landed::Overshot { by: elapsed - end }
    } else {
        Landed::Short(arm(elapsed, end, margin, period))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = STEP_MARGIN;
    const WIDE: u64 = u64::MAX;
    const NARROW: u64 = 1 << 32;

    #[test]
    fn the_overflow_comes_a_margin_early() {
        assert_eq!(
            arm(0, 10_000_000, M, WIDE),
            Arm::Overflow {
                after: 10_000_000 - M
            }
        );
        // A deadline moved the end: from what is counted already.
        assert_eq!(
            arm(1_000, 5_000, M, WIDE),
            Arm::Overflow { after: 4_000 - M }
        );
        // The margin is exactly reached: step from here.
        assert_eq!(arm(4_744, 5_000, M, WIDE), Arm::Step);
        assert_eq!(arm(4_745, 5_000, M, WIDE), Arm::Step);
        // An end closer than the margin (a short deadline, a tiny epoch).
        assert_eq!(arm(0, 10, M, WIDE), Arm::Step);
    }

    #[test]
    fn a_narrow_counter_is_armed_again_until_the_margin() {
        let end = 10_000_000_000;
        let first = arm(0, end, M, NARROW);
        assert_eq!(first, Arm::Overflow { after: NARROW });
        // It overflowed with some skid: armed for the rest.
        assert_eq!(
            landed(NARROW + 40, end, M, NARROW, false),
            Landed::Short(Arm::Overflow { after: NARROW })
        );
        assert_eq!(
            landed(2 * NARROW, end, M, NARROW, false),
            Landed::Short(Arm::Overflow {
                after: end - M - 2 * NARROW
            })
        );
    }

    #[test]
    fn a_32_bit_counter_reads_back_on_both_sides_of_its_overflow() {
        let zero = 10_000_000 - M;
        let raw = narrow_load(0, zero);
        assert_eq!(raw, (1u64 << 32).wrapping_sub(zero) as u32);
        assert_eq!(narrow_elapsed(zero, raw), 0);
        // Counting up to the overflow, and past it by a skid.
        assert_eq!(narrow_elapsed(zero, raw.wrapping_add(1234)), 1234);
        assert_eq!(narrow_elapsed(zero, raw.wrapping_add(zero as u32)), zero);
        assert_eq!(
            narrow_elapsed(zero, raw.wrapping_add(zero as u32 + 40)),
            zero + 40
        );
        // Armed as far as it goes.
        let far = NARROW_PERIOD;
        let raw = narrow_load(5, 5 + far);
        assert_eq!(narrow_elapsed(5 + far, raw), 5);
        assert_eq!(
            arm(0, 10_000_000_000, M, NARROW_PERIOD),
            Arm::Overflow {
                after: NARROW_PERIOD
            }
        );
    }

    #[test]
    fn a_step_at_a_vector_clears_the_guests_spsr_ss() {
        const SS: u64 = 1 << 21;
        let vbar = 0xffff_8000_1001_0800;
        let spsr = 0x3c5 | SS;
        // An IRQ from EL1h (vector 0x280), taken before the stepped
        // instruction ran: SS saved as 1, cleared.
        assert_eq!(guest_spsr_after_step(vbar + 0x280, vbar, spsr), Some(0x3c5));
        // The first and the last entries.
        assert_eq!(guest_spsr_after_step(vbar, vbar, spsr), Some(0x3c5));
        assert_eq!(guest_spsr_after_step(vbar + 0x780, vbar, spsr), Some(0x3c5));
        // SS already clear: nothing to write.
        assert_eq!(guest_spsr_after_step(vbar + 0x280, vbar, 0x3c5), None);
        // Not at a vector: inside one, past the table, below it.
        assert_eq!(guest_spsr_after_step(vbar + 0x284, vbar, spsr), None);
        assert_eq!(guest_spsr_after_step(vbar + 0x800, vbar, spsr), None);
        assert_eq!(guest_spsr_after_step(vbar - 0x80, vbar, spsr), None);
    }

    #[test]
    fn a_step_in_the_active_pending_state_stepped_nothing() {
        // Seen under QEMU: a step after an instruction, and one at a
        // vector (or after an emulated instruction's return).
        assert!(!stepped_nothing(0xcb00_0022));
        assert!(stepped_nothing(0xca00_0022));
    }

    #[test]
    fn a_simulated_skid_stays_in_its_range_and_moves_with_the_clock() {
        assert_eq!(simulated_skid(12345, 0), 0);
        let skids: Vec<u64> = (0..1_000)
            .map(|t| simulated_skid(t * 62_500, 100))
            .collect();
        assert!(skids.iter().all(|&k| k <= 100));
        // Spread over the range, not stuck: two clocks apart, two skids.
        let distinct = {
            let mut v = skids.clone();
            v.sort();
            v.dedup();
            v.len()
        };
        assert!(distinct > 80, "{distinct} distinct skids of 1,000");
        assert!(skids.contains(&0) && skids.contains(&100));
    }

    #[test]
    fn only_a_step_or_the_start_of_stepping_sets_ss() {
        const SS: u64 = 1 << 21;
        let spsr = 0x3c5;
        // Not stepping: untouched.
        assert_eq!(spsr_on_return(spsr, Exit::Other, false, false), spsr);
        assert_eq!(
            spsr_on_return(spsr | SS, Exit::Step, true, false),
            spsr | SS
        );
        // Stepping starts at this exit (the early overflow): step the next
        // instruction.
        assert_eq!(spsr_on_return(spsr, Exit::Other, false, true), spsr | SS);
        // After a step exception: the next instruction.
        assert_eq!(spsr_on_return(spsr, Exit::Step, true, true), spsr | SS);
        // An emulated instruction, an interrupt after the stepped
        // instruction, an injected exception: the step exception at once.
        assert_eq!(spsr_on_return(spsr, Exit::Other, true, true), spsr);
        // An interrupt or a retry before the stepped instruction ran.
        assert_eq!(
            spsr_on_return(spsr | SS, Exit::Other, true, true),
            spsr | SS
        );
    }

    #[test]
    fn a_step_over_two_instructions_is_counted_wide() {
        let mut t = StepTally::default();
        // The overflow lands (not a step yet), then steps of 1, 0 (an
        // emulated instruction), 2 and 1.
        t.landed(1_000, false);
        for c in [1_001, 1_001, 1_003, 1_004] {
            t.landed(c, true);
        }
        assert_eq!((t.steps, t.wide), (4, 1));
        t.reset();
        assert_eq!((t.steps, t.wide), (0, 0));
        // Stepping from the start of an epoch (an end inside the margin).
        t.landed(0, true);
        t.landed(1, true);
        assert_eq!((t.steps, t.wide), (2, 0));
    }

    #[test]
    fn steps_end_at_the_exact_count() {
        let end = 10_000_000;
        // The overflow landed with 3 instructions of skid: step.
        assert_eq!(
            landed(end - M + 3, end, M, WIDE, false),
            Landed::Short(Arm::Step)
        );
        // A trapped instruction's step left the count where it was.
        assert_eq!(
            landed(end - 1, end, M, WIDE, true),
            Landed::Short(Arm::Step)
        );
        assert_eq!(landed(end, end, M, WIDE, true), Landed::End);
        assert_eq!(landed(end, end, M, WIDE, false), Landed::End);
        // An overflow past the end cannot be undone; a step past it (one
        // that counted two) is the end.
        assert_eq!(
            landed(end + 2, end, M, WIDE, false),
            Landed::Overshot { by: 2 }
        );
        assert_eq!(landed(end + 1, end, M, WIDE, true), Landed::End);
        // More skid than the margin.
        assert_eq!(
            landed(end + 100, end, 64, WIDE, false),
            Landed::Overshot { by: 100 }
        );
    }

    #[test]
    fn steps_of_a_whole_epoch_are_the_margin() {
        // Stepping one instruction at a time from the overflow to the end.
        let end = 1_000_000;
        let Arm::Overflow { after } = arm(0, end, M, WIDE) else {
            panic!()
        };
        let (mut count, mut steps) = (after, 0);
        while landed(count, end, M, WIDE, true) != Landed::End {
            assert_eq!(landed(count, end, M, WIDE, true), Landed::Short(Arm::Step));
            count += 1;
            steps += 1;
        }
        assert_eq!(steps, M);
    }
}
