//! The guest-state fingerprint taken at every epoch boundary: both boards
//! hash the same things in the same order, so equal fingerprints mean the
//! same vCPU state (and, round-robin, the same memory).

use super::digest::{FNV1A64_OFFSET, fnv1a64_word};

/// The vCPU state that is hashed: general registers, PC, PSTATE, the EL1
/// system registers that define the guest's context, its FP/SIMD
/// registers, and its (virtual) GIC CPU interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuState {
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
    /// EL1 registers in [`EL1_REGISTERS`] order.
    pub el1: [u64; EL1_REGISTER_COUNT],
    pub fp: FpState,
    pub cpu_interface: CpuInterfaceState,
}

/// The guest's FP/SIMD registers: the hypervisor never touches them (it is
/// built softfloat), so they hold the guest's values at every exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpState {
    /// V0..V31, each as its low then its high 64 bits.
    pub v: [u64; 64],
    pub fpcr: u64,
    pub fpsr: u64,
}

impl Default for FpState {
    fn default() -> Self {
        Self {
            v: [0; 64],
            fpcr: 0,
            fpsr: 0,
        }
    }
}

/// The state of the guest's virtual CPU interface that lives in EL2
/// registers rather than in the vGIC model: ICH_VMCR_EL2 (priority mask,
/// binary points, group enables, EOI mode) and the active-priority
/// registers ICH_AP0R<n>_EL2 / ICH_AP1R<n>_EL2 (unimplemented ones 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuInterfaceState {
    pub vmcr: u64,
    pub ap0r: [u64; 4],
    pub ap1r: [u64; 4],
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
        Self(FNV1A64_OFFSET)
    }
    pub fn word(&mut self, w: u64) {
        self.0 = fnv1a64_word(self.0, w);
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
        self.words(&s.fp.v);
        self.word(s.fp.fpcr);
        self.word(s.fp.fpsr);
        self.word(s.cpu_interface.vmcr);
        self.words(&s.cpu_interface.ap0r);
        self.words(&s.cpu_interface.ap1r);
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
        let changes: [fn(&mut VcpuState); 7] = [
            |s| s.fp.v[63] = 1,
            |s| s.fp.v[0] = 1,
            |s| s.fp.fpcr = 1 << 24,
            |s| s.fp.fpsr = 1,
            |s| s.cpu_interface.vmcr = 1,
            |s| s.cpu_interface.ap0r[0] = 1,
            |s| s.cpu_interface.ap1r[3] = 1,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut s = base;
            change(&mut s);
            assert_ne!(h(&base), h(&s), "change {i} is not hashed");
        }
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
