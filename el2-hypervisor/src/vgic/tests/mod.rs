//! Unit tests of the vGIC model, on the host.

mod access_widths;
mod boot;
mod determinism;
mod exit_lrs;
mod exit_order;
mod fuzz;
mod gicv2;
mod list_registers;
mod maintenance;
mod sgi;

use super::{GicVersion, LrFormat, LrState, Vgic, VgicConfig};

// GICD (IHI 0069H §12.8).
const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IROUTER: u64 = 0x6000;

// GICR (IHI 0069H §12.10).
const GICR_WAKER: u64 = 0x0014;
const SGI_BASE: u64 = 0x1_0000;
const GICR_ISENABLER0: u64 = SGI_BASE + 0x0100;
const GICR_IPRIORITYR0: u64 = SGI_BASE + 0x0400;

/// The virtual timer PPI, the PL011 SPI on QEMU virt.
const VTIMER: u32 = 27;
const UART: u32 = 33;

fn v3() -> Vgic {
    Vgic::new(VgicConfig {
        version: GicVersion::V3,
        affinity: 0,
    })
}

fn rd(g: &Vgic, offset: u64) -> u64 {
    g.distributor_read(offset, 4).unwrap()
}

fn wd(g: &mut Vgic, offset: u64, value: u64) {
    g.distributor_write(offset, 4, value).unwrap();
}

fn rr(g: &Vgic, offset: u64) -> u64 {
    g.redistributor_read(offset, 4).unwrap()
}

fn wr(g: &mut Vgic, offset: u64, value: u64) {
    g.redistributor_write(offset, 4, value).unwrap();
}

/// Sets one SPI up the way Linux does: group 1, priority, trigger, route
/// to affinity 0, enabled.
fn setup_spi(g: &mut Vgic, intid: u32, priority: u8, edge: bool) {
    let i = u64::from(intid);
    g.distributor_write(GICD_IPRIORITYR + i, 1, u64::from(priority))
        .unwrap();
    let cfg_reg = GICD_ICFGR + (i / 16) * 4;
    let bit = 2 * (i % 16) + 1;
    let old = rd(g, cfg_reg);
    wd(
        g,
        cfg_reg,
        if edge {
            old | 1 << bit
        } else {
            old & !(1 << bit)
        },
    );
    g.distributor_write(GICD_IROUTER + i * 8, 8, 0).unwrap();
    wd(g, GICD_ISENABLER + (i / 32) * 4, 1 << (i % 32));
}

/// Decodes each LR with the v3 format: (vINTID, state).
fn lr_view(lrs: &[u64]) -> Vec<(u32, LrState)> {
    lrs.iter()
        .map(|&raw| LrFormat::V3.decode(raw))
        .map(|lr| (lr.vintid, lr.state))
        .collect()
}
