//! List registers: their two encodings, and moving interrupts between the
//! model and the LRs.
//!
//! - `ICH_LR<n>_EL2` (GICv3, IHI 0069H §12.4): vINTID `[31:0]`, pINTID `[44:32]`
//!   (HW=1; with HW=0 bit 41 is EOI), Priority `[55:48]`, Group `[60]`, HW `[61]`,
//!   State `[63:62]`.
//! - GICH_LRn (GICv2, IHI 0048B §5.3): VirtualID `[9:0]`,
//!   PhysicalID `[19:10]` (HW=1; with HW=0 bit 19 is EOI and `[12:10]` the
//!   source CPU of an SGI, 0 here), Priority `[27:23]` (bits `[7:3]` of the
//!   priority), State `[29:28]`, Grp1 `[30]`, HW `[31]`.
//!
//! The model never sets HW: interrupts are virtual, and it learns of the
//! guest's EOI by reading the LRs at the next exit. The EOI bit is set on
//! top of the fill only while interrupts wait for an LR
//! ([`super::maintenance`]), so that the guest's deactivation raises the
//! maintenance interrupt and the hypervisor refills at once.
//!
//! # Syncing at an exit that also changes the model
//! The runtime syncs first at every exit, then emulates the trapped access,
//! then fills. A GICD/GICR write to an interrupt that sits in an LR
//! (IS/ICACTIVER, IS/ICPENDR, ...) is newer than anything the LR value read
//! at that exit shows: the guest changed the LR while it ran, before it
//! trapped. So until the next fill writes the LR, the model is the
//! authority on the state such a write set ([`LrWrites`]), and a second
//! sync with the same (now stale) values, or a sync that comes after the
//! write, does not undo it. The guest's own acknowledge still counts: it
//! may consume the LR's pend, it cannot bring back a pend the write
//! withdrew (IHI 0069H §12.9 `GICD_ICPENDR<n>`, `GICD_ICACTIVER<n>` and their
//! GICR §12.11 twins act on the interrupt's state wherever it is held).
//!
//! Level interrupts: an LR entry is written pending only while its
//! interrupt is not active; once the guest acknowledges it, a line that
//! stays high is not added back as "pending and active" but re-sampled
//! after the EOI (the entry goes invalid, the sync releases it, the next
//! fill injects it again if the line is still high). This keeps a handler
//! that quiets its device from taking the interrupt a second time before
//! the hypervisor has seen the line drop.

use super::maintenance::Maintenance;
use super::{MAX_LIST_REGISTERS, Trigger, Vgic};

/// The LRs whose interrupt's state a GICD/GICR write (or a hypervisor
/// input) changed since the last fill, one bit per LR: for those bits the
/// model, not the LR value a sync is given, is right until the next fill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LrWrites {
    /// The active state was written (GICD/GICR_IS/ICACTIVER).
    active: u16,
    /// The pending state was written (IS/ICPENDR, [CS]PENDSGIR, a
    /// software pend from the hypervisor).
    pending: u16,
}

const _: () = assert!(MAX_LIST_REGISTERS <= u16::BITS as usize);

impl LrWrites {
    pub(super) const NONE: LrWrites = LrWrites {
        active: 0,
        pending: 0,
    };

    const fn active(&self, slot: usize) -> bool {
        self.active >> slot & 1 != 0
    }

    const fn pending(&self, slot: usize) -> bool {
        self.pending >> slot & 1 != 0
    }

    fn forget(&mut self, slot: usize) {
        self.active &= !(1 << slot);
        self.pending &= !(1 << slot);
    }
}

/// Which state of an interrupt a write changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wrote {
    Active,
    Pending,
}

/// The State field of a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LrState {
    Invalid = 0b00,
    Pending = 0b01,
    Active = 0b10,
    PendingActive = 0b11,
}

impl LrState {
    pub const fn new(pending: bool, active: bool) -> Self {
        match (pending, active) {
            (false, false) => LrState::Invalid,
            (true, false) => LrState::Pending,
            (false, true) => LrState::Active,
            (true, true) => LrState::PendingActive,
        }
    }

    const fn from_bits(bits: u64) -> Self {
        LrState::new(bits & 0b01 != 0, bits & 0b10 != 0)
    }

