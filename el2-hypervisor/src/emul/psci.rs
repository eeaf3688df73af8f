//! Firmware calls the guest makes with SMC or HVC (trapped), answered by
//! the hypervisor: PSCI 1.1 (Arm DEN 0022D) and the SMCCC 1.1 architecture
//! calls (Arm DEN 0028), for a guest with exactly one vCPU.
//!
//! Choices, checked against Linux (`drivers/firmware/psci/psci.c`,
//! `arch/arm64/kernel/psci.c`):
//! - PSCI 1.1, so Linux asks PSCI_FEATURES before using optional calls;
//!   CPU_SUSPEND, SYSTEM_SUSPEND and SYSTEM_RESET2 are reported absent,
//!   which Linux accepts (it then uses WFI for idle and plain reset).
//! - PSCI_FEATURES(SMCCC_VERSION) = 0 and SMCCC_VERSION = 1.1, so Linux
//!   uses the SMCCC 1.1 path, but SMCCC_ARCH_FEATURES answers NOT_SUPPORTED
//!   for every architecture feature: Linux then never calls the Spectre
//!   workarounds (ARCH_WORKAROUND_1/2/3) or SOC_ID, whose results would
//!   differ between boards. It answers 0 only when asked about
//!   SMCCC_VERSION or itself, as the SMCCC requires of an implemented call.
//!   TRNG calls are refused here: a guest with the CP15 timer draws its
//!   early entropy from trapped counter reads. A guest with the
//!   memory-mapped timer is answered by `emul::trng` first (its random
//!   words logged as firmware results).
//! - CPU_ON: Linux only starts CPUs the device tree lists, and the guest's
//!   tree lists one, so it never asks. If asked anyway: ALREADY_ON for the
//!   vCPU's own MPIDR, INVALID_PARAMETERS for any other (the spec's answer
//!   for a CPU that does not exist; Linux reports "failed to boot" and goes
//!   on with one CPU).
//! - CPU_OFF on the only CPU: DENIED (the one error the call can return;
//!   Linux never offlines its last CPU).
//! - MIGRATE_INFO_TYPE = 2: no Trusted OS that needs migrating.
//!
//! The arch layer writes the returned value to x0 and leaves x1-x3 as they
//! were, on both boards, then advances the PC past the SMC.

/// Function identifiers (W0). `_32` / `_64` are the SMC32 and SMC64 forms.
pub mod function {
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    pub const SMCCC_ARCH_SOC_ID: u32 = 0x8000_0002;
    pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
    pub const SMCCC_ARCH_WORKAROUND_2: u32 = 0x8000_7fff;
    pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3fff;

    pub const PSCI_VERSION: u32 = 0x8400_0000;
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    pub const CPU_OFF: u32 = 0x8400_0002;
    pub const CPU_ON_32: u32 = 0x8400_0003;
    pub const CPU_ON_64: u32 = 0xc400_0003;
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
    pub const MIGRATE_32: u32 = 0x8400_0005;
    pub const MIGRATE_64: u32 = 0xc400_0005;
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    pub const MIGRATE_INFO_UP_CPU_32: u32 = 0x8400_0007;
    pub const MIGRATE_INFO_UP_CPU_64: u32 = 0xc400_0007;
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
    pub const SYSTEM_SUSPEND_32: u32 = 0x8400_000e;
    pub const SYSTEM_SUSPEND_64: u32 = 0xc400_000e;
    pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
    pub const SYSTEM_RESET2_64: u32 = 0xc400_0012;

    /// Arm True Random Number Generator firmware interface (DEN 0098).
    pub const TRNG_VERSION: u32 = 0x8400_0050;
    pub const TRNG_FEATURES: u32 = 0x8400_0051;
    pub const TRNG_GET_UUID: u32 = 0x8400_0052;
    pub const TRNG_RND_32: u32 = 0x8400_0053;
    pub const TRNG_RND_64: u32 = 0xc400_0053;
}

/// Return codes (PSCI section 5.2.2; SMCCC "NOT_SUPPORTED" is the same -1).
pub mod status {
    pub const SUCCESS: i32 = 0;
    pub const NOT_SUPPORTED: i32 = -1;
    pub const INVALID_PARAMETERS: i32 = -2;
    pub const DENIED: i32 = -3;
    pub const ALREADY_ON: i32 = -4;
}

