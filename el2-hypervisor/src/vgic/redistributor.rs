//! The GICv3 redistributor of the one vCPU: RD_base (64 KiB) then SGI_base
//! (64 KiB at 0x10000). IHI 0069H §12.10 (register map) and §12.11
//! (register descriptions).

use super::access::{self, Entry, W1, W4, W8};
use super::distributor::{IIDR, PIDR2_V3};
use super::groups::{Field, Scope};
use super::{GICR_SIZE, Vgic, VgicError};

/// GICR_TYPER: Last `[4]` = 1 (the only redistributor), Processor_Number
/// `[23:8]` = 0, PPInum `[31:27]` = 0 (16 PPIs), Affinity_Value `[63:32]`; no
/// LPIs (PLPIS `[0]` = 0), no GICv4 (VLPIS `[1]` = 0).
const TYPER_LAST: u64 = 1 << 4;

/// GICR_WAKER: ProcessorSleep `[1]` (RW) and ChildrenAsleep `[2]` (RO, follows
/// ProcessorSleep at once: Linux writes ProcessorSleep=0 and polls for
/// ChildrenAsleep=0, or the reverse before powering down).
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// Offset of the SGI_base frame.
const SGI_BASE: u64 = 0x1_0000;

#[derive(Clone, Copy, Debug)]
enum Gicr {
    Iidr,
    Typer,
    Waker,
    Pidr2,
    /// Implemented as RAZ/WI: GICR_CTLR (no LPIs: EnableLPIs RAZ/WI, RWP
    /// reads 0), GICR_STATUSR, GICR_IGRPMODR0 (DS=1), GICR_NSACR (DS=1).
    RazWi,
    Fields(Field),
}

/// The register map, IHI 0069H §12.10.
const TABLE: &[Entry<Gicr>] = &[
    Entry::new(0x0000, 4, W4, Gicr::RazWi), // GICR_CTLR
    Entry::new(0x0004, 4, W4, Gicr::Iidr),
    Entry::new(0x0008, 8, W4 | W8, Gicr::Typer),
    Entry::new(0x0010, 4, W4, Gicr::RazWi), // GICR_STATUSR
    Entry::new(0x0014, 4, W4, Gicr::Waker),
    Entry::new(0xffe8, 4, W4, Gicr::Pidr2),
    Entry::new(SGI_BASE + 0x0080, 4, W4, Gicr::Fields(Field::Group)),
    Entry::new(SGI_BASE + 0x0100, 4, W4, Gicr::Fields(Field::SetEnable)),
    Entry::new(SGI_BASE + 0x0180, 4, W4, Gicr::Fields(Field::ClearEnable)),
    Entry::new(SGI_BASE + 0x0200, 4, W4, Gicr::Fields(Field::SetPending)),
    Entry::new(SGI_BASE + 0x0280, 4, W4, Gicr::Fields(Field::ClearPending)),
    Entry::new(SGI_BASE + 0x0300, 4, W4, Gicr::Fields(Field::SetActive)),
    Entry::new(SGI_BASE + 0x0380, 4, W4, Gicr::Fields(Field::ClearActive)),
    Entry::new(
        SGI_BASE + 0x0400,
        0x20,
        W1 | W4,
        Gicr::Fields(Field::Priority),
    ),
    Entry::new(SGI_BASE + 0x0c00, 8, W4, Gicr::Fields(Field::Config)),
    Entry::new(SGI_BASE + 0x0d00, 4, W4, Gicr::RazWi), // GICR_IGRPMODR0
    Entry::new(SGI_BASE + 0x0e00, 4, W4, Gicr::RazWi), // GICR_NSACR
];

const SCOPE: Scope = Scope { first: 0, end: 32 };

impl Vgic {
    pub(super) fn gicr_read(&self, offset: u64, width: u8) -> Result<u64, VgicError> {
        access::check(offset, width, GICR_SIZE)?;
        let Some(hit) = access::find(TABLE, offset, width)? else {
            return Ok(0);
        };
        Ok(match hit.reg {
            Gicr::Iidr => u64::from(IIDR),
            Gicr::Typer => {
                let typer = (u64::from(self.affinity) << 32) | TYPER_LAST;
                (typer >> (hit.rel * 8)) & access::low_mask(u32::from(width) * 8)
            }
            Gicr::Waker if self.processor_sleep => {
                u64::from(WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP)
            }
            Gicr::Waker | Gicr::RazWi => 0,
            Gicr::Pidr2 => u64::from(PIDR2_V3),
            Gicr::Fields(field) => self.read_fields(field, hit.rel, width, SCOPE),
        })
    }

    pub(super) fn gicr_write(
        &mut self,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<(), VgicError> {
        access::check(offset, width, GICR_SIZE)?;
        let Some(hit) = access::find(TABLE, offset, width)? else {
            return Ok(());
        };
        match hit.reg {
            Gicr::Waker => self.processor_sleep = value as u32 & WAKER_PROCESSOR_SLEEP != 0,
            Gicr::Iidr | Gicr::Typer | Gicr::Pidr2 | Gicr::RazWi => {}
            Gicr::Fields(field) => self.write_fields(field, hit.rel, width, value, SCOPE),
        }
        Ok(())
    }
}
