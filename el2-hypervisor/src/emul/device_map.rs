//! Where the guest's emulated devices answer: a fixed table of windows
//! built from the board description, and the dispatch of an access to the
//! device whose window holds it.
//!
//! After Bao's per-VM list of emulated ranges (`src/core/vm.c`,
//! `vm_emul_add_mem` / `vm_emul_get_mem`), without the heap: at most
//! [`MAX_WINDOWS`] windows, checked once when the table is built (none
//! empty, none wrapping, no two overlapping), so that a lookup is a plain
//! scan with exactly one answer.
//!
//! The guest sees, at the board's own addresses (the guest device tree
//! names them: `guest::dtb::from_board`), the GIC distributor, on GICv3 its
//! one redistributor frame pair, and the console PL011. Nothing else traps
//! as MMIO: stage 2 maps guest RAM only, so any other address is
//! [`DeviceFault::Unmapped`].

use core::fmt;

use board_support::{GicInfo, GicVersion as BoardGic, Region, Uart};

use super::device::{Completion, DeviceFault, GuestAccess, MmioDevice, WriteEffect};
use super::pl011::Pl011;
use super::timer_mem::{self, ControlFrame, CounterFrame};
use super::vtimer::GuestTimers;
use crate::esr::Width;
use crate::vgic::{GICD_V2_SIZE, GICD_V3_SIZE, GICR_SIZE, Vgic};
use replication_link::message::InputKind;

/// The most windows a table holds.
pub const MAX_WINDOWS: usize = 8;

/// An emulated device of the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceId {
    /// The vGIC's distributor (GICD).
    GicDistributor,
    /// The vGIC's redistributor frame pair (GICR: RD_base, SGI_base).
    GicRedistributor,
    /// The console UART (PL011).
    Console,
    /// The memory-mapped timer's control frame (CNTCTLBase).
    TimerControl,
    /// The memory-mapped timer's frame (CNTBase0): the guest's counter.
    TimerFrame,
}

impl DeviceId {
    pub const fn name(self) -> &'static str {
        match self {
            DeviceId::GicDistributor => "GIC distributor",
            DeviceId::GicRedistributor => "GIC redistributor",
            DeviceId::Console => "console UART",
            DeviceId::TimerControl => "timer control frame",
            DeviceId::TimerFrame => "timer frame",
        }
    }
}

/// One device's window of guest-physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub region: Region,
    pub device: DeviceId,
}

/// Why a table could not be built: the board description is inconsistent
/// (a configuration error, never the guest's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableError {
    /// A window of size 0.
    Empty(DeviceId),
    /// A window that runs past the top of the address space.
    Wraps(DeviceId),
    /// Two windows share an address.
    Overlap {
        device: DeviceId,
        region: Region,
        with: DeviceId,
        with_region: Region,
    },
    /// The same device twice.
    Duplicate(DeviceId),
    /// More than [`MAX_WINDOWS`] windows.
    Full(DeviceId),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TableError::Empty(d) => write!(f, "the {} window is empty", d.name()),
            TableError::Wraps(d) => {
                write!(f, "the {} window runs past the address space", d.name())
            }
            TableError::Overlap {
                device,
                region,
                with,
                with_region,
            } => write!(
                f,
                "the {} window {:#x}..{:#x} overlaps the {} window {:#x}..{:#x}",
                device.name(),
                region.base,
                region.end(),
                with.name(),
                with_region.base,
                with_region.end()
            ),
            TableError::Duplicate(d) => write!(f, "the {} has two windows", d.name()),
            TableError::Full(d) => write!(
                f,
                "no room for the {} window (at most {MAX_WINDOWS})",
                d.name()
            ),
        }
    }
}

/// The guest's device windows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceTable {
    windows: heapless::Vec<Window, MAX_WINDOWS>,
}

impl DeviceTable {
    /// A table with no windows.
    pub const fn new() -> Self {
        DeviceTable {
            windows: heapless::Vec::new(),
        }
    }

    /// The guest's windows on this board: the distributor (64 KiB on
    /// GICv3, 4 KiB on GICv2) and, on GICv3, the one redistributor frame
    /// pair (128 KiB) at the board's GIC addresses; the console PL011's
    /// 4 KiB at the board's console. (On GICv2 the guest's CPU interface
    /// is the hardware's virtual one, not emulated.) With `timer_mem`, the
    /// memory-mapped timer's two frames too, at their fixed addresses
    /// (`emul::timer_mem`).
    ///
    /// # Errors
    /// [`TableError`] when the windows are inconsistent.
    pub fn for_guest(gic: &GicInfo, console: &Uart, timer_mem: bool) -> Result<Self, TableError> {
        let mut t = DeviceTable::new();
        let gicd_size = match gic.version {
            BoardGic::V2 => GICD_V2_SIZE,
            BoardGic::V3 => GICD_V3_SIZE,
        };
        t.add(
            Region::new(gic.distributor.base, gicd_size),
            DeviceId::GicDistributor,
        )?;
        if gic.version == BoardGic::V3 {
            t.add(
                Region::new(gic.cpu_or_redistributor.base, GICR_SIZE),
                DeviceId::GicRedistributor,
            )?;
        }
        t.add(
            Region::new(console.region.base, board_support::pl011::WINDOW_SIZE),
            DeviceId::Console,
        )?;
        if timer_mem {
            t.add(timer_mem::CONTROL_WINDOW, DeviceId::TimerControl)?;
            t.add(timer_mem::FRAME_WINDOW, DeviceId::TimerFrame)?;
        }
        Ok(t)
    }

