//! One interrupt's state, as the distributor registers show it and as the
//! list registers carry it.
//!
//! Where the pending state lives:
//! - An edge is latched in `latch` until a fill moves it into a list
//!   register (`lr_pending`); an edge that arrives while the interrupt sits
//!   in an LR waits in `latch` for the next fill.
//! - A level interrupt is pending while its `line` is high, or while a
//!   software pend (`latch`, from GICD_ISPENDR or `set_pending`) stands;
//!   the guest's acknowledge consumes the software pend.
//! - While an interrupt sits in an LR, `active` and `lr_pending` are the
//!   LR's state as of the last sync (the guest acknowledges and EOIs in
//!   the hardware, not here), or what a GICD/GICR write set since; the
//!   next fill writes them into the LR.

/// How the interrupt's input is sampled (GICD_ICFGR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    Level,
    Edge,
}

/// The state of one INTID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqState {
    pub(super) enabled: bool,
    pub(super) group1: bool,
    pub(super) trigger: Trigger,
    /// Priority, bits `[7:3]` significant.
    pub(super) priority: u8,
    /// SPIs: GICD_IROUTER (v3) or the GICD_ITARGETSR byte (v2).
    pub(super) route: u64,
    /// Edge: a latched edge not yet in an LR. Level: a software pend.
    pub(super) latch: bool,
    /// The input line (level interrupts; edges remember it to see a rise).
    pub(super) line: bool,
    pub(super) active: bool,
    /// The pending bit of its LR, while it has one.
    pub(super) lr_pending: bool,
    /// The list register holding it.
    pub(super) lr: Option<u8>,
}

impl IrqState {
    pub(super) const fn reset(trigger: Trigger, group1: bool) -> Self {
        IrqState {
            enabled: false,
            group1,
            trigger,
            priority: 0,
            route: 0,
            latch: false,
            line: false,
            active: false,
            lr_pending: false,
            lr: None,
        }
    }

    /// Pending, as GICD_ISPENDR reads it.
    pub const fn pending(&self) -> bool {
        match self.trigger {
            Trigger::Edge => self.latch || (self.lr.is_some() && self.lr_pending),
            Trigger::Level => self.latch || self.line,
        }
    }

    pub const fn active(&self) -> bool {
        self.active
    }

    pub const fn enabled(&self) -> bool {
        self.enabled
    }

    pub const fn priority(&self) -> u8 {
        self.priority
    }

    pub const fn group1(&self) -> bool {
        self.group1
    }

    pub const fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// The input line as last set by the hypervisor.
    pub const fn line(&self) -> bool {
        self.line
    }

    /// The list register holding it, if any.
    pub const fn list_register(&self) -> Option<u8> {
        self.lr
    }

    /// GICD_ICPENDR: drop a latched edge or a software pend, and the
    /// pending state of its LR (the next fill takes it out). A high level
    /// line keeps a level interrupt pending.
    pub(super) fn clear_pending(&mut self) {
        self.latch = false;
        self.lr_pending = false;
    }
}