/// PSCI version reported: 1.1 (major in [31:16], minor in [15:0]).
pub const PSCI_VERSION_1_1: u64 = 0x0001_0001;
/// SMCCC version reported: 1.1.
pub const SMCCC_VERSION_1_1: u64 = 0x0001_0001;
/// MIGRATE_INFO_TYPE: a Trusted OS is not present or needs no migration.
pub const MIGRATE_TYPE_NOT_REQUIRED: u64 = 2;
/// AFFINITY_INFO: the node is on.
pub const AFFINITY_ON: u64 = 0;
/// Affinity fields of an MPIDR (Aff3 [39:32], Aff2-Aff0 [23:0]); PSCI
/// requires the other bits of a target_cpu to be zero.
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// What the hypervisor does with a firmware call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciOutcome {
    /// Write this to x0 and resume the guest after the call.
    Return(u64),
    /// The guest asked to power the system off.
    PowerOff,
    /// The guest asked to reset the system.
    Reset,
}

impl PsciOutcome {
    /// The call's result as the log records it (`InputKind::FirmwareResult`):
    /// x0 of a call that returns, 0 for one that does not.
    pub const fn result(self) -> u64 {
        match self {
            PsciOutcome::Return(v) => v,
            PsciOutcome::PowerOff | PsciOutcome::Reset => 0,
        }
    }
}

const fn ret(status: i32) -> PsciOutcome {
    // Sign-extended: -1 reads as -1 whether the caller looks at W0 or X0.
    PsciOutcome::Return(status as i64 as u64)
}

/// Decides a firmware call. `args` is x0-x3 at the SMC/HVC; `vcpu_mpidr` is
/// the MPIDR the guest sees for its one CPU (VMPIDR_EL2).
pub fn handle(args: [u64; 4], vcpu_mpidr: u64) -> PsciOutcome {
    use function as f;
    // SMCCC: the function identifier is W0; SMC32 arguments are W1-W3.
    let fid = args[0] as u32;
    let smc32 = fid & (1 << 30) == 0;
    let arg = |i: usize| {
        if smc32 {
            args[i] & 0xffff_ffff
        } else {
            args[i]
        }
    };
    match fid {
        f::PSCI_VERSION => PsciOutcome::Return(PSCI_VERSION_1_1),
        f::PSCI_FEATURES => ret(features(args[1] as u32)),
        f::CPU_ON_32 | f::CPU_ON_64 => ret(cpu_on(arg(1), vcpu_mpidr)),
        f::CPU_OFF => ret(status::DENIED),
        f::AFFINITY_INFO_32 | f::AFFINITY_INFO_64 => affinity_info(arg(1), arg(2), vcpu_mpidr),
        f::MIGRATE_INFO_TYPE => PsciOutcome::Return(MIGRATE_TYPE_NOT_REQUIRED),
        f::SYSTEM_OFF => PsciOutcome::PowerOff,
        f::SYSTEM_RESET => PsciOutcome::Reset,
        f::SMCCC_VERSION => PsciOutcome::Return(SMCCC_VERSION_1_1),
        f::SMCCC_ARCH_FEATURES => ret(arch_features(args[1] as u32)),
        // CPU_SUSPEND, MIGRATE, SYSTEM_SUSPEND, SYSTEM_RESET2, TRNG and
        // anything unknown (SMCCC: "Unknown Function Identifier" is -1).
        _ => ret(status::NOT_SUPPORTED),
    }
}

/// PSCI_FEATURES: 0 for a function this module implements (none of them
/// has feature flags), NOT_SUPPORTED for the rest.
const fn features(fid: u32) -> i32 {
    use function as f;
    match fid {
        f::PSCI_VERSION
        | f::PSCI_FEATURES
        | f::CPU_OFF
        | f::CPU_ON_32
        | f::CPU_ON_64
        | f::AFFINITY_INFO_32
        | f::AFFINITY_INFO_64
        | f::MIGRATE_INFO_TYPE
        | f::SYSTEM_OFF
        | f::SYSTEM_RESET
        | f::SMCCC_VERSION => status::SUCCESS,
        _ => status::NOT_SUPPORTED,
    }
}

/// SMCCC_ARCH_FEATURES: only the two calls every SMCCC 1.1 implementation
/// has (SMCCC_VERSION, SMCCC_ARCH_FEATURES itself, as TF-A answers); every
/// architecture feature (the Spectre workarounds, SOC_ID) is absent.
const fn arch_features(fid: u32) -> i32 {
    match fid {
        function::SMCCC_VERSION | function::SMCCC_ARCH_FEATURES => status::SUCCESS,
        _ => status::NOT_SUPPORTED,
    }
}

