//! The register groups GICD and GICR share: each register of a group holds
//! one field per INTID, `bits` wide, so one routine serves them all (Bao's
//! `vgic_reg_handler_info`, by field width): IGROUPR, IS/ICENABLER,
//! IS/ICPENDR, IS/ICACTIVER (1 bit), ICFGR (2 bits), IPRIORITYR,
//! ITARGETSR, C/SPENDSGIR (8 bits), IROUTER (64 bits).

use super::access::low_mask;
use super::list_registers::Wrote;
use super::{GicVersion, Trigger, Vgic};

/// Priority bits the model implements: `[7:3]` (32 levels).
pub(super) const PRIORITY_MASK: u8 = 0xf8;

/// GICD_IROUTER: Aff3 `[39:32]`, Aff2 `[23:16]`, Aff1 `[15:8]`, Aff0 `[7:0]`;
/// IRM `[31]` is RAZ/WI (no 1-of-N routing, GICD_TYPER.No1N = 1).
const ROUTE_MASK: u64 = 0xff_00ff_ffff;

/// What one field of a register group means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    /// IGROUPR: 1 = Group 1.
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
    /// IPRIORITYR.
    Priority,
    /// ICFGR: bit 1 of the field set = edge.
    Config,
    /// GICv2 ITARGETSR: the CPU-interface mask; only CPU 0 exists.
    Target,
    /// GICv2 SPENDSGIR: per-source pending bits of an SGI (source 0 only).
    SetSgiPending,
    /// GICv2 CPENDSGIR.
    ClearSgiPending,
    /// GICv3 IROUTER.
    Route,
}

impl Field {
    /// The state of an LR-held interrupt that a write of a 1 sets, which a
    /// sync must then leave alone (the others are not in the LR's State).
    const fn wrote(self) -> Option<Wrote> {
        match self {
            Field::SetActive | Field::ClearActive => Some(Wrote::Active),
            Field::SetPending
            | Field::ClearPending
            | Field::SetSgiPending
            | Field::ClearSgiPending => Some(Wrote::Pending),
            _ => None,
        }
    }

    pub const fn bits(self) -> u32 {
        match self {
            Field::Config => 2,
            Field::Priority | Field::Target | Field::SetSgiPending | Field::ClearSgiPending => 8,
            Field::Route => 64,
            _ => 1,
        }
    }
}

/// The INTIDs a frame's groups reach; fields outside are RAZ/WI (GICD's
/// banked SGI/PPI fields under affinity routing, SPIs past `NR_IRQS`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Scope {
    pub first: u32,
    pub end: u32,
}

impl Vgic {
    /// Reads `width` bytes at byte `rel` of a group whose first field is
    /// INTID 0.
    pub(super) fn read_fields(&self, field: Field, rel: u64, width: u8, scope: Scope) -> u64 {
        let bits = field.bits();
        let access_bits = u32::from(width) * 8;
        let first_bit = rel * 8;
        if access_bits <= bits {
            // Inside one field: a byte of IPRIORITYR, a half of IROUTER.
            let intid = first_bit / u64::from(bits);
            let shift = (first_bit % u64::from(bits)) as u32;
            let value = self.read_field(field, intid, scope);
            return (value >> shift) & low_mask(access_bits);
        }
        let first = first_bit / u64::from(bits);
        (0..access_bits / bits).fold(0, |acc, k| {
            acc | self.read_field(field, first + u64::from(k), scope) << (k * bits)
        })
    }

    /// Writes `width` bytes of `value` at byte `rel` of a group.
    pub(super) fn write_fields(
        &mut self,
        field: Field,
        rel: u64,
        width: u8,
        value: u64,
        scope: Scope,
    ) {
        let bits = field.bits();
        let access_bits = u32::from(width) * 8;
        let first_bit = rel * 8;
        if access_bits < bits {
            let intid = first_bit / u64::from(bits);
            let shift = (first_bit % u64::from(bits)) as u32;
            let mask = low_mask(access_bits) << shift;
            let old = self.read_field(field, intid, scope);
            self.write_field(
                field,
                intid,
                (old & !mask) | ((value << shift) & mask),
                scope,
            );
            return;
        }
        let first = first_bit / u64::from(bits);
        for k in 0..access_bits / bits {
            let v = (value >> (k * bits)) & low_mask(bits);
            self.write_field(field, first + u64::from(k), v, scope);
        }
    }

    fn in_scope(intid: u64, scope: Scope) -> Option<usize> {
        (intid >= u64::from(scope.first) && intid < u64::from(scope.end)).then_some(intid as usize)
    }

    fn read_field(&self, field: Field, intid: u64, scope: Scope) -> u64 {
        let Some(i) = Self::in_scope(intid, scope) else {
            return 0;
        };
        let irq = &self.irqs[i];
        match field {
            Field::Group => u64::from(irq.group1),
            Field::SetEnable | Field::ClearEnable => u64::from(irq.enabled),
            Field::SetPending | Field::ClearPending => u64::from(irq.pending()),
            Field::SetSgiPending | Field::ClearSgiPending => u64::from(irq.pending()),
            Field::SetActive | Field::ClearActive => u64::from(irq.active),
            Field::Priority => u64::from(irq.priority),
            Field::Config => match irq.trigger {
                Trigger::Edge => 0b10,
                Trigger::Level => 0b00,
            },
            Field::Target if i < 32 => 1,
            Field::Target => irq.route & 1,
            Field::Route => irq.route,
        }
    }

    fn write_field(&mut self, field: Field, intid: u64, value: u64, scope: Scope) {
        let Some(i) = Self::in_scope(intid, scope) else {
            return;
        };
        let set = value & 1 != 0;
        // GICv2: SGI pending bits are set and cleared through [CS]PENDSGIR.
        let v2_sgi = self.version == GicVersion::V2 && i < 16;
        let irq = &mut self.irqs[i];
        match field {
            Field::Group => irq.group1 = set,
            Field::SetEnable if set => irq.enabled = true,
            Field::ClearEnable if set => irq.enabled = false,
            Field::SetPending if set && !v2_sgi => irq.latch = true,
            Field::ClearPending if set && !v2_sgi => irq.clear_pending(),
            Field::SetSgiPending if set => irq.latch = true,
            Field::ClearSgiPending if set => irq.clear_pending(),
            Field::SetActive if set => irq.active = true,
            Field::ClearActive if set => irq.active = false,
            Field::Priority => irq.priority = value as u8 & PRIORITY_MASK,
            // SGIs are always edge (ICFGR0 is read-only).
            Field::Config if i >= 16 => {
                irq.trigger = if value & 0b10 != 0 {
                    Trigger::Edge
                } else {
                    Trigger::Level
                };
            }
            Field::Target if i >= 32 => irq.route = value & 1,
            Field::Route if i >= 32 => irq.route = value & ROUTE_MASK,
            _ => return,
        }
        if let Some(what) = field.wrote() {
            self.note_write(i, what);
        }
        self.dirty = true;
    }
}
