//! The guest-state fingerprint taken at every epoch boundary: both boards
//! hash the same things in the same order, so equal fingerprints mean the
//! same vCPU state (and, round-robin, the same memory).

/// The vCPU state that is hashed: general registers, PC, PSTATE and the
/// EL1 system registers that define the guest's context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuState {
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
    /// EL1 registers in [`EL1_REGISTERS`] order.
    pub el1: [u64; EL1_REGISTER_COUNT],
}

/// The EL1 registers in the fingerprint, by name (the arch layer reads
/// them in this order).
pub const EL1_REGISTERS: [&str; EL1_REGISTER_COUNT] = [
    "SP_EL0",
    "SP_EL1",
    "ELR_EL1",
    "SPSR_EL1",
    "SCTLR_EL1",
    "TTBR0_EL1",
    "TTBR1_EL1",
    "TCR_EL1",
    "MAIR_EL1",
    "VBAR_EL1",
    "TPIDR_EL1",
    "TPIDR_EL0",
    "TPIDRRO_EL0",
    "CONTEXTIDR_EL1",
    "ESR_EL1",
    "FAR_EL1",
    "CPACR_EL1",
    "CNTKCTL_EL1",
];
pub const EL1_REGISTER_COUNT: usize = 18;

/// A word-wise hash (FNV-1a over 64-bit words): cheap enough to run at
/// every boundary under emulation.
#[derive(Clone, Copy, Debug)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprint {
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    pub fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }
    pub fn words(&mut self, ws: &[u64]) {
        for &w in ws {
            self.word(w);
        }
    }
    pub const fn finish(&self) -> u64 {
        self.0
    }

    /// Hashes a vCPU state.
    pub fn vcpu(&mut self, s: &VcpuState) {
        self.words(&s.x);
        self.word(s.pc);
        self.word(s.pstate);
        self.words(&s.el1);
    }
}

/// Which slice of guest memory epoch `epoch` hashes: guest RAM is cut into
/// `slice`-byte pieces visited round-robin. Returns (offset, len).
pub const fn memory_slice(epoch: u64, ram_size: u64, slice: u64) -> (u64, u64) {
    if ram_size == 0 || slice == 0 {
        return (0, 0);
    }
    let pieces = ram_size.div_ceil(slice);
    let offset = (epoch % pieces) * slice;
    let len = if offset + slice > ram_size {
        ram_size - offset
    } else {
        slice
    };
    (offset, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_register_change_changes_the_fingerprint() {
        let base = VcpuState::default();
        let h = |s: &VcpuState| {
            let mut f = Fingerprint::new();
            f.vcpu(s);
            f.finish()
        };
        let mut s = base;
        s.x[17] = 1;
        assert_ne!(h(&base), h(&s));
        let mut s = base;
        s.el1[EL1_REGISTER_COUNT - 1] = 1;
        assert_ne!(h(&base), h(&s));
        assert_eq!(h(&base), h(&VcpuState::default()));
    }

    #[test]
    fn slices_cover_ram_round_robin() {
        assert_eq!(memory_slice(0, 10_000, 4096), (0, 4096));
        assert_eq!(memory_slice(2, 10_000, 4096), (8192, 1808));
        assert_eq!(memory_slice(3, 10_000, 4096), (0, 4096));
        assert_eq!(memory_slice(5, 0, 4096), (0, 0));
    }
}
