//! EL2 control registers for running a guest, and EL1 registers the
//! hypervisor writes on the guest's behalf. The values are built from named
//! fields in [`el2_hypervisor::regs`]; every write is in an `unsafe fn`
//! because a wrong value breaks isolation or the guest.

use super::sysreg::{read_sysreg, write_sysreg};
use el2_hypervisor::regs::{self, PMCR_EL0};

pub use el2_hypervisor::regs::GUEST_MPIDR;

/// SCTLR_EL1 at guest entry: MMU and caches off as the Linux boot protocol
/// requires; only the RES1 bits of ARMv8.0 (29, 28, 23, 22, 20, 11) set
/// (aarch64-cpu names none of them).
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// Number of PMU event counters (PMCR_EL0.N).
pub fn pmu_counters() -> u64 {
    PMCR_EL0::N.read(read_sysreg!("PMCR_EL0"))
}

/// MDCR_EL2 while the guest runs (`regs::mdcr_guest`): its PMU and debug
/// register accesses trapped, and the last event counter kept for the
/// hypervisor when epochs count INST_RETIRED on it; the epoch counter
/// adds TDE while it steps the guest (`pmu.rs`).
pub fn mdcr_guest() -> u64 {
    match super::pmu::kept_counter() {
        Some(n) => regs::mdcr_guest_keeping_counter(n),
        None => regs::mdcr_guest(pmu_counters()),
    }
}

/// Sets up EL2 to run a guest: trap configuration, stage 2, identity.
///
/// # Safety
/// `vtcr` and `vttbr` must describe valid stage-2 tables that map only
/// guest memory; call once, before the first guest entry.
pub unsafe fn configure_for_guest(vtcr: u64, vttbr: u64, ecv: bool) {
    let mdcr = mdcr_guest();
    let midr = read_sysreg!("MIDR_EL1");
    // SAFETY: VTCR_EL2 and VTTBR_EL2: the 40-bit IPA space and the root of
    // tables that map guest RAM only (this function's contract); unused
    // until HCR_EL2.VM is set below.
    unsafe {
        write_sysreg!("VTCR_EL2", vtcr);
        write_sysreg!("VTTBR_EL2", vttbr);
    }
    // SAFETY: traps that leave the guest less, never more: CPTR_EL2 traps
    // SVE, SME and the activity monitors (TZ, TSM, TAM) and leaves FP/SIMD
    // to the guest (TFP = 0; the softfloat hypervisor never touches it);
    // CNTHCTL_EL2 traps the physical counter and timer (EL1PCTEN = EL1PCEN
    // = 0) and, with `ecv`, the virtual ones (EL1TVT, EL1TVCT), and
    // CNTVOFF_EL2 = 0 makes guest virtual time the physical counter;
    // MDCR_EL2 traps every PMU access (TPM, TPMCR), so the epoch counter
    // stays the hypervisor's, and every debug register access (TDA, TDOSA,
    // TDRA), so the debug hardware does too: MDSCR_EL1 = 0 (no step, no
    // breakpoints), and the OS lock and OS double lock open (OSLAR_EL1 =
    // OSDLR_EL1 = 0; a locked OS lock disables the software step that
    // lands epochs: `pmu.rs`), which the guest can no longer change;
    // HSTR_EL2 = 0 traps no AArch32 CP15 access (EL1 is AArch64, and
    // AArch32 is hidden from the guest).
    unsafe {
        write_sysreg!("MDSCR_EL1", 0);
        write_sysreg!("OSLAR_EL1", 0);
        write_sysreg!("OSDLR_EL1", 0);
        write_sysreg!("CPTR_EL2", regs::CPTR_GUEST);
        write_sysreg!("CNTHCTL_EL2", regs::cnthctl_guest(ecv));
        write_sysreg!("CNTVOFF_EL2", 0);
        write_sysreg!("MDCR_EL2", mdcr);
        write_sysreg!("HSTR_EL2", 0);
    }
    // SAFETY: values the guest only reads: its identity, VPIDR_EL2 the real
    // MIDR and VMPIDR_EL2 affinity 0.0.0.0 (the guest DTB's one cpu@0), and
    // SCTLR_EL1 with its MMU and caches off, as the Linux boot protocol
    // asks (EL1 state; the guest has not run yet). CNTKCTL_EL1 = 0 (Arm
    // ARM, register description "CNTKCTL_EL1"): EL0PCTEN, EL0VCTEN, EL0VTEN, EL0PTEN
    // and EVNTEN clear, so an EL0 counter or timer access traps to the
    // guest kernel (which answers it from its clocksource: on a core
    // without ECV the memory-mapped timer, whose driver never writes this
    // register) and no event stream runs on wall-clock time; its reset
    // value is UNKNOWN, and an EL0 CNTVCT_EL0 read that reached the
    // hardware would differ from board to board.
    unsafe {
        write_sysreg!("VPIDR_EL2", midr);
        write_sysreg!("VMPIDR_EL2", GUEST_MPIDR);
        write_sysreg!("SCTLR_EL1", SCTLR_EL1_RESET);
        write_sysreg!("CNTKCTL_EL1", 0);
    }
    // SAFETY: HCR_EL2 last, once stage 2 and the traps above are in place:
    // stage 2 on (VM), physical IRQ/FIQ/SError to EL2 (IMO, FMO, AMO), WFI,
    // WFE, SMC and ID-register reads trapped, EL1 AArch64 (`HCR_GUEST`).
    // Then barriers and VMALLS12E1, so no stale stage-1 or stage-2
    // translation of this VMID survives into the guest.
    unsafe {
        write_sysreg!("HCR_EL2", regs::HCR_GUEST);
        core::arch::asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack));
    }
}

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
    // SAFETY: ESR/FAR/ELR/SPSR_EL1 are the guest's own EL1 registers, given
    // the syndrome, address, return address and PSTATE of the exception
    // being injected; the caller resumes the guest at its vector, as the
    // hardware would (this function's contract).
    unsafe {
        write_sysreg!("ESR_EL1", e.esr);
        write_sysreg!("FAR_EL1", e.far);
        write_sysreg!("ELR_EL1", e.elr);
        write_sysreg!("SPSR_EL1", e.spsr);
    }
    read_sysreg!("VBAR_EL1")
}

