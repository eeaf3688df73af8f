//! EL2 control registers for running a guest, and EL1 registers the
//! hypervisor writes on the guest's behalf. Each value is explained where
//! it is built; every write is an `unsafe fn` because a wrong value breaks
//! isolation or the guest.

macro_rules! write_sysreg {
    ($name:expr, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the caller (an `unsafe fn` of this module) owns the reason.
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) v, options(nostack, preserves_flags)) };
    }};
}

use super::sysreg::read_sysreg;

/// HCR_EL2 for the guest (Arm ARM D23.2.48).
pub const HCR_GUEST: u64 = (1 << 0)   // VM: stage-2 translation on
    | (1 << 1)                          // SWIO: set/way invalidation is clean+invalidate
    | (1 << 3)                          // FMO: FIQs to EL2, virtual FIQs to EL1
    | (1 << 4)                          // IMO: IRQs to EL2, virtual IRQs (ICH_LR) to EL1
    | (1 << 5)                          // AMO: SErrors to EL2
    | (1 << 13)                         // TWI: trap WFI (ends an epoch later; idles here)
    | (1 << 14)                         // TWE: trap WFE
    | (1 << 18)                         // TID3: trap ID register reads (hide RNG, PMU, SVE, SME, ...)
    | (1 << 19)                         // TSC: trap SMC (firmware calls are ours)
    | (1 << 31)                         // RW: EL1 is AArch64
    | (1 << 40)                         // APK: pointer-auth key registers do not trap
    | (1 << 41); // API: pointer-auth instructions do not trap

/// CPTR_EL2 (E2H=0) for the guest (Arm ARM D23.2.33): FP/SIMD allowed
/// (TFP=0), SVE (TZ, bit 8), SME (TSM, bit 12) and the activity monitors
/// (TAM, bit 30) trapped; bits 13, 9 and 7:0 are RES1.
pub const CPTR_GUEST: u64 = 0xff | (1 << 8) | (1 << 9) | (1 << 12) | (1 << 13) | (1 << 30);

/// CNTHCTL_EL2 (E2H=0) for the guest (Arm ARM D23.2.26): EL1PCTEN (bit 0)
/// and EL1PCEN (bit 1) clear, so CNTPCT_EL0 reads and the physical timer
/// registers trap; with FEAT_ECV, EL1TVT (bit 13) traps the virtual timer
/// registers and EL1TVCT (bit 14) traps CNTVCT_EL0 reads. EVNTEN (bit 2)
/// clear: no event stream.
pub const fn cnthctl_guest(ecv: bool) -> u64 {
    if ecv { (1 << 13) | (1 << 14) } else { 0 }
}

/// MDCR_EL2 for the guest (Arm ARM D23.2.100): TPM (bit 6) and TPMCR
/// (bit 5) trap every PMU access, so the guest has no PMU; HPMN (bits 4:0)
/// gives EL1 the first `counters` counters in name only (HPMN = 0 is
/// CONSTRAINED UNPREDICTABLE without FEAT_HPMN0).
pub const fn mdcr_guest(counters: u64) -> u64 {
    (1 << 6) | (1 << 5) | (counters & 0x1f)
}

/// SCTLR_EL1 at guest entry: MMU and caches off as the Linux boot protocol
/// requires; only the RES1 bits of ARMv8.0 (29, 28, 23, 22, 20, 11) set.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// Number of PMU event counters (PMCR_EL0.N, bits 15:11).
pub fn pmu_counters() -> u64 {
    (read_sysreg!("PMCR_EL0") >> 11) & 0x1f
}

