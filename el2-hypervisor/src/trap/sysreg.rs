//! A trapped MSR/MRS (EC 0x18), routed: what it is for the guest, decided
//! from the decoded access alone, before the board touches a register.

use crate::emul::sysreg::{
    CNTPCT_EL0, CNTPCTSS_EL0, CNTVCT_EL0, CNTVCTSS_EL0, SgiGroup, SysReg, SysRegAccess,
    sgi_register,
};
use crate::emul::timer_trap;
use crate::stats::TrapKind;
use replication_link::message::InputKind;

/// What a trapped system-register access is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysRegRoute {
    /// A write of an SGI register: the vGIC generates the SGI. A function
    /// of the guest's own execution (the value it wrote, at this
    /// instruction): the same on both boards, not an input.
    Sgi(SgiGroup),
    /// A read of a feature ID register: the hardware's value, sanitised
    /// (`emul::id_regs`).
    IdRegister,
    /// A counter or timer register, answered at guest time, which is an
    /// environment input: logged as `input` from `source`
    /// ([`encoding`]); a read is counted as `read_kind`.
    Timer {
        input: InputKind,
        source: u64,
        read_kind: TrapKind,
    },
    /// A debug register (op0 = 2: MDSCR_EL1, breakpoints, watchpoints,
    /// the OS lock, the DCC), trapped by MDCR_EL2.TDA/TDOSA/TDRA: reads as
    /// zero, writes are ignored. The debug hardware is the hypervisor's
    /// (`replica::step_to_count`); a guest sees no debug state, the same on
    /// both boards, and cannot turn the hypervisor's stepping off.
    Debug,
    /// Nothing the guest may do: an undefined-instruction exception (a
    /// read of a write-only SGI register, a write of an ID register or a
    /// counter, any register not emulated).
    Undefined,
}

/// Routes `access`.
pub fn route(access: &SysRegAccess) -> SysRegRoute {
    let reg = access.reg();
    if let Some(group) = sgi_register(reg) {
        // Write-only registers (IHI 0069H §12.2): UNDEFINED to read.
        return if access.read {
            SysRegRoute::Undefined
        } else {
            SysRegRoute::Sgi(group)
        };
    }
    if reg.is_id_register() && access.read {
        return SysRegRoute::IdRegister;
    }
    if reg.op0 == 2 {
        return SysRegRoute::Debug;
    }
    if !timer_trap::handles(access) {
        return SysRegRoute::Undefined;
    }
    let read_kind = counter_or_timer(reg);
    SysRegRoute::Timer {
        input: if read_kind == TrapKind::CounterRead {
            InputKind::CounterRead
        } else {
            InputKind::TimerRegRead
        },
        source: encoding(reg),
        read_kind,
    }
}

/// A system register as `op0:op1:CRn:CRm:op2` packed into 16 bits (the
/// `source` of a log entry: part of the record/replay log format).
pub const fn encoding(r: SysReg) -> u64 {
    ((r.op0 as u64) << 14)
        | ((r.op1 as u64) << 11)
        | ((r.crn as u64) << 7)
        | ((r.crm as u64) << 3)
        | r.op2 as u64
}

