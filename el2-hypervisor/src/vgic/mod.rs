//! The virtual GIC: the guest's distributor and redistributor, emulated in
//! software, and the list-register bookkeeping that delivers its interrupts.
//!
//! The guest's GICD and its one GICR frame pair are not mapped in stage 2:
//! every access arrives as a data abort and ends in
//! [`Vgic::distributor_read`] / [`Vgic::distributor_write`] or the
//! redistributor pair. The guest's CPU interface is the hardware's virtual
//! one (ICC_* redirected to ICV_* by HCR_EL2.IMO/FMO; the GICV frame on
//! GICv2), so it is not emulated: what this model produces is the contents
//! of the list registers (`ICH_LR<n>_EL2`, or GICH_LRn on GICv2).
//!
//! References: Arm IHI 0069H (GICv3/v4): §12.2 ICC_* and §12.4 ICH_*
//! registers, §12.8/§12.9 the Distributor, §12.10/§12.11 the
//! Redistributor. Arm IHI 0048B (GICv2): §4.3 the Distributor, §5.3 GICH.
//!
//! # Layout (after Bao's vgic: state per interrupt, registers by group)
//! - `state`: one interrupt's state: enable, pending (edge latch, level
//!   line), active, priority, group, trigger, route, owning list register.
//! - `groups`: the register groups GICD and GICR share (IGROUPR,
//!   IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER, IPRIORITYR, ICFGR, ITARGETSR,
//!   IROUTER): one field-access routine parameterised by bits per interrupt.
//! - `access`: width/alignment/frame checks and the register-table lookup.
//! - `inputs`: what the hypervisor feeds in (edges, lines, trapped SGIs).
//! - `distributor` (GICv3), `distributor_v2` (GICv2, GIC-400),
//!   `redistributor` (GICv3 RD_base + SGI_base): the register tables.
//! - `list_registers`: the LR codecs ([`LrFormat`]) and fill/sync;
//!   `maintenance`: when a fill asks for the maintenance interrupt (EOI
//!   bits, underflow) and what taking it quiets;
//!   `exit`: the LRs of one exit, read and written through [`crate::hw::Hw`]
//!   ([`ExitListRegisters`]).
//! - `fingerprint`: the state hash for divergence detection.
//!
//! # Choices
//! - One Security state: GICD_CTLR.DS is RAO/WI (KVM does the same). Then
//!   GICD_CTLR bit 0 is EnableGrp0 and bit 1 EnableGrp1; Linux's write of
//!   `ARE_NS | EnableGrp1A | EnableGrp1` (bits 4, 1, 0) enables both groups.
//!   IGRPMODR and NSACR are RAZ/WI, as the architecture says for DS=1.
//! - Affinity routing is always on (ARE RAO/WI): the GICv2-compatible mode
//!   of a GICv3 distributor is not modelled; GICD's banked SGI/PPI
//!   registers are RAZ/WI and SGIs/PPIs live in the redistributor.
//! - No LPIs, ITS, MBIs, extended SPI/PPI ranges or 1-of-N routing.
//! - 5 priority bits (GIC-400, QEMU's virtual CPU interface): IPRIORITYR
//!   keeps bits `[7:3]`, so the GICv2 LR's 5-bit priority loses nothing.
//! - GICR_WAKER: ProcessorSleep is stored and ChildrenAsleep follows it at
//!   once. Sleep does not gate delivery (the hypervisor wakes a WFI'ing vCPU).
//! - An SPI is delivered only if routed to the vCPU: IROUTER equal to the
//!   configured affinity (v3), ITARGETSR bit 0 set (v2).
//! - An unimplemented or reserved offset is RAZ/WI at any width; an
//!   implemented register refuses widths the architecture does not give it
//!   (byte access only for IPRIORITYR/ITARGETSR/C/SPENDSGIR, 64-bit only
//!   for IROUTER and GICR_TYPER, no halfword anywhere): [`VgicError`].
//!
//! # Determinism
//! The list-register contents [`Vgic::fill_list_registers`] writes are a
//! pure function of the model's state: candidates are taken by (active
//! first, then lowest priority value, then lowest INTID) into free LRs in
//! ascending index; a pending-only entry is evicted only by a candidate of
//! strictly higher priority (the least urgent, highest INTID goes first).
//! Both boards, given the same inputs at the same guest instruction,
//! inject the same interrupts into the same LRs. There is no heap, no hash
//! map, no clock, no randomness in here.
//!
//! # How the arch layer drives it
//! - Every exit, before anything else touches the model (before the
//!   trapped GICD/GICR access is emulated, so that it sees what the guest
//!   did to its LRs in hardware, such as an acknowledge):
//!   [`Vgic::sync_from_list_registers`] with the LRs just read. It is
//!   idempotent, so a sync at an asynchronous exit (a physical IRQ) that
//!   only one board takes changes nothing a later synchronous exit sees.
//!   A second sync with the same values after a GICD/GICR write, before
//!   the fill, does not undo the write.
//! - Fill ([`Vgic::fill_list_registers`]) only at a synchronous exit, one
//!   both boards take at the same guest instruction (a trap, the exact
//!   epoch boundary), after that exit's sync; write back every LR it
//!   returns that differs from what the sync read, zeros included
//!   (`ExitListRegisters::fill`). It must follow any GICD/GICR access
//!   (`offset = IPA - frame base`, `width = esr::Width as u8`) and any
//!   trapped ICC_SGI1R_EL1 write ([`Vgic::generate_sgi`]); it may follow
//!   any other synchronous exit. Never at an asynchronous exit: that would
//!   inject at an instruction the other board does not stop at. The one
//!   exception is the maintenance interrupt ([`maintenance`]), which the
//!   guest's own deactivation raises: quiet it ([`quiet_maintenance`]),
//!   sync, fill.
//! - External inputs ([`Vgic::set_pending`], [`Vgic::set_level`]) only at
//!   epoch boundaries, the same on both boards (the backup's from the log):
//!   sync, inputs, fill, then [`Vgic::fingerprint`].
//! - [`Vgic::needs_fill`] says whether the model changed since the last
//!   fill: it must be false whenever the guest is entered.

