//! The GICv3 distributor (GICD), 64 KiB: IHI 0069H §12.8 (register map)
//! and §12.9 (register descriptions).
//!
//! Affinity routing is always on, so the groups' fields for INTIDs 0-31
//! (IGROUPR0, ISENABLER0, ..., IPRIORITYR0-7, ICFGR0-1, IROUTER0-31) are
//! RAZ/WI here: SGIs and PPIs are the redistributor's.

use super::access::{self, Entry, W1, W4, W8};
use super::groups::{Field, Scope};
use super::{CTLR_ENABLE_GRP0, CTLR_ENABLE_GRP1, GICD_V3_SIZE, NR_IRQS, Vgic, VgicError};

/// GICD_CTLR (DS=1 layout): ARE `[4]` and DS `[6]` are RAO/WI; RWP `[31]` is 0
/// (writes take effect at once); E1NWF and nASSGIreq RAZ/WI.
const CTLR_ARE: u32 = 1 << 4;
const CTLR_DS: u32 = 1 << 6;

/// GICD_IIDR / GICR_IIDR: ProductID `[31:24]` 'T' (tandem), Variant and
/// Revision 0, Implementer `[11:0]` 0x43B (the JEP106 code KVM also shows).
/// Chosen to match none of Linux's GIC quirk table entries.
pub(super) const IIDR: u32 = 0x5400_043b;

/// GICD_PIDR2 / GICR_PIDR2: ArchRev `[7:4]` = 3 (GICv3), JEDEC `[3]` = 1,
/// DES_1 `[2:0]` = 0b011 (bits `[6:4]` of Arm's JEP106 code 0x3B).
pub(super) const PIDR2_V3: u32 = 0x3b;

/// GICD_TYPER: ITLinesNumber `[4:0]`, IDbits `[23:19]` = 9 (10-bit INTIDs),
/// A3V `[24]` = 1 (Aff3 routable), No1N `[25]` = 1. SecurityExtn `[10]` = 0
/// (one Security state), no LPIs, MBIs, ESPIs, RSS.
const TYPER: u32 = ((NR_IRQS / 32 - 1) as u32) | (9 << 19) | (1 << 24) | (1 << 25);

#[derive(Clone, Copy, Debug)]
enum Gicd {
    Ctlr,
    Typer,
    Iidr,
    Typer2,
    Pidr2,
    /// Implemented as RAZ/WI: GICD_STATUSR, IGRPMODR (DS=1), NSACR (DS=1).
    RazWi,
    Fields(Field),
}

/// The register map, IHI 0069H §12.8.
const TABLE: &[Entry<Gicd>] = &[
    Entry::new(0x0000, 4, W4, Gicd::Ctlr),
    Entry::new(0x0004, 4, W4, Gicd::Typer),
    Entry::new(0x0008, 4, W4, Gicd::Iidr),
    Entry::new(0x000c, 4, W4, Gicd::Typer2),
    Entry::new(0x0010, 4, W4, Gicd::RazWi), // GICD_STATUSR
    Entry::new(0x0080, 0x80, W4, Gicd::Fields(Field::Group)),
    Entry::new(0x0100, 0x80, W4, Gicd::Fields(Field::SetEnable)),
    Entry::new(0x0180, 0x80, W4, Gicd::Fields(Field::ClearEnable)),
    Entry::new(0x0200, 0x80, W4, Gicd::Fields(Field::SetPending)),
    Entry::new(0x0280, 0x80, W4, Gicd::Fields(Field::ClearPending)),
    Entry::new(0x0300, 0x80, W4, Gicd::Fields(Field::SetActive)),
    Entry::new(0x0380, 0x80, W4, Gicd::Fields(Field::ClearActive)),
    Entry::new(0x0400, 0x400, W1 | W4, Gicd::Fields(Field::Priority)),
    // 0x0800 GICD_ITARGETSR: RAZ/WI under affinity routing (unlisted).
    Entry::new(0x0c00, 0x100, W4, Gicd::Fields(Field::Config)),
    Entry::new(0x0d00, 0x80, W4, Gicd::RazWi), // GICD_IGRPMODR
    Entry::new(0x0e00, 0x100, W4, Gicd::RazWi), // GICD_NSACR
    Entry::new(0x6000, 0x2000, W4 | W8, Gicd::Fields(Field::Route)),
    Entry::new(0xffe8, 4, W4, Gicd::Pidr2),
];

const SCOPE: Scope = Scope {
    first: 32,
    end: NR_IRQS as u32,
};

impl Vgic {
    pub(super) fn gicd_read(&self, offset: u64, width: u8) -> Result<u64, VgicError> {
        access::check(offset, width, GICD_V3_SIZE)?;
        let Some(hit) = access::find(TABLE, offset, width)? else {
            return Ok(0);
        };
        Ok(match hit.reg {
            Gicd::Ctlr => u64::from(self.ctlr | CTLR_ARE | CTLR_DS),
            Gicd::Typer => u64::from(TYPER),
            Gicd::Iidr => u64::from(IIDR),
            Gicd::Typer2 | Gicd::RazWi => 0,
            Gicd::Pidr2 => u64::from(PIDR2_V3),
            Gicd::Fields(field) => self.read_fields(field, hit.rel, width, SCOPE),
        })
    }

    pub(super) fn gicd_write(
        &mut self,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<(), VgicError> {
        access::check(offset, width, GICD_V3_SIZE)?;
        let Some(hit) = access::find(TABLE, offset, width)? else {
            return Ok(());
        };
        match hit.reg {
            Gicd::Ctlr => {
                self.ctlr = value as u32 & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1);
                self.dirty = true;
            }
            Gicd::Typer | Gicd::Iidr | Gicd::Typer2 | Gicd::Pidr2 | Gicd::RazWi => {}
            Gicd::Fields(field) => self.write_fields(field, hit.rel, width, value, SCOPE),
        }
        Ok(())
    }
}
