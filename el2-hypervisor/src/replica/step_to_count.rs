//! Landing an epoch on its exact instruction count when the counter's
//! overflow interrupt comes late (skid), the way rr does: the overflow is
//! programmed [`STEP_MARGIN`] instructions early, and from wherever it
//! lands the guest is single-stepped (MDSCR_EL1.SS with MDCR_EL2.TDE, a
//! software-step exception to EL2 after each instruction, EC 0x32) until
//! the count is the epoch's end.
//!
//! The decisions are here; the register writes are the arch layer's
//! (`arch/aarch64/pmu.rs`). Everything decided is a function of the
//! instruction count and the epoch's end, so two boards whose overflow
//! lands at the same count (QEMU's cycle counter under icount: exactly)
//! take the same steps at the same instructions. A step is an exception
//! to EL2 and its ERET clears the exclusive monitor (design card, section
//! 8): a guest LDXR/STXR pair that straddles a step fails its STXR and
//! retries, the same on both boards. That, and SPSR_EL1.SS (an exception
//! the guest takes in the middle of a step saves PSTATE.SS = 1), are why
//! the stepping is in the pairing digest: a board that steps and one that
//! does not see the same boundaries but not the same guest in between.
//!
//! What a step does to the count. On QEMU `-cpu max` with the step path
//! forced (`tandem.epoch-counter=steps`), the default guest's recording
//! took exactly [`STEP_MARGIN`] steps per overflow (619 overflows, 158,464
//! steps): every step was +1, and its replay matched every epoch.
//! - an instruction that runs: +1;
//! - an instruction that traps to EL2 and is emulated (MMIO, a system
//!   register, WFE): never retired by the hardware (the counter counts
//!   EL0/EL1 only), so it does not count; the emulation completes it
//!   and clears SPSR_EL2.SS, as executing it would, and the return sets
//!   SS again, so the same step goes on to the next instruction;
//! - an instruction that takes an exception to EL1 (SVC, an injected or
//!   a guest fault, a virtual interrupt taken before the instruction):
//!   the step ends at the vector, before the handler's first instruction;
//!   the count is what the counter says, the same on both boards;
//! - a WFI: traps (HCR_EL2.TWI) and ends the epoch there, as without
//!   steps: the count is below the end, and the next epoch starts with
//!   stepping off.
//!
//! The steps are visible to the guest, so where they start must be the
//! same on both boards: replayed with half the margin, the same recording
//! diverges at epoch 2 (same count, PC 8 bytes on: early boot runs
//! LDXR/STXR loops before the kernel patches in LSE atomics, and a step
//! inside one fails its STXR). On QEMU's cycle counter the overflow is
//! exact and the start is `end - STEP_MARGIN` on both boards. On a real
//! core it is wherever the skidded overflow lands, which differs between
//! boards: a Cortex-A72 has no LSE, so Linux's atomics and locks are all
//! LDXR/STXR loops, and one that straddles the start of one board's
//! stepping but not the other's makes them diverge (the fingerprint says
//! so at that boundary). Not solved here; the way out is to make the steps
//! invisible where they differ: stop stepping across an exclusive
//! sequence (the step syndrome's ISS.EX says the stepped instruction was a
//! load-exclusive) and run it to its store-exclusive under a breakpoint,
//! or let the backup land on the primary's logged count and PC with a
//! hardware breakpoint (EC 0x30) instead of steps, as rr does.
//!
//! A step that takes the count past the end (an overflow with more skid
//! than the margin, or a guest instruction stream that retires two
//! instructions in one step: a guest ERET with SPSR_EL1.SS set) is
//! [`Landed::Overshot`]: the board cannot stop at the exact count, and
//! says so rather than end an epoch its peer would end elsewhere.
//!
//! Interrupts stay unmasked while stepping: the guest's virtual ones are
//! functions of the list registers, which change only where both boards
//! agree; physical ones are taken at EL2 (HCR_EL2.IMO) whatever the
//! guest's PSTATE.I, and return to the same step (SPSR_EL2.SS is set at
//! every return while stepping). Masking the guest's would change what
//! it sees.

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
    /// The epoch's end: `elapsed == end`.
    End,
    /// Not there yet: program the overflow again (a long epoch on a
    /// narrow counter), or step ([`arm`]).
    Short(Arm),
    /// Past the end by this many instructions: the exact count cannot be
    /// reached any more.
    Overshot { by: u64 },
}

/// What `elapsed` means for an epoch that ends at `end` (`margin` and
/// `period` as for [`arm`]).
pub const fn landed(elapsed: u64, end: u64, margin: u64, period: u64) -> Landed {
    if elapsed == end {
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
            landed(NARROW + 40, end, M, NARROW),
            Landed::Short(Arm::Overflow { after: NARROW })
        );
        assert_eq!(
            landed(2 * NARROW, end, M, NARROW),
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
    fn steps_end_at_the_exact_count() {
        let end = 10_000_000;
        // The overflow landed with 3 instructions of skid: step.
        assert_eq!(landed(end - M + 3, end, M, WIDE), Landed::Short(Arm::Step));
        // A trapped instruction's step left the count where it was.
        assert_eq!(landed(end - 1, end, M, WIDE), Landed::Short(Arm::Step));
        assert_eq!(landed(end, end, M, WIDE), Landed::End);
        assert_eq!(landed(end + 2, end, M, WIDE), Landed::Overshot { by: 2 });
        // More skid than the margin.
        assert_eq!(
            landed(end + 100, end, 64, WIDE),
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
        while landed(count, end, M, WIDE) != Landed::End {
            assert_eq!(landed(count, end, M, WIDE), Landed::Short(Arm::Step));
            count += 1;
            steps += 1;
        }
        assert_eq!(steps, M);
    }
}
