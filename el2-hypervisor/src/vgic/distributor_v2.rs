//! The GICv2 distributor (GIC-400, Raspberry Pi 4), 4 KiB, one CPU
//! interface: IHI 0048B §4.1.2 (register map) and §4.3 (descriptions).
//!
//! No redistributor: SGI and PPI fields are in the distributor's banked
//! registers (n = 0), for CPU interface 0. SGIs are raised through
//! GICD_SGIR and their pending state is reached through C/SPENDSGIR (the
//! SGI bits of IS/ICPENDR0 are read-only). The GICD_CTLR layout without
//! Security Extensions: EnableGrp0 `[0]`, EnableGrp1 `[1]`.

use super::access::{self, Entry, W1, W4};
use super::distributor::IIDR;
use super::groups::{Field, Scope};
use super::{CTLR_ENABLE_GRP0, CTLR_ENABLE_GRP1, GICD_V2_SIZE, NR_IRQS, Vgic, VgicError};

/// GICD_TYPER: ITLinesNumber `[4:0]`, CPUNumber `[7:5]` = 0 (one interface),
/// SecurityExtn `[10]` = 0.
const TYPER: u32 = (NR_IRQS / 32 - 1) as u32;

/// ICPIDR2 (0xFE8): ArchRev `[7:4]` = 2 (GICv2), JEDEC `[3]`, DES_1 `[2:0]`.
const PIDR2_V2: u32 = 0x2b;

#[derive(Clone, Copy, Debug)]
enum GicdV2 {
    Ctlr,
    Typer,
    Iidr,
    Sgir,
    Pidr2,
    /// GICD_NSACR: RAZ/WI without Security Extensions.
    RazWi,
    Fields(Field),
}

/// The register map, IHI 0048B §4.1.2.
const TABLE: &[Entry<GicdV2>] = &[
    Entry::new(0x000, 4, W4, GicdV2::Ctlr),
    Entry::new(0x004, 4, W4, GicdV2::Typer),
    Entry::new(0x008, 4, W4, GicdV2::Iidr),
    Entry::new(0x080, 0x80, W4, GicdV2::Fields(Field::Group)),
    Entry::new(0x100, 0x80, W4, GicdV2::Fields(Field::SetEnable)),
    Entry::new(0x180, 0x80, W4, GicdV2::Fields(Field::ClearEnable)),
    Entry::new(0x200, 0x80, W4, GicdV2::Fields(Field::SetPending)),
    Entry::new(0x280, 0x80, W4, GicdV2::Fields(Field::ClearPending)),
    Entry::new(0x300, 0x80, W4, GicdV2::Fields(Field::SetActive)),
    Entry::new(0x380, 0x80, W4, GicdV2::Fields(Field::ClearActive)),
    Entry::new(0x400, 0x400, W1 | W4, GicdV2::Fields(Field::Priority)),
    Entry::new(0x800, 0x400, W1 | W4, GicdV2::Fields(Field::Target)),
    Entry::new(0xc00, 0x100, W4, GicdV2::Fields(Field::Config)),
    Entry::new(0xe00, 0x100, W4, GicdV2::RazWi),
    Entry::new(0xf00, 4, W4, GicdV2::Sgir),
    Entry::new(0xf10, 0x10, W1 | W4, GicdV2::Fields(Field::ClearSgiPending)),
    Entry::new(0xf20, 0x10, W1 | W4, GicdV2::Fields(Field::SetSgiPending)),
    Entry::new(0xfe8, 4, W4, GicdV2::Pidr2),
];

const SCOPE: Scope = Scope {
    first: 0,
    end: NR_IRQS as u32,
};

impl Vgic {
    pub(super) fn gicd_v2_read(&self, offset: u64, width: u8) -> Result<u64, VgicError> {
        access::check(offset, width, GICD_V2_SIZE)?;
        let Some(hit) = access::find(TABLE, offset, width)? else {
            return Ok(0);
        };
        Ok(match hit.reg {
            GicdV2::Ctlr => u64::from(self.ctlr),
            GicdV2::Typer => u64::from(TYPER),
            GicdV2::Iidr => u64::from(IIDR),
            GicdV2::Pidr2 => u64::from(PIDR2_V2),
            GicdV2::Sgir | GicdV2::RazWi => 0,
            GicdV2::Fields(field) => self.read_fields(field, hit.rel, width, SCOPE),
        })
    }

    pub(super) fn gicd_v2_write(
        &mut self,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<(), VgicError> {
        access::check(offset, width, GICD_V2_SIZE)?;
        let Some(hit) = access::find(TABLE, offset, width)? else {
            return Ok(());
        };
        match hit.reg {
            GicdV2::Ctlr => {
                self.ctlr = value as u32 & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1);
                self.dirty = true;
            }
            GicdV2::Sgir => self.write_sgir(value as u32),
            GicdV2::Typer | GicdV2::Iidr | GicdV2::Pidr2 | GicdV2::RazWi => {}
            GicdV2::Fields(field) => self.write_fields(field, hit.rel, width, value, SCOPE),
        }
        Ok(())
    }

    /// GICD_SGIR: TargetListFilter `[25:24]` (0: the list, 1: all but me,
    /// 2: me, 3: reserved), CPUTargetList `[23:16]`, SGIINTID `[3:0]`. Pends
    /// the SGI when CPU interface 0 is a target.
    fn write_sgir(&mut self, value: u32) {
        let to_me = match (value >> 24) & 0b11 {
            0 => (value >> 16) & 1 == 1,
            2 => true,
            _ => false,
        };
        if to_me {
            self.irqs[(value & 0xf) as usize].latch = true;
            self.dirty = true;
        }
    }
}