/// Sets up EL2 to run a guest: trap configuration, stage 2, identity.
///
/// # Safety
/// `vtcr` and `vttbr` must describe valid stage-2 tables that map only
/// guest memory; call once, before the first guest entry.
pub unsafe fn configure_for_guest(vtcr: u64, vttbr: u64, ecv: bool) {
    write_sysreg!("VTCR_EL2", vtcr);
    write_sysreg!("VTTBR_EL2", vttbr);
    write_sysreg!("CPTR_EL2", CPTR_GUEST);
    write_sysreg!("CNTHCTL_EL2", cnthctl_guest(ecv));
    write_sysreg!("CNTVOFF_EL2", 0);
    write_sysreg!("MDCR_EL2", mdcr_guest(pmu_counters()));
    write_sysreg!("HSTR_EL2", 0);
    // The guest's identity: the real MIDR, and MPIDR affinity 0.0.0.0.
    write_sysreg!("VPIDR_EL2", read_sysreg!("MIDR_EL1"));
    write_sysreg!("VMPIDR_EL2", GUEST_MPIDR);
    write_sysreg!("SCTLR_EL1", SCTLR_EL1_RESET);
    write_sysreg!("HCR_EL2", HCR_GUEST);
    // SAFETY: barriers and TLB maintenance only.
    unsafe { core::arch::asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack)) };
}

/// The MPIDR_EL1 the guest reads (VMPIDR_EL2): affinity 0.0.0.0, to match
/// the guest DTB's single cpu@0; bit 31 is RES1.
pub const GUEST_MPIDR: u64 = 1 << 31;

/// The hardware values the guest reads without a trap, or through a trap
/// that passes them on (`el2_hypervisor::replica::digest::Platform`).
pub struct PlatformRegisters {
    pub midr: u64,
    pub ctr: u64,
    pub dczid: u64,
    pub clidr: u64,
    pub cntfrq: u64,
}

/// Reads [`PlatformRegisters`].
pub fn platform_registers() -> PlatformRegisters {
    PlatformRegisters {
        midr: read_sysreg!("MIDR_EL1"),
        ctr: read_sysreg!("CTR_EL0"),
        dczid: read_sysreg!("DCZID_EL0"),
        clidr: read_sysreg!("CLIDR_EL1"),
        cntfrq: read_sysreg!("CNTFRQ_EL0"),
    }
}

/// PARange of this core (ID_AA64MMFR0_EL1 bits 3:0).
pub fn pa_range() -> u8 {
    (read_sysreg!("ID_AA64MMFR0_EL1") & 0xf) as u8
}

/// Reads a group-3 ID register (op0=3, op1=0, CRn=0, CRm=1..7) at EL2:
/// the real value, before [`el2_hypervisor::emul::id_regs`] hides features.
pub fn read_id_register(crm: u8, op2: u8) -> u64 {
    macro_rules! id_read {
        ($($crm:literal => [$($op2:literal),*]),*) => {
            match (crm, op2) {
                $($(($crm, $op2) => read_sysreg!(concat!("S3_0_C0_C", stringify!($crm), "_", stringify!($op2))),)*)*
                _ => 0,
            }
        };
    }
    id_read!(
        1 => [0, 1, 2, 3, 4, 5, 6, 7],
        2 => [0, 1, 2, 3, 4, 5, 6, 7],
        3 => [0, 1, 2, 3, 4, 5, 6, 7],
        4 => [0, 1, 2, 3, 4, 5, 6, 7],
        5 => [0, 1, 2, 3, 4, 5, 6, 7],
        6 => [0, 1, 2, 3, 4, 5, 6, 7],
        7 => [0, 1, 2, 3, 4, 5, 6, 7]
    )
}

/// The EL1 state an exception taken to EL1 needs (Arm ARM D1.10).
pub struct El1Exception {
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
    pub spsr: u64,
}

/// Writes ESR/FAR/ELR/SPSR_EL1 for an exception the hypervisor injects,
/// and returns VBAR_EL1.
///
/// # Safety
/// The caller then resumes the guest at its vector, as a real exception would.
pub unsafe fn deliver_to_el1(e: &El1Exception) -> u64 {
    write_sysreg!("ESR_EL1", e.esr);
    write_sysreg!("FAR_EL1", e.far);
    write_sysreg!("ELR_EL1", e.elr);
    write_sysreg!("SPSR_EL1", e.spsr);
    read_sysreg!("VBAR_EL1")
}