    pub const fn pending(self) -> bool {
        matches!(self, LrState::Pending | LrState::PendingActive)
    }

    pub const fn active(self) -> bool {
        matches!(self, LrState::Active | LrState::PendingActive)
    }
}

/// One list register's content, independent of the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRegister {
    pub vintid: u32,
    /// The physical INTID of a hardware interrupt (HW=1), if any.
    pub pintid: Option<u32>,
    pub priority: u8,
    pub group1: bool,
    pub state: LrState,
}

/// The list-register encoding of the board's GIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LrFormat {
    /// GICv2 GICH_LRn (32 bits): 10-bit INTIDs, 5 priority bits.
    V2,
    /// GICv3 `ICH_LR<n>_EL2` (64 bits).
    V3,
}

impl LrFormat {
    /// Encodes `lr`. Fields wider than the format are truncated (a GICv2
    /// INTID to 10 bits, a GICv2 priority to bits `[7:3]`).
    pub const fn encode(self, lr: &ListRegister) -> u64 {
        let state = lr.state as u64;
        match self {
            LrFormat::V3 => {
                let mut v = lr.vintid as u64
                    | (lr.priority as u64) << 48
                    | (lr.group1 as u64) << 60
                    | state << 62;
                if let Some(p) = lr.pintid {
                    v |= (p as u64 & 0x1fff) << 32 | 1 << 61;
                }
                v
            }
            LrFormat::V2 => {
                let mut v = (lr.vintid as u64 & 0x3ff)
                    | (lr.priority as u64 >> 3) << 23
                    | state << 28
                    | (lr.group1 as u64) << 30;
                if let Some(p) = lr.pintid {
                    v |= (p as u64 & 0x3ff) << 10 | 1 << 31;
                }
                v
            }
        }
    }

    /// Decodes a list register value.
    pub const fn decode(self, raw: u64) -> ListRegister {
        match self {
            LrFormat::V3 => ListRegister {
                vintid: raw as u32,
                pintid: if raw >> 61 & 1 == 1 {
                    Some((raw >> 32) as u32 & 0x1fff)
                } else {
                    None
                },
                priority: (raw >> 48) as u8,
                group1: raw >> 60 & 1 == 1,
                state: LrState::from_bits(raw >> 62),
            },
            LrFormat::V2 => ListRegister {
                vintid: raw as u32 & 0x3ff,
                pintid: if raw >> 31 & 1 == 1 {
                    Some((raw >> 10) as u32 & 0x3ff)
                } else {
                    None
                },
                priority: ((raw >> 23) as u8 & 0x1f) << 3,
                group1: raw >> 30 & 1 == 1,
                state: LrState::from_bits(raw >> 28),
            },
        }
    }

    /// `raw` with its EOI bit set (a maintenance interrupt when the guest
    /// deactivates it), if it holds a virtual interrupt (HW = 0; with HW
    /// = 1 those bits are the physical INTID): bit 41 of `ICH_LR<n>_EL2`,
    /// bit 19 of GICH_LRn.
    pub const fn with_eoi(self, raw: u64) -> u64 {
        match self {
            LrFormat::V3 if raw >> 61 & 1 == 0 => raw | 1 << 41,
            LrFormat::V2 if raw >> 31 & 1 == 0 => raw | 1 << 19,
            _ => raw,
        }
    }

    /// The State field alone.
    pub const fn state(self, raw: u64) -> LrState {
        match self {
            LrFormat::V3 => LrState::from_bits(raw >> 62),
            LrFormat::V2 => LrState::from_bits(raw >> 28),
        }
    }
}

/// Orders candidates: lower is injected first. Active before pending, then
/// priority (lower value is more urgent), then INTID.
type Key = u32;

const fn key(active: bool, priority: u8, intid: usize) -> Key {
    ((!active as u32) << 24) | (priority as u32) << 16 | intid as u32
}

