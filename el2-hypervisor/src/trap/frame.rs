//! The guest's registers at a trap, as `arch/aarch64/vectors.s` saves
//! them: x0-x30, ELR_EL2, SPSR_EL2 (the vectors' offsets depend on this
//! layout; the size is pinned below).

/// The interrupted context (272 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 272);

impl TrapFrame {
    /// Register `n` as an instruction's source operand: 31 is XZR, zero
    /// (in a load/store or MSR/MRS transfer register field, never SP).
    pub fn reg(&self, n: u8) -> u64 {
        self.x.get(usize::from(n)).copied().unwrap_or(0)
    }

    /// Writes register `n` as an instruction's destination: 31 (XZR)
    /// discards the value.
    pub fn set_reg(&mut self, n: u8, value: u64) {
        if let Some(r) = self.x.get_mut(usize::from(n)) {
            *r = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_31_is_xzr() {
        let mut f = TrapFrame::default();
        f.x[30] = 7;
        assert_eq!(f.reg(30), 7);
        f.set_reg(31, 0xdead);
        assert_eq!(f.reg(31), 0);
        assert_eq!(f, {
            let mut g = TrapFrame::default();
            g.x[30] = 7;
            g
        });
        f.set_reg(0, 1);
        assert_eq!(f.x[0], 1);
    }
}