/// A software step of the guest landed at its exception vector `elr`:
/// clears the SS bit an interrupt taken mid-step saved in its SPSR_EL1
/// (`replica::step_to_count::guest_spsr_after_step`).
pub fn clear_guest_step_state(elr: u64) {
    let vbar = read_sysreg!("VBAR_EL1");
    let spsr = read_sysreg!("SPSR_EL1");
    if let Some(spsr) =
        el2_hypervisor::replica::step_to_count::guest_spsr_after_step(elr, vbar, spsr)
    {
        // SAFETY: SPSR_EL1 is the guest's own, saved by the exception it
        // has just taken and not yet read by its handler (the step
        // stopped at the vector): only the step state our stepping put
        // there is taken out.
        unsafe { write_sysreg!("SPSR_EL1", spsr) };
    }
}

/// The instruction word at the guest's virtual address `va` (translated
/// as its EL0 or EL1, `el0`, would see it, both stages), if it is in
/// guest RAM (`ram`, whose blocks the hypervisor maps identically): for
/// `replica::exclusive`. `None` where the guest has nothing readable or
/// the address is not RAM (a device page mapped at stage 2, GICV, is
/// never read here: a read could have effects).
pub fn read_guest_insn(va: u64, el0: bool, ram: board_support::Region) -> Option<u32> {
    let saved = read_sysreg!("PAR_EL1");
    // SAFETY: AT S12E0R/S12E1R translate through the guest's own EL1&0
    // regime and stage 2, both live; they only write PAR_EL1, which is
    // the guest's and is put back before it runs again.
    unsafe {
        if el0 {
            core::arch::asm!("at s12e0r, {0}", "isb", in(reg) va, options(nostack, preserves_flags));
        } else {
            core::arch::asm!("at s12e1r, {0}", "isb", in(reg) va, options(nostack, preserves_flags));
        }
    }
    let par = read_sysreg!("PAR_EL1");
    // SAFETY: the guest's PAR_EL1, as it was.
    unsafe { write_sysreg!("PAR_EL1", saved) };
    // PAR_EL1.F (bit 0): the translation faulted.
    if par & 1 != 0 {
        return None;
    }
    let pa = (par & 0x0000_ffff_ffff_f000) | (va & 0xfff);
    if pa < ram.base || pa + 4 > ram.base + ram.size || !pa.is_multiple_of(4) {
        return None;
    }
    // SAFETY: an aligned word of guest RAM, mapped at stage 2 (the walk
    // succeeded) and so touched: the hypervisor maps guest RAM at the same
    // addresses (`mem::el2_layout`), and reading it changes nothing.
    Some(unsafe { core::ptr::read_volatile(pa as *const u32) })
}

/// The guest's FAR_EL1 (kept by an exception that does not write it).
pub fn far_el1() -> u64 {
    read_sysreg!("FAR_EL1")
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
    /// 16-byte aligned for the V registers' stores. With the EL2 MMU on
    /// the buffer (on the stack) is Normal memory, where an unaligned
    /// store is allowed with SCTLR_EL2.A = 0; the alignment stays so that
    /// the stores are also correct with the MMU off, when every data
    /// access is to Device memory and an unaligned one faults whatever
    /// SCTLR_EL2.A says (seen before the MMU went on: an alignment fault
    /// once a change elsewhere moved this buffer to an 8-byte boundary).
    #[repr(C, align(16))]
    struct Aligned([u64; 64]);
    let mut v = Aligned([0u64; 64]);
    let (fpcr, fpsr): (u64, u64);
    // SAFETY: stores the 32 128-bit V registers into `v`, which is 512
    // bytes long and 16-byte aligned (each `stp q` is then aligned, which
    // Device memory, with the MMU off, requires), and reads FPCR/FPSR; no register is
    // written. The directives let the assembler accept FP/SIMD in a
    // softfloat build.
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
            p = in(reg) v.0.as_mut_ptr(),
            fpcr = out(reg) fpcr,
            fpsr = out(reg) fpsr,
            options(nostack, preserves_flags)
        )
    };
    el2_hypervisor::replica::fingerprint::FpState { v: v.0, fpcr, fpsr }
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