impl Vgic {
    /// Folds the LRs' state back into the model, at a guest exit. `lrs[n]`
    /// is `ICH_LR<n>_EL2` (or GICH_LRn) as just read; pass the same number of
    /// LRs every time. An entry the guest has EOI'd (state invalid) is
    /// released: an edge is done, a level interrupt whose line is still
    /// high is pending again (for the next fill). Idempotent.
    ///
    /// Call it first at every exit, before the trapped access is emulated:
    /// a GICD/GICR read then sees what the guest did in hardware (an
    /// ICC_IAR1_EL1 acknowledge makes the interrupt active in its LR
    /// only). A sync that comes after a write to an interrupt held in an
    /// LR, before the next fill, keeps what the write set (see the module
    /// doc), so a second sync at the same exit is harmless.
    pub fn sync_from_list_registers(&mut self, lrs: &[u64]) {
        let n = lrs.len().min(MAX_LIST_REGISTERS);
        if lrs[..n] != self.filled[..n] {
            self.dirty = true;
        }
        let format = self.lr_format();
        for (slot, &raw) in lrs.iter().enumerate().take(MAX_LIST_REGISTERS) {
            let Some(intid) = self.lr_owner[slot] else {
                continue;
            };
            let state = format.state(raw);
            let written = self.lr_writes;
            let irq = &mut self.irqs[usize::from(intid)];
            if !written.active(slot) {
                irq.active = state.active();
            }
            if written.pending(slot) {
                // The guest's acknowledge came before the write: it may have
                // taken the LR's pend; a pend the write withdrew stays
                // withdrawn, and a software pend the write made stands.
                irq.lr_pending &= state.pending();
            } else {
                if irq.trigger == Trigger::Level && irq.lr_pending && !state.pending() {
                    // Acknowledged: that consumes a software pend.
                    irq.latch = false;
                }
                irq.lr_pending = state.pending();
            }
            if state == LrState::Invalid {
                self.release(slot);
            }
        }
    }

    /// A GICD/GICR write (or a hypervisor input) set the `what` state of
    /// `intid`: if the interrupt sits in an LR, the model is the authority
    /// on that state until the next fill writes the LR. Noted even when
    /// the write changed nothing in the model: an ICACTIVER that finds the
    /// model inactive may be deactivating what the guest acknowledged in
    /// hardware since the last sync.
    pub(super) fn note_write(&mut self, intid: usize, what: Wrote) {
        let Some(slot) = self.irqs[intid].lr else {
            return;
        };
        let bit = 1 << slot;
        match what {
            Wrote::Active => self.lr_writes.active |= bit,
            Wrote::Pending => self.lr_writes.pending |= bit,
        }
    }

    /// Writes every LR in `lrs` (`ICH_LR<n>_EL2` or GICH_LRn values, to be
    /// written back by the caller): entries already owned are brought up
    /// to date (pending added or withdrawn, active cleared by the guest's
    /// ICACTIVER, ...), then free LRs take the best candidates, then a
    /// pending-only entry is evicted for a candidate of strictly higher
    /// priority (or an active one); LRs left free are zero. Call it only
    /// at a synchronous exit (see the module doc). While interrupts still
    /// wait for an LR, every LR holding one gets its EOI bit
    /// ([`Maintenance::after_fill`]). Returns how many wait.
    pub fn fill_list_registers(&mut self, lrs: &mut [u64]) -> usize {
        let slots = lrs.len().min(MAX_LIST_REGISTERS);
        let (lrs, unused) = lrs.split_at_mut(slots);
        unused.fill(0);
        for slot in slots..MAX_LIST_REGISTERS {
            self.evict(slot);
        }
        for (slot, lr) in lrs.iter_mut().enumerate() {
            *lr = match self.lr_owner[slot] {
                Some(intid) => self.place(slot, usize::from(intid)),
                None => 0,
            };
        }
        // Each scan of the INTIDs costs a few thousand instructions, at
        // every exit that fills: the best candidate is looked for again only
        // after a placement or an eviction changed the candidates, and when
        // the last look found none there is nothing left to count.
        let mut best = self.best_candidate();
        for (slot, lr) in lrs.iter_mut().enumerate() {
            if self.lr_owner[slot].is_some() {
                continue;
            }
            let Some((_, intid)) = best else {
                break;
            };
            *lr = self.place(slot, intid);
            best = self.best_candidate();
        }
        while let (Some((key, intid)), Some((worst, slot))) = (best, self.worst_evictable(slots)) {
            // Only a more urgent class or priority evicts; an INTID tie-break
            // is no reason to move an entry.
            if key >> 16 >= worst >> 16 {
                break;
            }
            self.evict(slot);
            lrs[slot] = self.place(slot, intid);
            if lrs[slot] == 0 {
                break; // cannot happen for a candidate; never loop on it
            }
            best = self.best_candidate();
        }
        let waiting = match best {
            None => 0,
            Some(_) => (0..self.irqs.len())
                .filter(|&i| self.candidate_key(i).is_some())
                .count(),
        };
        // While interrupts wait, the guest's EOI of any of these raises the
        // maintenance interrupt (`super::maintenance`).
        let format = self.lr_format();
        Maintenance::after_fill(format, lrs, waiting).apply(format, lrs);
        // The LRs now show the model: a sync may trust them again.
        self.lr_writes = LrWrites::NONE;
        self.dirty = false;
        self.filled = [0; MAX_LIST_REGISTERS];
        self.filled[..slots].copy_from_slice(lrs);
        waiting
    }