mod access;
mod distributor;
mod distributor_v2;
mod exit;
mod fingerprint;
mod groups;
mod inputs;
mod list_registers;
pub mod maintenance;
mod redistributor;
mod state;

#[cfg(test)]
mod tests;

use core::fmt;

pub use exit::{ExitListRegisters, quiet_maintenance};
pub use fingerprint::Fnv1a64;
use list_registers::LrWrites;
pub use list_registers::{ListRegister, LrFormat, LrState};
pub use maintenance::Maintenance;
pub use state::{IrqState, Trigger};

/// Interrupts modelled: INTIDs `0..NR_IRQS` (SGIs 0-15, PPIs 16-31, SPIs
/// 32 and up). A multiple of 32; GICD_TYPER.ITLinesNumber reports it.
/// 256 covers the GIC-400 of the Raspberry Pi 4 and every device QEMU
/// virt gives the guest.
pub const NR_IRQS: usize = 256;

/// The most list registers the model tracks (ICH_VTR_EL2.ListRegs allows
/// 16; GIC-400 and QEMU have 4). Extra LRs the caller passes are zeroed.
pub const MAX_LIST_REGISTERS: usize = 16;

/// Size of the GICv3 distributor frame (IHI 0069H §12.8).
pub const GICD_V3_SIZE: u64 = 0x1_0000;
/// Size of the GICv2 distributor frame (IHI 0048B §4.1.2).
pub const GICD_V2_SIZE: u64 = 0x1000;
/// Size of one GICv3 redistributor: RD_base then SGI_base (IHI 0069H §12.10).
pub const GICR_SIZE: u64 = 0x2_0000;

/// Which GIC the guest is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GicVersion {
    /// GICv2 (GIC-400): a 4 KiB GICD, no redistributor, GICH_LRn.
    V2,
    /// GICv3: a 64 KiB GICD, one 128 KiB GICR frame pair, `ICH_LR<n>_EL2`.
    V3,
}

/// What the model is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VgicConfig {
    pub version: GicVersion,
    /// The vCPU's affinity, Aff3:Aff2:Aff1:Aff0 packed as in GICR_TYPER
    /// `[63:32]` (bits `[31:24]` Aff3 ... `[7:0]` Aff0). Must match the MPIDR the
    /// guest reads (VMPIDR_EL2): Linux matches it against GICR_TYPER and
    /// writes it into every IROUTER.
    pub affinity: u32,
}