/// The guest's SCTLR_EL1 (what an injected exception's PSTATE depends on).
pub fn sctlr_el1() -> u64 {
    read_sysreg!("SCTLR_EL1")
}

/// Reads the EL1 registers of the state fingerprint, in
/// `el2_hypervisor::replica::fingerprint::EL1_REGISTERS` order.
pub fn read_el1_state() -> [u64; el2_hypervisor::replica::fingerprint::EL1_REGISTER_COUNT] {
    [
        read_sysreg!("SP_EL0"),
        read_sysreg!("SP_EL1"),
        read_sysreg!("ELR_EL1"),
        read_sysreg!("SPSR_EL1"),
        read_sysreg!("SCTLR_EL1"),
        read_sysreg!("TTBR0_EL1"),
        read_sysreg!("TTBR1_EL1"),
        read_sysreg!("TCR_EL1"),
        read_sysreg!("MAIR_EL1"),
        read_sysreg!("VBAR_EL1"),
        read_sysreg!("TPIDR_EL1"),
        read_sysreg!("TPIDR_EL0"),
        read_sysreg!("TPIDRRO_EL0"),
        read_sysreg!("CONTEXTIDR_EL1"),
        read_sysreg!("ESR_EL1"),
        read_sysreg!("FAR_EL1"),
        read_sysreg!("CPACR_EL1"),
        read_sysreg!("CNTKCTL_EL1"),
    ]
}

/// Reads the guest's FP/SIMD registers (V0-V31, FPCR, FPSR) for the
/// fingerprint. The hypervisor is built softfloat and never uses them, so
/// what they hold is the guest's; CPTR_EL2.TFP is 0, so EL2 may read them.
pub fn read_fp_state() -> el2_hypervisor::replica::fingerprint::FpState {
    let mut v = [0u64; 64];
    let (fpcr, fpsr): (u64, u64);
    // SAFETY: stores the 32 128-bit V registers into `v`, which is 512
    // bytes long and 8-byte aligned (alignment checking is off at EL2:
    // SCTLR_EL2.A = 0), and reads FPCR/FPSR; no register is written. The
    // directives let the assembler accept FP/SIMD in a softfloat build.
    unsafe {
        core::arch::asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{p}, #0]", "stp q2, q3, [{p}, #32]",
            "stp q4, q5, [{p}, #64]", "stp q6, q7, [{p}, #96]",
            "stp q8, q9, [{p}, #128]", "stp q10, q11, [{p}, #160]",
            "stp q12, q13, [{p}, #192]", "stp q14, q15, [{p}, #224]",
            "stp q16, q17, [{p}, #256]", "stp q18, q19, [{p}, #288]",
            "stp q20, q21, [{p}, #320]", "stp q22, q23, [{p}, #352]",
            "stp q24, q25, [{p}, #384]", "stp q26, q27, [{p}, #416]",
            "stp q28, q29, [{p}, #448]", "stp q30, q31, [{p}, #480]",
            "mrs {fpcr}, S3_3_C4_C4_0",
            "mrs {fpsr}, S3_3_C4_C4_1",
            p = in(reg) v.as_mut_ptr(),
            fpcr = out(reg) fpcr,
            fpsr = out(reg) fpsr,
            options(nostack, preserves_flags)
        )
    };
    el2_hypervisor::replica::fingerprint::FpState { v, fpcr, fpsr }
}

/// The build digest: FNV-1a 64 over the image's code and read-only data
/// (`__image_start..__rodata_end`), which never change at run time.
pub fn build_digest() -> u64 {
    unsafe extern "C" {
        static __image_start: u8;
        static __rodata_end: u8;
    }
    let start = core::ptr::addr_of!(__image_start) as usize;
    let end = core::ptr::addr_of!(__rodata_end) as usize;
    // SAFETY: both symbols come from the linker script and bound the loaded,
    // read-only part of our own image.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, end - start) };
    el2_hypervisor::replica::digest::fnv1a64(bytes)
}