    /// Something to inject: an interrupt that a fill would put into an LR
    /// as pending (LR space aside). What a WFI should wake up for.
    pub fn has_pending_deliverable(&self) -> bool {
        (0..self.irqs.len()).any(|i| {
            let irq = &self.irqs[i];
            let wants = match (irq.trigger, irq.lr.is_some()) {
                (Trigger::Edge, _) => irq.latch,
                (Trigger::Level, false) => !irq.active && irq.pending(),
                (Trigger::Level, true) => false,
            };
            wants && self.forwardable(i)
        })
    }

    /// Puts `intid` into LR `slot` (or refreshes it there) and returns the
    /// LR value; releases the slot and returns 0 if nothing is left to
    /// show (neither pending nor active).
    fn place(&mut self, slot: usize, intid: usize) -> u64 {
        let forward = self.forwardable(intid);
        let irq = &mut self.irqs[intid];
        let owned = irq.lr.is_some();
        let pending = match irq.trigger {
            Trigger::Edge => {
                let edge = irq.latch || (owned && irq.lr_pending);
                irq.latch = edge && !forward;
                edge && forward
            }
            Trigger::Level => {
                let may = if owned { irq.lr_pending } else { !irq.active };
                may && forward && (irq.latch || irq.line)
            }
        };
        if !pending && !irq.active {
            self.release(slot);
            return 0;
        }
        irq.lr_pending = pending;
        irq.lr = Some(slot as u8);
        let lr = ListRegister {
            vintid: intid as u32,
            pintid: None,
            priority: irq.priority,
            group1: irq.group1,
            state: LrState::new(pending, irq.active),
        };
        self.lr_owner[slot] = Some(intid as u16);
        self.lr_format().encode(&lr)
    }

    /// Frees LR `slot`, handing a pending edge back to the model.
    fn evict(&mut self, slot: usize) {
        if let Some(intid) = self.lr_owner[slot] {
            let irq = &mut self.irqs[usize::from(intid)];
            if irq.trigger == Trigger::Edge && irq.lr_pending {
                irq.latch = true;
            }
            self.release(slot);
        }
    }

    fn release(&mut self, slot: usize) {
        self.lr_writes.forget(slot);
        if let Some(intid) = self.lr_owner[slot].take() {
            let irq = &mut self.irqs[usize::from(intid)];
            irq.lr = None;
            irq.lr_pending = false;
        }
    }

    /// An interrupt that wants an LR and has none: active (the guest must
    /// be able to deactivate it), or pending and forwardable.
    fn candidate_key(&self, intid: usize) -> Option<Key> {
        let irq = &self.irqs[intid];
        let wants = irq.active || (irq.pending() && self.forwardable(intid));
        (irq.lr.is_none() && wants).then(|| key(irq.active, irq.priority, intid))
    }

    fn best_candidate(&self) -> Option<(Key, usize)> {
        (0..self.irqs.len())
            .filter_map(|i| self.candidate_key(i).map(|k| (k, i)))
            .min()
    }

    /// The least urgent LR entry that is only pending (an active one must
    /// stay where the guest's EOI finds it).
    fn worst_evictable(&self, slots: usize) -> Option<(Key, usize)> {
        (0..slots)
            .filter_map(|slot| {
                let intid = usize::from(self.lr_owner[slot]?);
                let irq = &self.irqs[intid];
                (!irq.active).then(|| (key(false, irq.priority, intid), slot))
            })
            .max()
    }
}