/// Why an access or a request was refused.
///
/// The access errors (all but [`VgicError::BadIntid`]) are the guest's
/// doing: answer them with a synchronous external abort injected into the
/// guest. `BadIntid` is the hypervisor's own bug: stop the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VgicError {
    /// The width is not 1, 2, 4 or 8 bytes.
    BadWidth { width: u8 },
    /// The offset is not a multiple of the width.
    Misaligned { offset: u64, width: u8 },
    /// The access does not lie inside the frame.
    OutOfRange { offset: u64, width: u8 },
    /// The register there does not support this width (a byte access to
    /// GICD_CTLR, a 64-bit access to a 32-bit register, any halfword).
    UnsupportedWidth { offset: u64, width: u8 },
    /// This GIC version has no such frame (GICv2 has no redistributor).
    NoSuchFrame,
    /// The hypervisor named an INTID the model does not have.
    BadIntid { intid: u32 },
}

impl VgicError {
    /// True when the guest caused it (inject an abort); false when the
    /// hypervisor did (stop).
    pub const fn is_guest_fault(&self) -> bool {
        !matches!(self, VgicError::BadIntid { .. })
    }
}

impl fmt::Display for VgicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VgicError::BadWidth { width } => write!(f, "{width}-byte access"),
            VgicError::Misaligned { offset, width } => {
                write!(f, "{width}-byte access at unaligned offset {offset:#x}")
            }
            VgicError::OutOfRange { offset, width } => {
                write!(f, "{width}-byte access at {offset:#x} outside the frame")
            }
            VgicError::UnsupportedWidth { offset, width } => {
                write!(
                    f,
                    "{width}-byte access not supported by the register at {offset:#x}"
                )
            }
            VgicError::NoSuchFrame => f.write_str("this GIC version has no such frame"),
            VgicError::BadIntid { intid } => write!(f, "INTID {intid} is not modelled"),
        }
    }
}

/// GICD_CTLR EnableGrp0 (bit 0) and EnableGrp1 (bit 1), DS=1 layout.
const CTLR_ENABLE_GRP0: u32 = 1 << 0;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;

/// The virtual GIC of the one vCPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vgic {
    version: GicVersion,
    affinity: u32,
    /// GICD_CTLR group enables ([`CTLR_ENABLE_GRP0`], [`CTLR_ENABLE_GRP1`]).
    ctlr: u32,
    /// GICR_WAKER.ProcessorSleep.
    processor_sleep: bool,
    irqs: [IrqState; NR_IRQS],
    /// Which INTID each list register holds.
    lr_owner: [Option<u16>; MAX_LIST_REGISTERS],
    /// LRs whose interrupt a write changed since the last fill: a sync
    /// keeps the model's state for them. Always empty after a fill, so
    /// the fingerprint (taken after the boundary's fill) leaves it out.
    lr_writes: LrWrites,
    /// The state changed since the last fill, or the list registers read
    /// at a sync were not the ones it wrote.
    dirty: bool,
    /// The list-register values the last fill wrote.
    filled: [u64; MAX_LIST_REGISTERS],
}

impl Vgic {
    /// A GIC at reset: everything disabled, nothing pending, priorities 0,
    /// SGIs edge and the rest level, all Group 1 on GICv3 (Group 0 on
    /// GICv2, where Linux leaves them), the redistributor asleep.
    pub const fn new(config: VgicConfig) -> Self {
        let group1 = matches!(config.version, GicVersion::V3);
        let mut irqs = [IrqState::reset(Trigger::Level, group1); NR_IRQS];
        let mut i = 0;
        while i < 16 {
            irqs[i] = IrqState::reset(Trigger::Edge, group1);
            i += 1;
        }
        Vgic {
            version: config.version,
            affinity: config.affinity,
            ctlr: 0,
            processor_sleep: true,
            irqs,
            lr_owner: [None; MAX_LIST_REGISTERS],
            lr_writes: LrWrites::NONE,
            dirty: false,
            filled: [0; MAX_LIST_REGISTERS],
        }
    }

