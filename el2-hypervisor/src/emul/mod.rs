//! Device and firmware emulation: what the guest reaches only through the hypervisor.
//!
//! Pure logic: the arch layer decodes each trap (data abort, SMC/HVC,
//! MSR/MRS) and calls in with plain values; nothing here touches a register
//! or the heap. Every answer is a function of the guest's requests and of
//! the inputs the hypervisor supplies (guest time, received bytes), so that
//! two boards fed the same inputs give the guest the same answers.
//!
//! - [`device`]: the one interface of an emulated MMIO device (a decoded
//!   access in, a value, a write's effect or a fault out);
//!   [`device_map`]: the table of windows built from the board that
//!   routes an access to its device.
//! - [`pl011`]: the console UART, behind unmapped stage-2 pages ([`mmio`]
//!   holds the access checks the devices share).
//! - [`psci`]: PSCI and SMCCC firmware calls; [`trng`] the SMCCC TRNG,
//!   for a guest whose early entropy would otherwise be the hardware
//!   counter.
//! - [`sysreg`]: MSR/MRS trap decoding and register encodings;
//!   [`timer_trap`] answers the counter and timer registers from
//!   [`vtimer`]; [`id_regs`] hides features in the ID registers.
//! - [`timer_mem`]: the memory-mapped generic timer a guest is given on a
//!   core whose counter reads cannot be trapped (no FEAT_ECV).
//! - [`exception`]: the exceptions the guest is made to take (syndrome,
//!   vector, entry PSTATE) and the PC step past an emulated instruction.

pub mod device;
pub mod device_map;
pub mod exception;
pub mod id_regs;
pub mod mmio;
pub mod pl011;
pub mod psci;
pub mod sysreg;
pub mod timer_mem;
pub mod timer_trap;
pub mod trng;
pub mod vtimer;
