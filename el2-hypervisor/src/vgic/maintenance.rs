//! The maintenance interrupt: when more interrupts wait than there are
//! list registers, what the virtual CPU interface is asked to report, so
//! that the hypervisor refills the LRs as soon as the guest frees one
//! instead of at its next unrelated exit.
//!
//! Two sources are used (IHI 0069H §12.4 `ICH_HCR_EL2`, `ICH_MISR_EL2`,
//! `ICH_LR<n>_EL2`; IHI 0048B §5.3 GICH_HCR, GICH_MISR, GICH_LRn):
//! - EOI maintenance: an LR with HW = 0 and its EOI bit set (bit 41 of
//!   `ICH_LR<n>_EL2`, bit 19 of GICH_LRn) raises the maintenance interrupt
//!   when the guest deactivates its interrupt (the LR then goes invalid
//!   and its EISR bit is set). Set on every held LR while an interrupt
//!   waits: the first deactivation frees an LR and brings the next one in.
//! - Underflow (`UIE`, bit 1 of ICH_HCR_EL2 and GICH_HCR): the interrupt
//!   stays asserted while at most one LR holds a valid interrupt. A
//!   backstop, used only with two LRs or more (with one it would be
//!   asserted at once, for ever).
//!
//! Both conditions are levels. The exit that takes the maintenance
//! interrupt writes every LR again (the fill): a freed LR is zeroed or
//! reused, which drops EISR; UIE is set again only if something still
//! waits. Between the acknowledge and the fill, [`quiet`] zeroes the
//! invalid LRs that still carry an EOI bit (the guest sees no invalid
//! LR, so nothing it sees changes) so that the level drops before the
//! physical EOI.
//!
//! # Determinism
//! The request is a pure function of the fill's result (the LR values it
//! wrote and how many interrupts still wait), so both boards ask for the
//! same maintenance. The interrupt itself is raised by the guest's own
//! deactivation: under QEMU's icount (record, replay, pairs) it is taken
//! at the instruction after that access on every board, so the refill it
//! causes is made at the same instruction, from the same model state, on
//! both. (On a real core its latency is not architecturally exact: see
//! docs/design.md.)

use super::LrFormat;

/// What the virtual CPU interface is asked to report after a fill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Underflow maintenance (ICH_HCR_EL2.UIE / GICH_HCR.UIE).
    pub underflow: bool,
    /// LRs to mark for EOI maintenance, one bit per LR.
    pub eoi: u16,
}

impl Maintenance {
    /// No maintenance interrupt.
    pub const NONE: Maintenance = Maintenance {
        underflow: false,
        eoi: 0,
    };

    /// The request after a fill that wrote `lrs` and left `waiting`
    /// interrupts without an LR: nothing if none waits; otherwise EOI
    /// maintenance on every LR holding a virtual (HW = 0) interrupt, and
    /// underflow if there are two LRs or more.
    pub fn after_fill(format: LrFormat, lrs: &[u64], waiting: usize) -> Maintenance {
        if waiting == 0 {
            return Maintenance::NONE;
        }
        let mut eoi = 0u16;
        for (slot, &raw) in lrs.iter().enumerate().take(u16::BITS as usize) {
            let lr = format.decode(raw);
            if lr.state != super::LrState::Invalid && lr.pintid.is_none() {
                eoi |= 1 << slot;
            }
        }
        Maintenance {
            underflow: lrs.len() >= 2,
            eoi,
        }
    }

    /// Sets the EOI bit in the LR values this request marks.
    pub fn apply(&self, format: LrFormat, lrs: &mut [u64]) {
        for (slot, lr) in lrs.iter_mut().enumerate().take(u16::BITS as usize) {
            if self.eoi >> slot & 1 != 0 {
                *lr = format.with_eoi(*lr);
            }
        }
    }
}

/// The LRs to zero when the maintenance interrupt is taken, before it is
/// ended: the invalid ones that carry an EOI bit (their EISR bit holds the
/// interrupt asserted). One bit per LR. An invalid LR is not shown to the
/// guest, so zeroing it changes nothing the guest sees or the model holds.
pub fn quiet(format: LrFormat, lrs: &[u64]) -> u16 {
    let mut zero = 0u16;
    for (slot, &raw) in lrs.iter().enumerate().take(u16::BITS as usize) {
        if format.state(raw) == super::LrState::Invalid && raw != 0 {
            zero |= 1 << slot;
        }
    }
    zero
}