const fn cpu_on(target: u64, vcpu_mpidr: u64) -> i32 {
    if target & !MPIDR_AFFINITY_MASK == 0 && target == vcpu_mpidr & MPIDR_AFFINITY_MASK {
        status::ALREADY_ON
    } else {
        status::INVALID_PARAMETERS
    }
}

/// AFFINITY_INFO: the vCPU, and every affinity node that contains it, is
/// on; any other node does not exist.
const fn affinity_info(target: u64, lowest_level: u64, vcpu_mpidr: u64) -> PsciOutcome {
    // Affinity levels 0-3: Aff0 [7:0], Aff1 [15:8], Aff2 [23:16], Aff3 [39:32].
    let ignored = match lowest_level {
        0 => 0,
        1 => 0xff,
        2 => 0xffff,
        3 => 0xff_ffff,
        _ => return ret(status::INVALID_PARAMETERS),
    };
    let mask = MPIDR_AFFINITY_MASK & !ignored;
    if target & !MPIDR_AFFINITY_MASK == 0 && target & mask == vcpu_mpidr & mask {
        PsciOutcome::Return(AFFINITY_ON)
    } else {
        ret(status::INVALID_PARAMETERS)
    }
}

#[cfg(test)]
mod tests {
    use super::function as f;
    use super::*;

    /// MPIDR of a lone CPU: RES1 bit 31 (the U bit 30 clear), affinity 0.
    const MPIDR: u64 = 0x8000_0000;
    const NOT_SUPPORTED: PsciOutcome = PsciOutcome::Return(u64::MAX);

    fn call(fid: u32, x1: u64, x2: u64, x3: u64) -> PsciOutcome {
        handle([u64::from(fid), x1, x2, x3], MPIDR)
    }

    fn neg(status: i32) -> PsciOutcome {
        PsciOutcome::Return(status as i64 as u64)
    }

    #[test]
    fn versions() {
        assert_eq!(
            call(f::PSCI_VERSION, 0, 0, 0),
            PsciOutcome::Return(0x1_0001)
        );
        assert_eq!(
            call(f::SMCCC_VERSION, 0, 0, 0),
            PsciOutcome::Return(0x1_0001)
        );
    }

    #[test]
    fn the_function_id_is_w0() {
        let upper = handle(
            [0xdead_beef_0000_0000 | u64::from(f::PSCI_VERSION), 0, 0, 0],
            MPIDR,
        );
        assert_eq!(upper, PsciOutcome::Return(PSCI_VERSION_1_1));
    }

    #[test]
    fn psci_features() {
        for fid in [
            f::PSCI_VERSION,
            f::PSCI_FEATURES,
            f::CPU_ON_64,
            f::CPU_OFF,
            f::AFFINITY_INFO_64,
            f::MIGRATE_INFO_TYPE,
            f::SYSTEM_OFF,
            f::SYSTEM_RESET,
            f::SMCCC_VERSION,
        ] {
            assert_eq!(
                call(f::PSCI_FEATURES, fid.into(), 0, 0),
                PsciOutcome::Return(0),
                "{fid:#x}"
            );
        }
        for fid in [
            f::CPU_SUSPEND_64,
            f::SYSTEM_SUSPEND_64,
            f::SYSTEM_RESET2_64,
            f::MIGRATE_64,
            f::SMCCC_ARCH_FEATURES,
            f::TRNG_VERSION,
            0x8600_0000,
            0,
        ] {
            assert_eq!(
                call(f::PSCI_FEATURES, fid.into(), 0, 0),
                NOT_SUPPORTED,
                "{fid:#x}"
            );
        }
    }

    #[test]
    fn cpu_on_is_refused() {
        for fid in [f::CPU_ON_64, f::CPU_ON_32] {
            // Our own CPU, with or without the RES1 bit in the argument.
            assert_eq!(call(fid, 0, 0x4008_0000, 0), neg(status::ALREADY_ON));
            // A second CPU that does not exist.
            assert_eq!(
                call(fid, 1, 0x4008_0000, 0),
                neg(status::INVALID_PARAMETERS)
            );
            assert_eq!(
                call(fid, 0x100, 0x4008_0000, 0),
                neg(status::INVALID_PARAMETERS)
            );
        }
        // Bits outside the affinity fields make the target invalid.
        assert_eq!(
            call(f::CPU_ON_64, 0x100_0000_0000, 0, 0),
            neg(status::INVALID_PARAMETERS)
        );
        assert_eq!(
            call(f::CPU_ON_64, 0x0100_0000, 0, 0),
            neg(status::INVALID_PARAMETERS)
        );
        // SMC32 ignores the upper half of x1.
        assert_eq!(
            call(f::CPU_ON_32, 0xffff_ffff_0000_0000, 0, 0),
            neg(status::ALREADY_ON)
        );
        // A vCPU with Aff3 set is matched on Aff3 too.
        let mpidr = 0x8000_0000 | (2 << 32) | 0x0102;
        assert_eq!(
            handle([f::CPU_ON_64.into(), (2 << 32) | 0x0102, 0, 0], mpidr),
            neg(status::ALREADY_ON)
        );
    }

