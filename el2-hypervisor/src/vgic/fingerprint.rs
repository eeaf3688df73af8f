//! The vGIC's part of the state fingerprint both boards compare at every
//! epoch boundary.
//!
//! Everything that can change what the guest sees is fed, in a fixed
//! order and little-endian, so the bytes do not depend on the host: the
//! distributor and redistributor controls, every interrupt's state, and
//! which LR holds which interrupt. Take it after the boundary's fill.

use core::hash::Hasher;

use super::{GicVersion, Vgic};
use crate::replica::digest::{FNV1A64_OFFSET, fnv1a64_continue};

/// FNV-1a, 64-bit (`replica::digest`'s) as a `Hasher`: a small, fixed,
/// keyless hash (no per-boot random key, unlike SipHash in std), so both
/// boards compute the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    pub const fn new() -> Self {
        Fnv1a64(FNV1A64_OFFSET)
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher for Fnv1a64 {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a64_continue(self.0, bytes);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Vgic {
    /// Feeds the whole vGIC state into `h`.
    pub fn fingerprint<H: Hasher>(&self, h: &mut H) {
        let version: u8 = match self.version {
            GicVersion::V2 => 2,
            GicVersion::V3 => 3,
        };
        h.write(b"vgic");
        h.write(&[version, u8::from(self.processor_sleep)]);
        h.write(&self.affinity.to_le_bytes());
        h.write(&self.ctlr.to_le_bytes());
        for irq in &self.irqs {
            let flags = u8::from(irq.enabled)
                | u8::from(irq.group1) << 1
                | u8::from(irq.trigger == super::Trigger::Edge) << 2
                | u8::from(irq.latch) << 3
                | u8::from(irq.line) << 4
                | u8::from(irq.active) << 5
                | u8::from(irq.lr_pending) << 6;
            let lr = irq.lr.map_or(0xff, |n| n);
            h.write(&[flags, irq.priority, lr]);
            h.write(&irq.route.to_le_bytes());
        }
    }

    /// [`Vgic::fingerprint`] through [`Fnv1a64`].
    pub fn snapshot_hash(&self) -> u64 {
        let mut h = Fnv1a64::new();
        self.fingerprint(&mut h);
        h.finish()
    }
}