    pub const fn version(&self) -> GicVersion {
        self.version
    }

    /// The list-register encoding that goes with the GIC version.
    pub const fn lr_format(&self) -> LrFormat {
        match self.version {
            GicVersion::V2 => LrFormat::V2,
            GicVersion::V3 => LrFormat::V3,
        }
    }

    /// Size of the distributor frame the guest sees.
    pub const fn distributor_size(&self) -> u64 {
        match self.version {
            GicVersion::V2 => GICD_V2_SIZE,
            GicVersion::V3 => GICD_V3_SIZE,
        }
    }

    /// A guest read of `width` bytes at `offset` in the distributor.
    ///
    /// # Errors
    /// [`VgicError`] for a bad width, a misaligned or out-of-frame access,
    /// or a width the register does not support.
    pub fn distributor_read(&self, offset: u64, width: u8) -> Result<u64, VgicError> {
        match self.version {
            GicVersion::V3 => self.gicd_read(offset, width),
            GicVersion::V2 => self.gicd_v2_read(offset, width),
        }
    }

    /// A guest write of `width` bytes at `offset` in the distributor.
    ///
    /// # Errors
    /// As [`Vgic::distributor_read`]; a refused write changes nothing.
    pub fn distributor_write(
        &mut self,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<(), VgicError> {
        match self.version {
            GicVersion::V3 => self.gicd_write(offset, width, value),
            GicVersion::V2 => self.gicd_v2_write(offset, width, value),
        }
    }

    /// A guest read at `offset` in the redistributor frame pair (RD_base
    /// at 0, SGI_base at 0x10000).
    ///
    /// # Errors
    /// As [`Vgic::distributor_read`]; [`VgicError::NoSuchFrame`] on GICv2.
    pub fn redistributor_read(&self, offset: u64, width: u8) -> Result<u64, VgicError> {
        match self.version {
            GicVersion::V3 => self.gicr_read(offset, width),
            GicVersion::V2 => Err(VgicError::NoSuchFrame),
        }
    }

    /// A guest write at `offset` in the redistributor frame pair.
    ///
    /// # Errors
    /// As [`Vgic::redistributor_read`].
    pub fn redistributor_write(
        &mut self,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Result<(), VgicError> {
        match self.version {
            GicVersion::V3 => self.gicr_write(offset, width, value),
            GicVersion::V2 => Err(VgicError::NoSuchFrame),
        }
    }

    /// The state of `intid`, for inspection.
    pub fn irq(&self, intid: u32) -> Option<&IrqState> {
        self.irqs.get(intid as usize)
    }

    /// The INTID list register `n` holds, if any.
    pub fn list_register_owner(&self, n: usize) -> Option<u32> {
        self.lr_owner.get(n).copied().flatten().map(u32::from)
    }

    /// The model changed since the last [`Vgic::fill_list_registers`], or
    /// the guest changed a list register since (its acknowledge or EOI,
    /// seen by the sync): fill before entering the guest. When it is false
    /// a fill would write what the list registers already hold
    /// ([`ExitListRegisters::fill`] then skips it).
    pub const fn needs_fill(&self) -> bool {
        self.dirty
    }

    /// GICD_CTLR allows forwarding of this group.
    const fn group_enabled(&self, group1: bool) -> bool {
        let bit = if group1 {
            CTLR_ENABLE_GRP1
        } else {
            CTLR_ENABLE_GRP0
        };
        self.ctlr & bit != 0
    }

    /// IROUTER value that routes an SPI to this vCPU (Aff3 at `[39:32]`).
    const fn own_route(&self) -> u64 {
        ((self.affinity as u64 >> 24) << 32) | (self.affinity as u64 & 0x00ff_ffff)
    }

    /// The distributor would forward `intid` to this vCPU's CPU interface
    /// if it were pending: enabled, its group enabled, routed here.
    fn forwardable(&self, intid: usize) -> bool {
        let irq = &self.irqs[intid];
        let routed = intid < 32
            || match self.version {
                GicVersion::V3 => irq.route == self.own_route(),
                GicVersion::V2 => irq.route & 1 != 0,
            };
        irq.enabled && self.group_enabled(irq.group1) && routed
    }
}