    #[test]
    fn cpu_off_of_the_last_cpu_is_denied() {
        assert_eq!(call(f::CPU_OFF, 0, 0, 0), neg(status::DENIED));
    }

    #[test]
    fn affinity_info() {
        for fid in [f::AFFINITY_INFO_64, f::AFFINITY_INFO_32] {
            assert_eq!(call(fid, 0, 0, 0), PsciOutcome::Return(AFFINITY_ON));
            assert_eq!(call(fid, 1, 0, 0), neg(status::INVALID_PARAMETERS));
            // At level 1 Aff0 is ignored: CPU 1's cluster is ours, and on.
            assert_eq!(call(fid, 1, 1, 0), PsciOutcome::Return(AFFINITY_ON));
            assert_eq!(call(fid, 0x100, 1, 0), neg(status::INVALID_PARAMETERS));
            assert_eq!(call(fid, 0, 4, 0), neg(status::INVALID_PARAMETERS));
        }
    }

    #[test]
    fn migrate_info_type() {
        assert_eq!(call(f::MIGRATE_INFO_TYPE, 0, 0, 0), PsciOutcome::Return(2));
        assert_eq!(call(f::MIGRATE_INFO_UP_CPU_64, 0, 0, 0), NOT_SUPPORTED);
        assert_eq!(call(f::MIGRATE_64, 0, 0, 0), NOT_SUPPORTED);
    }

    #[test]
    fn system_off_and_reset() {
        assert_eq!(call(f::SYSTEM_OFF, 0, 0, 0), PsciOutcome::PowerOff);
        assert_eq!(call(f::SYSTEM_RESET, 0, 0, 0), PsciOutcome::Reset);
        assert_eq!(call(f::SYSTEM_RESET2_64, 0, 0, 0), NOT_SUPPORTED);
        assert_eq!(call(f::SYSTEM_SUSPEND_64, 0x4000_0000, 0, 0), NOT_SUPPORTED);
        assert_eq!(call(f::CPU_SUSPEND_64, 0, 0x4000_0000, 0), NOT_SUPPORTED);
    }

    #[test]
    fn arch_features_are_all_absent() {
        for feature in [
            f::SMCCC_ARCH_WORKAROUND_1,
            f::SMCCC_ARCH_WORKAROUND_2,
            f::SMCCC_ARCH_WORKAROUND_3,
            f::SMCCC_ARCH_SOC_ID,
            f::TRNG_VERSION,
            f::PSCI_VERSION,
        ] {
            assert_eq!(
                call(f::SMCCC_ARCH_FEATURES, feature.into(), 0, 0),
                NOT_SUPPORTED
            );
        }
        // The discovery calls themselves exist.
        for feature in [f::SMCCC_VERSION, f::SMCCC_ARCH_FEATURES] {
            assert_eq!(
                call(f::SMCCC_ARCH_FEATURES, feature.into(), 0, 0),
                PsciOutcome::Return(0)
            );
        }
        // Called directly anyway, the workarounds are unknown functions.
        assert_eq!(call(f::SMCCC_ARCH_WORKAROUND_1, 0, 0, 0), NOT_SUPPORTED);
        assert_eq!(call(f::SMCCC_ARCH_SOC_ID, 0, 0, 0), NOT_SUPPORTED);
    }

    #[test]
    fn trng_is_refused() {
        for fid in [
            f::TRNG_VERSION,
            f::TRNG_FEATURES,
            f::TRNG_GET_UUID,
            f::TRNG_RND_32,
            f::TRNG_RND_64,
        ] {
            assert_eq!(call(fid, 64, 0, 0), NOT_SUPPORTED, "{fid:#x}");
        }
    }

    #[test]
    fn unknown_calls_return_minus_one() {
        // Vendor hypervisor service UID (Linux's KVM probe), a yielding call, garbage.
        for fid in [0x8600_ff01, 0x0400_0000, 0xffff_ffff, 0xc200_0000] {
            assert_eq!(
                call(fid, 0, 0, 0),
                PsciOutcome::Return(0xffff_ffff_ffff_ffff)
            );
        }
    }
}