/// How a trapped read of `reg` is counted: a counter, or another timer
/// register.
pub const fn counter_or_timer(reg: SysReg) -> TrapKind {
    if matches!(reg, CNTVCT_EL0 | CNTPCT_EL0 | CNTVCTSS_EL0 | CNTPCTSS_EL0) {
        TrapKind::CounterRead
    } else {
        TrapKind::TimerRegister
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emul::sysreg::{
        self as sr, CNTFRQ_EL0, CNTP_CTL_EL0, CNTV_CVAL_EL0, ICC_ASGI1R_EL1, ICC_SGI0R_EL1,
        ICC_SGI1R_EL1, ID_AA64PFR0_EL1,
    };

    fn access(r: SysReg, read: bool) -> SysRegAccess {
        SysRegAccess::new(r, 2, read)
    }

    fn timer(input: InputKind, r: SysReg, read_kind: TrapKind) -> SysRegRoute {
        SysRegRoute::Timer {
            input,
            source: encoding(r),
            read_kind,
        }
    }

    #[test]
    fn sgi_registers_are_written_never_read() {
        assert_eq!(
            route(&access(ICC_SGI1R_EL1, false)),
            SysRegRoute::Sgi(SgiGroup::Group1)
        );
        for r in [ICC_ASGI1R_EL1, ICC_SGI0R_EL1] {
            assert_eq!(route(&access(r, false)), SysRegRoute::Sgi(SgiGroup::Group0));
        }
        for r in [ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1] {
            assert_eq!(route(&access(r, true)), SysRegRoute::Undefined);
        }
    }

    #[test]
    fn debug_registers_read_as_zero_and_ignore_writes() {
        // MDSCR_EL1, OSLAR_EL1, DBGBCR0_EL1, MDCCSR_EL0.
        for r in [
            SysReg::new(2, 0, 0, 2, 2),
            SysReg::new(2, 0, 1, 0, 4),
            SysReg::new(2, 0, 0, 0, 5),
            SysReg::new(2, 3, 0, 1, 0),
        ] {
            assert_eq!(route(&access(r, true)), SysRegRoute::Debug);
            assert_eq!(route(&access(r, false)), SysRegRoute::Debug);
        }
        // Not the op0 = 3 registers beside them.
        assert_eq!(
            route(&access(SysReg::new(3, 0, 1, 0, 0), true)),
            SysRegRoute::Undefined
        );
    }

    #[test]
    fn id_registers_are_read_never_written() {
        assert_eq!(
            route(&access(ID_AA64PFR0_EL1, true)),
            SysRegRoute::IdRegister
        );
        // An unallocated encoding in the ID space reads (as the hardware's).
        assert_eq!(
            route(&access(SysReg::new(3, 0, 0, 7, 7), true)),
            SysRegRoute::IdRegister
        );
        assert_eq!(
            route(&access(ID_AA64PFR0_EL1, false)),
            SysRegRoute::Undefined
        );
    }

    #[test]
    fn guest_time_is_an_input_with_its_register_as_source() {
        for r in [CNTVCT_EL0, CNTPCT_EL0, sr::CNTVCTSS_EL0, sr::CNTPCTSS_EL0] {
            assert_eq!(
                route(&access(r, true)),
                timer(InputKind::CounterRead, r, TrapKind::CounterRead)
            );
            // The counters are read-only.
            assert_eq!(route(&access(r, false)), SysRegRoute::Undefined);
        }
        assert_eq!(
            route(&access(CNTFRQ_EL0, true)),
            timer(InputKind::TimerRegRead, CNTFRQ_EL0, TrapKind::TimerRegister)
        );
        assert_eq!(route(&access(CNTFRQ_EL0, false)), SysRegRoute::Undefined);
        for (r, read) in [(CNTV_CVAL_EL0, true), (CNTP_CTL_EL0, false)] {
            assert_eq!(
                route(&access(r, read)),
                timer(InputKind::TimerRegRead, r, TrapKind::TimerRegister)
            );
        }
    }

    #[test]
    fn anything_else_is_undefined() {
        // CNTHCTL_EL2, SCTLR_EL2: not emulated (debug registers are:
        // `debug_registers_read_as_zero_and_ignore_writes`).
        for r in [SysReg::new(3, 4, 14, 1, 0), SysReg::new(3, 4, 1, 0, 0)] {
            assert_eq!(route(&access(r, true)), SysRegRoute::Undefined);
            assert_eq!(route(&access(r, false)), SysRegRoute::Undefined);
        }
    }

    #[test]
    fn log_sources_are_the_packed_encoding() {
        // Part of the log format: these values are in every recording.
        assert_eq!(encoding(CNTVCT_EL0), 0xdf02);
        assert_eq!(encoding(CNTPCT_EL0), 0xdf01);
        assert_eq!(encoding(CNTV_CVAL_EL0), 0xdf1a);
        assert_eq!(encoding(CNTFRQ_EL0), 0xdf00);
    }
}
