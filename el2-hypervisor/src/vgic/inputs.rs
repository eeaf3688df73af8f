//! What the hypervisor feeds into the model: edges and line levels from
//! devices (buffered to the epoch boundary by the caller), and the SGIs
//! the guest raises through a trapped ICC_SGI1R_EL1 / ICC_ASGI1R_EL1 /
//! ICC_SGI0R_EL1.

use super::list_registers::Wrote;
use super::{GicVersion, IrqState, Trigger, Vgic, VgicError};

impl Vgic {
    /// An edge on `intid` (or a software pend of a level interrupt, which
    /// the guest's acknowledge consumes, like a GICD_ISPENDR write).
    ///
    /// # Errors
    /// [`VgicError::BadIntid`] if `intid >= NR_IRQS`.
    pub fn set_pending(&mut self, intid: u32) -> Result<(), VgicError> {
        let irq = self.irq_mut(intid)?;
        irq.latch = true;
        // A level interrupt's software pend must survive a sync that sees
        // the guest acknowledge the previous one.
        self.note_write(intid as usize, Wrote::Pending);
        self.dirty = true;
        Ok(())
    }

    /// The input line of `intid` is now `high`. A level interrupt is
    /// pending while its line is high; an interrupt the guest configured
    /// as edge latches on a rising line.
    ///
    /// # Errors
    /// [`VgicError::BadIntid`] if `intid >= NR_IRQS`.
    pub fn set_level(&mut self, intid: u32, high: bool) -> Result<(), VgicError> {
        let irq = self.irq_mut(intid)?;
        if irq.line == high {
            // The same level again (free mode sets every line at every
            // exit): nothing changes, and the next fill need not run.
            return Ok(());
        }
        if irq.trigger == Trigger::Edge && high {
            irq.latch = true;
        }
        irq.line = high;
        self.dirty = true;
        Ok(())
    }

    /// The guest wrote ICC_SGI1R_EL1 (`group1`) or ICC_SGI0R_EL1 (not
    /// `group1`) with `value`; a trapped ICC_ASGI1R_EL1 write is a Group 0
    /// one here ([`sgi_register`](crate::emul::sysreg::sgi_register) says
    /// which). Fields (IHI 0069H §12.2, ICC_SGI1R_EL1): TargetList `[15:0]`,
    /// Aff1 `[23:16]`, INTID `[27:24]`, Aff2 `[39:32]`, IRM `[40]`, RS
    /// `[47:44]`, Aff3 `[55:48]`.
    ///
    /// Pends SGI INTID if this vCPU is a target and the SGI is configured
    /// (GICR_IGROUPR0) in the group the register generates; an SGI of the
    /// other group is not generated ("Forwarding an SGI to a target PE").
    /// The SGI is pended whether or not it is enabled: enable and
    /// GICD_CTLR gate only its delivery (the next fill). A target is named
    /// by Aff3.Aff2.Aff1 and TargetList bit n for Aff0 = RS * 16 + n, so an
    /// RS other than ours is not us. IRM=1 means "every PE but me": there
    /// is none. A GICv2 guest has no such register: no effect.
    pub fn generate_sgi(&mut self, value: u64, group1: bool) {
        if self.version != GicVersion::V3 || (value >> 40) & 1 == 1 {
            return;
        }
        let field = |shift: u32| ((value >> shift) & 0xff) as u32;
        let aff = self.affinity;
        let aff0 = aff & 0xff;
        let matches = field(16) == (aff >> 8) & 0xff
            && field(32) == (aff >> 16) & 0xff
            && field(48) == aff >> 24
            && ((value >> 44) & 0xf) as u32 == aff0 / 16
            && (value >> (aff0 % 16)) & 1 == 1;
        let irq = &mut self.irqs[((value >> 24) & 0xf) as usize];
        if matches && irq.group1 == group1 {
            irq.latch = true;
            self.dirty = true;
        }
    }

    fn irq_mut(&mut self, intid: u32) -> Result<&mut IrqState, VgicError> {
        self.irqs
            .get_mut(intid as usize)
            .ok_or(VgicError::BadIntid { intid })
    }
}