    /// Adds `device` at `region`.
    ///
    /// # Errors
    /// [`TableError`] for an empty or wrapping window, one that overlaps a
    /// window already in the table, a device already in it, or a full
    /// table; the table is unchanged.
    pub fn add(&mut self, region: Region, device: DeviceId) -> Result<(), TableError> {
        if region.size == 0 {
            return Err(TableError::Empty(device));
        }
        if region.base.checked_add(region.size).is_none() {
            return Err(TableError::Wraps(device));
        }
        for w in &self.windows {
            if w.device == device {
                return Err(TableError::Duplicate(device));
            }
            if w.region.overlaps(&region) {
                return Err(TableError::Overlap {
                    device,
                    region,
                    with: w.device,
                    with_region: w.region,
                });
            }
        }
        self.windows
            .push(Window { region, device })
            .map_err(|_| TableError::Full(device))
    }

    /// The device whose window holds `ipa`, and the offset in it.
    pub fn lookup(&self, ipa: u64) -> Option<(DeviceId, u64)> {
        self.windows
            .iter()
            .find(|w| w.region.contains(ipa))
            .map(|w| (w.device, ipa - w.region.base))
    }

    /// Where `device` answers, if it is in the table.
    pub fn window(&self, device: DeviceId) -> Option<Region> {
        self.windows
            .iter()
            .find(|w| w.device == device)
            .map(|w| w.region)
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }
}

/// The guest's emulated devices, and where each answers.
#[derive(Clone, Debug)]
pub struct Devices {
    table: DeviceTable,
    pub vgic: Vgic,
    pub uart: Pl011,
}

impl Devices {
    pub const fn new(table: DeviceTable, vgic: Vgic, uart: Pl011) -> Self {
        Devices { table, vgic, uart }
    }

    pub const fn table(&self) -> &DeviceTable {
        &self.table
    }

    /// Performs `access` on the device whose window holds its address.
    /// An access to the timer frame reads guest time once: `now(kind,
    /// ipa)`, with `kind` [`InputKind::CounterRead`] for a counter and
    /// [`InputKind::TimerRegRead`] for another of its registers (the
    /// caller hashes it into the epoch's inputs, as for a trapped
    /// counter register); nothing else calls it.
    ///
    /// # Errors
    /// [`DeviceFault::Unmapped`] when no window holds it, or the device's
    /// own refusal.
    pub fn access(
        &mut self,
        access: GuestAccess,
        timers: &mut GuestTimers,
        now: impl FnOnce(InputKind, u64) -> u64,
    ) -> Result<Completion, DeviceFault> {
        let unmapped = DeviceFault::Unmapped { ipa: access.ipa };
        let (device, offset) = self.table.lookup(access.ipa).ok_or(unmapped)?;
        let a = access.at_offset(offset);
        match device {
            DeviceId::GicDistributor => GicDistributor(&mut self.vgic).access(a),
            DeviceId::GicRedistributor => GicRedistributor(&mut self.vgic).access(a),
            DeviceId::Console => self.uart.access(a),
            DeviceId::TimerControl => {
                let (frame, frequency) = timer_mem::frame_of(timers).ok_or(unmapped)?;
                ControlFrame { frame, frequency }.access(a)
            }
            DeviceId::TimerFrame => {
                let (frame, frequency) = timer_mem::frame_of(timers).ok_or(unmapped)?;
                let kind = if timer_mem::is_counter(offset) {
                    InputKind::CounterRead
                } else {
                    InputKind::TimerRegRead
                };
                let now = now(kind, access.ipa);
                CounterFrame {
                    frame,
                    frequency,
                    now,
                }
                .access(a)
            }
        }
    }
}

/// The vGIC's distributor frame, as a device.
pub struct GicDistributor<'a>(pub &'a mut Vgic);

impl MmioDevice for GicDistributor<'_> {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DeviceFault> {
        Ok(self.0.distributor_read(offset, width as u8)?)
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<WriteEffect, DeviceFault> {
        self.0.distributor_write(offset, width as u8, value)?;
        Ok(WriteEffect::None)
    }
}

/// The vGIC's redistributor frame pair, as a device.
pub struct GicRedistributor<'a>(pub &'a mut Vgic);

impl MmioDevice for GicRedistributor<'_> {
    fn read(&mut self, offset: u64, width: Width) -> Result<u64, DeviceFault> {
        Ok(self.0.redistributor_read(offset, width as u8)?)
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Result<WriteEffect, DeviceFault> {
        self.0.redistributor_write(offset, width as u8, value)?;
        Ok(WriteEffect::None)
    }
}

#[cfg(test)]
mod tests;
