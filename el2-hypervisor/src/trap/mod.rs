//! What a synchronous trap from the guest comes to: the decisions the trap
//! handlers make, as values, for the board to act on in one place.
//!
//! The board's handlers (`runtime/vm/traps.rs`) read and write the
//! hardware and the guest's registers; what the guest is owed is decided
//! here, where it is tested on the host:
//! - [`TrapOutcome`]: how the guest goes on (resume after the trapped
//!   instruction or where it is, take an exception, or stop the board),
//!   after hubris' `UserError` with the next task to run: who is to
//!   blame and what happens next, in one type.
//! - [`firmware`]: a PSCI/SMCCC decision, by the conduit that made it.
//! - [`sysreg`]: which trapped MSR/MRS is what (an SGI, an ID register,
//!   guest time, or UNDEFINED), and its log entry's source.
//! - [`frame`]: the guest's registers as the vectors save them.
//!
//! Failing over is not a trap's outcome: a handler that needs an input
//! asks the replica engine (`Epochs::input` on the board), which answers
//! with the value, the log's value, or the live one after a takeover.
//! When the engine cannot go on (a divergence, or the peer gone in
//! record/replay) the handler returns [`TrapOutcome::Replica`], and the
//! board stops where it acts on every outcome, with the status and lines
//! of [`crate::replica::stop`] (`ExitStatus::PeerGone` for a gone peer,
//! never the divergence status).

use crate::emul::exception::Fault;
use crate::emul::psci::PsciOutcome;
use crate::exit::ExitStatus;
use crate::replica::engine::Stop;

pub mod frame;
pub mod sysreg;

pub use frame::TrapFrame;

/// How the guest goes on after a synchronous trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum TrapOutcome {
    /// The hypervisor did what the trapped instruction asks: resume after
    /// it (the PC steps by ESR_EL2.IL, `emul::exception::skip_instruction`).
    Step,
    /// Resume at the return address the exception left, which is already
    /// past the instruction (an HVC's preferred return address).
    Resume,
    /// The guest is to blame: it takes this exception at the trapped
    /// instruction, as the architecture would have it.
    Inject(Fault),
    /// The guest asked for the end: stop the board.
    Stop(GuestStop),
    /// The replica engine cannot go on (a divergence, or the peer gone in
    /// record/replay): stop the board with [`Stop::status`].
    Replica(Stop),
}

impl From<Stop> for TrapOutcome {
    fn from(s: Stop) -> Self {
        TrapOutcome::Replica(s)
    }
}

/// Why the guest ends the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestStop {
    /// PSCI SYSTEM_OFF.
    PoweredOff,
    /// PSCI SYSTEM_RESET: the board has no reset to give, so it stops.
    Reset,
}

impl GuestStop {
    /// The board's exit status.
    pub const fn status(self) -> ExitStatus {
        match self {
            GuestStop::PoweredOff => ExitStatus::Success,
            GuestStop::Reset => ExitStatus::GuestReset,
        }
    }

    /// What the guest did, after "the guest" on the console.
    pub const fn what(self) -> &'static str {
        match self {
            GuestStop::PoweredOff => "powered off",
            GuestStop::Reset => "asked for a reset",
        }
    }
}

/// How the guest made a firmware call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// HVC: ELR_EL2 is already past it (Arm ARM D1.10.1, the preferred
    /// return address of an HVC is the next instruction).
    Hvc,
    /// A trapped SMC (HCR_EL2.TSC): ELR_EL2 is the SMC itself, which must
    /// be stepped over.
    Smc,
}

/// How the guest goes on after a firmware call the board answered as
/// `decision` says (the board writes a returned value to x0).
pub const fn firmware(decision: PsciOutcome, conduit: Conduit) -> TrapOutcome {
    match (decision, conduit) {
        (PsciOutcome::Return(_), Conduit::Hvc) => TrapOutcome::Resume,
        (PsciOutcome::Return(_), Conduit::Smc) => TrapOutcome::Step,
        (PsciOutcome::PowerOff, _) => TrapOutcome::Stop(GuestStop::PoweredOff),
        (PsciOutcome::Reset, _) => TrapOutcome::Stop(GuestStop::Reset),
    }
}

/// The syndrome's WFx instruction (ISS.TI, bits `[1:0]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wfx {
    Wfi,
    Wfe,
    /// FEAT_WFxT: with a timeout.
    Wfit,
    Wfet,
}

impl Wfx {
    /// The instruction an EC 0x01 syndrome names.
    pub const fn from_esr(esr: u64) -> Self {
        match esr & 0b11 {
            0 => Wfx::Wfi,
            1 => Wfx::Wfe,
            2 => Wfx::Wfit,
            _ => Wfx::Wfet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emul::psci;

    fn call(fid: u32) -> PsciOutcome {
        psci::handle([u64::from(fid), 0, 0, 0], 0)
    }

    #[test]
    fn a_returning_call_resumes_past_its_instruction() {
        let d = call(psci::function::PSCI_VERSION);
        assert_eq!(d, PsciOutcome::Return(psci::PSCI_VERSION_1_1));
        // The HVC's return address is past it; the SMC's is the SMC.
        assert_eq!(firmware(d, Conduit::Hvc), TrapOutcome::Resume);
        assert_eq!(firmware(d, Conduit::Smc), TrapOutcome::Step);
        // An unknown call returns too (NOT_SUPPORTED).
        assert_eq!(firmware(call(0xc500_0000), Conduit::Smc), TrapOutcome::Step);
        // What the log records: x0, NOT_SUPPORTED sign-extended.
        assert_eq!(d.result(), psci::PSCI_VERSION_1_1);
        assert_eq!(call(0xc500_0000).result(), u64::MAX);
    }

    #[test]
    fn power_off_and_reset_stop_with_their_own_statuses() {
        for conduit in [Conduit::Hvc, Conduit::Smc] {
            assert_eq!(
                firmware(call(psci::function::SYSTEM_OFF), conduit),
                TrapOutcome::Stop(GuestStop::PoweredOff)
            );
            assert_eq!(
                firmware(call(psci::function::SYSTEM_RESET), conduit),
                TrapOutcome::Stop(GuestStop::Reset)
            );
        }
        // A call that does not return logs 0.
        assert_eq!(call(psci::function::SYSTEM_OFF).result(), 0);
        assert_eq!(call(psci::function::SYSTEM_RESET).result(), 0);
        assert_eq!(GuestStop::PoweredOff.status(), ExitStatus::Success);
        assert_eq!(GuestStop::Reset.status(), ExitStatus::GuestReset);
        // The console lines the tests read ("the guest powered off").
        assert_eq!(GuestStop::PoweredOff.what(), "powered off");
        assert_eq!(GuestStop::Reset.what(), "asked for a reset");
    }

    #[test]
    fn an_engine_stop_is_its_own_outcome() {
        assert_eq!(
            TrapOutcome::from(Stop::PeerGone),
            TrapOutcome::Replica(Stop::PeerGone)
        );
        assert_ne!(Stop::PeerGone.status(), GuestStop::PoweredOff.status());
    }

    #[test]
    fn wfx_kinds() {
        let esr = 0x01 << 26 | 1 << 25;
        assert_eq!(Wfx::from_esr(esr), Wfx::Wfi);
        assert_eq!(Wfx::from_esr(esr | 1), Wfx::Wfe);
        assert_eq!(Wfx::from_esr(esr | 2), Wfx::Wfit);
        assert_eq!(Wfx::from_esr(esr | 3), Wfx::Wfet);
    }
}
