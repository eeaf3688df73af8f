//! The bare-metal side: console, firmware calls, fault probes, and the
//! checks themselves.
//!
//! Runs at EL1 with the MMU off (as the hypervisor enters a guest): every
//! data access is Device-nGnRnE, so everything is naturally aligned (the
//! target is `+strict-align`) and no cache maintenance is needed. One core,
//! exceptions masked; the only exception expected is the synchronous one a
//! fault probe arms (see `boot.s`).
//!
//! `unsafe` is confined to: the UART registers, `asm!` for system
//! registers, SMC/HVC and the probes, and turning the DTB pointer into a
//! slice. Each says why it is sound.

use core::arch::asm;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use test_guest::{Detail, Fault, check_external_abort, check_undefined, detail, fdt};

core::arch::global_asm!(include_str!("boot.s"));

// ---------------------------------------------------------------- console

/// The guest's PL011 (QEMU virt UART0), emulated by the hypervisor.
const UART_DR: usize = 0x0900_0000;
const UART_FR: usize = 0x0900_0018;
/// UARTFR.TXFF: transmit FIFO full.
const FR_TXFF: u32 = 1 << 5;

fn putc(byte: u8) {
    // SAFETY: UART_FR and UART_DR are 32-bit registers of the guest's PL011
    // (the only UART its device tree names), accessed aligned and whole.
    unsafe {
        while core::ptr::read_volatile(UART_FR as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile(UART_DR as *mut u32, u32::from(byte));
    }
}

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(putc);
        Ok(())
    }
}

macro_rules! println {
    ($($arg:tt)*) => {{
        let _ = writeln!(Console, $($arg)*);
    }};
}

// ------------------------------------------------- system registers, calls

/// Reads a system register by name. Reads that the hypervisor traps
/// (counters, ID registers) come back emulated; none touches memory.
macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: an MRS has no side effect on memory or on the guest's state.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Reads `$reg` between a load-exclusive and a store-exclusive; returns
/// whether the store-exclusive succeeded. A trap to EL2 between them
/// clears the local exclusive monitor (the architecture clears it on every
/// exception return, QEMU in `HELPER(exception_return)`; the hypervisor's
/// own lock, LDAXR/STLXR, would clear it too), so the store fails. An MRS
/// that does not trap leaves the monitor alone and the store succeeds.
///
/// With the MMU off MONITOR_CELL is Device memory, where whether
/// exclusives work at all is IMPLEMENTATION DEFINED on hardware (QEMU
/// treats it like RAM): the untrapped control read in the same window
/// tells "the store never succeeds here" apart from "the read trapped".
macro_rules! monitor_survives {
    ($reg:literal) => {{
        let status: u64;
        // SAFETY: the exclusive pair writes MONITOR_CELL's own value back
        // (a static of ours, 8-byte aligned); the MRS has no side effect.
        unsafe {
            asm!(
                "ldxr {old}, [{cell}]",
                concat!("mrs {tmp}, ", $reg),
                "stxr {status:w}, {old}, [{cell}]",
                cell = in(reg) MONITOR_CELL.as_ptr(),
                old = out(reg) _,
                tmp = out(reg) _,
                status = out(reg) status,
                options(nostack),
            )
        };
        status == 0
    }};
}

/// The word the exclusive-monitor probes use.
static MONITOR_CELL: AtomicU64 = AtomicU64::new(0);

/// SMCCC return value for an unknown function (-1).
const NOT_SUPPORTED: u64 = u64::MAX;
const PSCI_VERSION: u64 = 0x8400_0000;
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;

/// A firmware call (SMCCC): `smc #0` or `hvc #0` with x0 = `fid`, x1-x3 = 0.
fn firmware_call(fid: u64, hvc: bool) -> u64 {
    let mut x0 = fid;
    // SAFETY: a firmware call only returns values in registers; everything
    // the SMCCC lets the callee change is declared clobbered.
    unsafe {
        if hvc {
            asm!("hvc #0", inout("x0") x0, inout("x1") 0u64 => _, inout("x2") 0u64 => _,
                 inout("x3") 0u64 => _, clobber_abi("C"), options(nostack));
        } else {
            asm!("smc #0", inout("x0") x0, inout("x1") 0u64 => _, inout("x2") 0u64 => _,
                 inout("x3") 0u64 => _, clobber_abi("C"), options(nostack));
        }
    }
    x0
}

/// Powers off (`reset` false) or resets: QEMU exits 0 or 5 through the hypervisor.
fn stop(reset: bool) -> ! {
    firmware_call(
        if reset {
            PSCI_SYSTEM_RESET
        } else {
            PSCI_SYSTEM_OFF
        },
        false,
    );
    loop {
        core::hint::spin_loop();
    }
}

// ----------------------------------------------------------------- faults

/// What `boot.s` records for an expected synchronous exception; `armed`
/// is set by a probe before its access and cleared by the vector.
#[repr(C)]
struct FaultRecord {
    armed: AtomicU64,
    esr: AtomicU64,
    far: AtomicU64,
    elr: AtomicU64,
    /// DAIF and PAN as the vector found them.
    daif: AtomicU64,
    pan: AtomicU64,
}

#[unsafe(no_mangle)]
static TEST_GUEST_FAULT: FaultRecord = FaultRecord {
    armed: AtomicU64::new(0),
    esr: AtomicU64::new(0),
    far: AtomicU64::new(0),
    elr: AtomicU64::new(0),
    daif: AtomicU64::new(0),
    pan: AtomicU64::new(0),
};

/// What one access did: the fault it took (if any) and its PC.
struct Probe {
    fault: Option<Fault>,
    pc: u64,
}

/// Runs one 4-byte instruction (an asm template, with its operands) with a
/// fault armed; yields a [`Probe`].
macro_rules! probe_insn {
    ($insn:literal $(, $($reg:tt)*)?) => {{
        let f = &TEST_GUEST_FAULT;
        f.armed.store(1, Relaxed);
        let pc: u64;
        // SAFETY: the instruction may fault: the vector records it, steps
        // over it (4 bytes) and returns here. If it does not fault, its
        // effects are registers only (declared), which the caller reports.
        unsafe {
            asm!("adr {pc}, 2f", concat!("2: ", $insn), pc = out(reg) pc,
                 $($($reg)*,)? options(nostack));
        }
        Probe { fault: taken_fault(), pc }
    }};
}

/// The fault an armed probe took, if it took one (the vector disarmed it);
/// disarms either way.
fn taken_fault() -> Option<Fault> {
    let f = &TEST_GUEST_FAULT;
    let fault = (f.armed.load(Relaxed) == 0).then(|| Fault {
        esr: f.esr.load(Relaxed),
        far: f.far.load(Relaxed),
        elr: f.elr.load(Relaxed),
    });
    f.armed.store(0, Relaxed);
    fault
}

/// Loads (or stores to) the 32-bit word at `addr`, expecting a fault.
/// 32 bits is the width of every device register here: a window the
/// hypervisor emulated by mistake would answer it rather than refuse the
/// width, so the probe cannot pass for the wrong reason. A store writes 0.
fn probe(addr: u64, write: bool) -> Probe {
    if write {
        probe_insn!("str wzr, [{a}]", a = in(reg) addr)
    } else {
        probe_insn!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) _)
    }
}

/// Any exception but an armed probe's: report it and reset (exit 5).
#[unsafe(no_mangle)]
extern "C" fn test_guest_unexpected_exception(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    println!(
        "test-guest: unexpected exception: vector {vector} (offset {:#x}), ESR_EL1 {esr:#x}, ELR_EL1 {elr:#x}, FAR_EL1 {far:#x}",
        vector * 0x80
    );
    stop(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("test-guest: panic: {info}");
    stop(true)
}

// ----------------------------------------------------------------- checks

/// What the guest did that the hypervisor counts: printed at the end so the
/// smoke test can compare with the hypervisor's own trap counts.
#[derive(Default)]
struct Tally {
    counter_reads: u64,
    id_reads: u64,
    hvc: u64,
    smc: u64,
    /// Exceptions the hypervisor injected (aborts, undefined instructions).
    injected: u64,
    sgis: u64,
    /// Maintenance interrupts the guest's EOIs must have raised.
    maintenance: u64,
}

impl Tally {
    fn call(&mut self, fid: u64, hvc: bool) -> u64 {
        if hvc {
            self.hvc += 1;
        } else {
            self.smc += 1;
        }
        firmware_call(fid, hvc)
    }

    /// A probe that must end in the injected external abort.
    fn expect_abort(&mut self, addr: u64, write: bool) -> Result<(), Detail> {
        let p = probe(addr, write);
        self.injected += u64::from(p.fault.is_some());
        check_external_abort(p.fault, addr, p.pc, write)
    }
}

type Outcome = Result<(), Detail>;

const COUNTER_LOOP: u64 = 1000;
const MONITOR_TRIES: u64 = 8;

/// The counters the guest can read; each must trap (FEAT_ECV
/// CNTHCTL_EL2.EL1TVCT for the virtual ones, EL1PCTEN=0 for the physical).
macro_rules! counter_survivals {
    ($tally:expr, $($name:literal => $reg:literal),*) => {
        [$({
            let n = (0..MONITOR_TRIES).filter(|_| monitor_survives!($reg)).count();
            $tally.counter_reads += MONITOR_TRIES;
            ($name, n)
        }),*]
    };
}

/// `counter-read-traps`. The emulated counter is the physical one (guest
/// time = CNTPCT, CNTVOFF 0), so the value alone cannot tell a trapped read
/// from a real one, nor can timing reliably. What only a trap produces is
/// an exception return: reading the counter between LDXR and STXR makes
/// the STXR fail every time when the read traps, never when it does not
/// (the control reads TPIDR_EL1, which never traps, in the same window).
/// Also: 1000 reads in a row never go backwards and do advance.
fn counter_read_traps(t: &mut Tally) -> Outcome {
    let first = read_sysreg!("CNTVCT_EL0");
    let mut prev = first;
    let mut backwards = None;
    for i in 1..COUNTER_LOOP {
        let v = read_sysreg!("CNTVCT_EL0");
        if v < prev && backwards.is_none() {
            backwards = Some((i, prev, v));
        }
        prev = v;
    }
    t.counter_reads += COUNTER_LOOP;
    let control = (0..MONITOR_TRIES)
        .filter(|_| monitor_survives!("TPIDR_EL1"))
        .count();
    let survivals = counter_survivals!(t,
        "CNTVCT_EL0" => "CNTVCT_EL0",
        "CNTPCT_EL0" => "CNTPCT_EL0",
        // FEAT_ECV's self-synchronised views (the assembler lacks their names).
        "CNTVCTSS_EL0" => "S3_3_C14_C0_6",
        "CNTPCTSS_EL0" => "S3_3_C14_C0_5"
    );

    if let Some((i, a, b)) = backwards {
        return Err(detail!(
            "CNTVCT_EL0 went backwards at read {i}: {a:#x} then {b:#x}"
        ));
    }
    if prev <= first {
        return Err(detail!(
            "CNTVCT_EL0 did not advance over {COUNTER_LOOP} reads ({first:#x})"
        ));
    }
    if control == 0 {
        return Err(detail!(
            "control: STXR failed even around an untrapped MRS (TPIDR_EL1)"
        ));
    }
    for (reg, n) in survivals {
        if n > 0 {
            return Err(detail!(
                "{reg} read not trapped: exclusive monitor kept {n}/{MONITOR_TRIES} times"
            ));
        }
    }
    Ok(())
}

/// A 4-bit ID register field.
const fn field(reg: u64, lsb: u32) -> u64 {
    (reg >> lsb) & 0xf
}

/// `rndr-hidden`: ID registers trap (HCR_EL2.TID3, shown with the monitor
/// probe) and read with RNG, PMU, SVE, SME and WFxT cleared, while other
/// features (LSE atomics, in every `-cpu max`) still show: the registers
/// are filtered, not zeroed.
fn rndr_hidden(t: &mut Tally) -> Outcome {
    let isar0 = read_sysreg!("ID_AA64ISAR0_EL1");
    let isar2 = read_sysreg!("ID_AA64ISAR2_EL1");
    let pfr0 = read_sysreg!("ID_AA64PFR0_EL1");
    let pfr1 = read_sysreg!("ID_AA64PFR1_EL1");
    let dfr0 = read_sysreg!("ID_AA64DFR0_EL1");
    let survived = (0..MONITOR_TRIES)
        .filter(|_| monitor_survives!("ID_AA64ISAR0_EL1"))
        .count();
    t.id_reads += 5 + MONITOR_TRIES;

    let hidden = [
        ("ID_AA64ISAR0_EL1.RNDR", isar0, 60),
        ("ID_AA64DFR0_EL1.PMUVer", dfr0, 8),
        ("ID_AA64PFR0_EL1.SVE", pfr0, 32),
        ("ID_AA64PFR1_EL1.SME", pfr1, 24),
        ("ID_AA64ISAR2_EL1.WFxT", isar2, 0),
    ];
    for (name, reg, lsb) in hidden {
        if field(reg, lsb) != 0 {
            return Err(detail!(
                "{name} = {} (register {reg:#x}), expected 0",
                field(reg, lsb)
            ));
        }
    }
    if field(isar0, 20) == 0 {
        return Err(detail!(
            "ID_AA64ISAR0_EL1 {isar0:#x}: Atomic 0 too, zeroed rather than filtered"
        ));
    }
    if survived > 0 {
        return Err(detail!(
            "ID_AA64ISAR0_EL1 read not trapped: exclusive monitor kept {survived}/{MONITOR_TRIES} times"
        ));
    }
    Ok(())
}

/// The hypervisor's RAM on QEMU virt: the first 32 MiB (0x40000000..), its
/// image at 0x40200000. None of it is mapped at stage 2.
const HYPERVISOR_ADDRESSES: [u64; 3] = [0x4000_0000, 0x4020_0000, 0x41ff_fff8];

/// `hypervisor-memory-aborts`: loads from the hypervisor's RAM end in an
/// injected synchronous external abort at the faulting load.
fn hypervisor_memory_aborts(t: &mut Tally) -> Outcome {
    let results = HYPERVISOR_ADDRESSES.map(|a| t.expect_abort(a, false));
    results.into_iter().collect()
}

/// Real QEMU virt devices (or holes) that the guest is not given, each
/// just past an emulated window or a device whose reads differ between
/// boards: (address, write?).
const UNASSIGNED_V3: [(u64, bool); 7] = [
    (0x0801_0000, false), // just past the emulated GICD (64 KiB)
    (0x0808_0000, false), // GICv3 ITS
    (0x080c_0000, false), // just past the emulated GICR frames (128 KiB)
    (0x0900_1000, false), // just past the emulated PL011 (4 KiB)
    (0x0901_0000, false), // PL031 RTC: the wall clock
    (0x0a00_0000, false), // virtio-mmio slot 0 (MagicValue)
    (0x0a00_0070, true),  // virtio-mmio slot 0 Status: a store
];

/// The same on a GICv2 board: its GICD is 4 KiB, the guest's GICC (the
/// hardware's GICV) 8 KiB, and the hypervisor's GICH and the GICV's own
/// address are not the guest's.
const UNASSIGNED_V2: [(u64, bool); 8] = [
    (0x0800_1000, false), // just past the emulated GICD (4 KiB)
    (0x0801_2000, false), // just past the guest's GICC (GICV, 8 KiB)
    (0x0803_0000, false), // GICH: the hypervisor's list registers
    (0x0803_0100, true),  // GICH_LR0: a store
    (0x0804_0000, false), // GICV at its own address
    (0x0900_1000, false), // just past the emulated PL011 (4 KiB)
    (0x0901_0000, false), // PL031 RTC: the wall clock
    (0x0a00_0000, false), // virtio-mmio slot 0 (MagicValue)
];

/// `unassigned-device-aborts`: device addresses the guest does not own
/// abort the same way, for loads and stores (WnR set).
fn unassigned_device_aborts(t: &mut Tally) -> Outcome {
    if gicv2() {
        return UNASSIGNED_V2
            .map(|(a, w)| t.expect_abort(a, w))
            .into_iter()
            .collect();
    }
    let results = UNASSIGNED_V3.map(|(a, w)| t.expect_abort(a, w));
    results.into_iter().collect()
}

/// The device tree the hypervisor built, as bytes.
fn dtb_bytes(dtb: u64) -> Result<&'static [u8], Detail> {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        return Err(detail!("no DTB: x0 was {dtb:#x}"));
    }
    // SAFETY: the boot protocol puts an 8-byte aligned DTB in guest RAM at
    // x0; only its 8-byte header is read before its size is believed.
    let header = unsafe { core::ptr::read_volatile(dtb as *const [u8; 8]) };
    let size = fdt::total_size(header).map_err(|e| detail!("DTB at {dtb:#x}: {e:?}"))?;
    if !(40..=1 << 20).contains(&size) {
        return Err(detail!("DTB at {dtb:#x}: implausible size {size}"));
    }
    // SAFETY: the header says `size` (<= 1 MiB) bytes follow; the hypervisor
    // wrote them and nothing writes there while the guest runs.
    Ok(unsafe { core::slice::from_raw_parts(dtb as *const u8, size) })
}

/// Guest RAM from the device tree the hypervisor built.
fn guest_ram(dtb: u64) -> Result<(u64, u64), Detail> {
    let bytes = dtb_bytes(dtb)?;
    fdt::memory_range(bytes).map_err(|e| detail!("DTB at {dtb:#x}: {e:?}"))
}

/// A buffer in the guest's own BSS.
static BSS_BUFFER: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];

fn pattern(i: usize) -> u64 {
    0x5a5a_0000_0000_0000 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `stage2-ram-works` (positive control): guest RAM holds what is written,
/// in our BSS and in the last 64 bytes of guest RAM (from the DTB).
fn stage2_ram_works(ram: Result<(u64, u64), Detail>) -> Outcome {
    for (i, w) in BSS_BUFFER.iter().enumerate() {
        w.store(pattern(i), Relaxed);
    }
    for (i, w) in BSS_BUFFER.iter().enumerate() {
        let got = w.load(Relaxed);
        if got != pattern(i) {
            return Err(detail!(
                "BSS word {i} at {:#x}: read {got:#x}, wrote {:#x}",
                w.as_ptr() as u64,
                pattern(i)
            ));
        }
    }
    let (base, size) = ram?;
    let here = test_guest_main as *const () as u64;
    if !(base..base + size).contains(&here) {
        return Err(detail!(
            "DTB RAM {base:#x}+{size:#x} does not hold the guest ({here:#x})"
        ));
    }
    let end = base + size;
    let words = (end - 64..end).step_by(8);
    for (i, a) in words.clone().enumerate() {
        // SAFETY: the last 64 bytes of guest RAM, 8-byte aligned; the
        // hypervisor's layout leaves them free (the DTB sits 2 MiB below
        // the end, at most 64 KiB long), and nothing else runs.
        unsafe { core::ptr::write_volatile(a as *mut u64, pattern(i)) };
    }
    for (i, a) in words.enumerate() {
        // SAFETY: as above.
        let got = unsafe { core::ptr::read_volatile(a as *const u64) };
        if got != pattern(i) {
            return Err(detail!(
                "RAM at {a:#x}: read {got:#x}, wrote {:#x}",
                pattern(i)
            ));
        }
    }
    Ok(())
}

/// `beyond-ram-aborts`: the first address past guest RAM (from the DTB)
/// is not mapped either.
fn beyond_ram_aborts(t: &mut Tally, ram: Result<(u64, u64), Detail>) -> Outcome {
    let (base, size) = ram?;
    t.expect_abort(base + size, false)
}

/// `unknown-hvc-not-supported`: unknown function IDs (and the TRNG, which
/// must not give the guest randomness) answer NOT_SUPPORTED through HVC and
/// SMC; PSCI_VERSION answers 1.1 through both (positive control).
fn unknown_hvc_not_supported(t: &mut Tally) -> Outcome {
    const CALLS: [(&str, u64, u64); 5] = [
        ("unknown PSCI", 0x8400_00ff, NOT_SUPPORTED),
        ("unknown SiP", 0xc600_0000, NOT_SUPPORTED),
        ("TRNG_VERSION", 0x8400_0050, NOT_SUPPORTED),
        ("TRNG_RND64", 0xc400_0053, NOT_SUPPORTED),
        ("PSCI_VERSION", PSCI_VERSION, 0x0001_0001),
    ];
    let mut first_error = None;
    for hvc in [true, false] {
        for (name, fid, want) in CALLS {
            let got = t.call(fid, hvc);
            if got != want && first_error.is_none() {
                let how = if hvc { "hvc" } else { "smc" };
                first_error = Some(detail!(
                    "{how} {name} ({fid:#x}) returned {got:#x}, expected {want:#x}"
                ));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

// ------------------------------------------------- injected exceptions

/// SCTLR_EL1.SPAN, bit 23: 0 means "set PSTATE.PAN on exception entry".
const SCTLR_SPAN: u64 = 1 << 23;
/// PSTATE.PAN as the PAN register shows it (bit 22).
const PAN_BIT: u64 = 1 << 22;
/// DAIF as the DAIF register shows it (bits 9:6).
const DAIF_ALL: u64 = 0xf << 6;

/// `injected-exception-state`: an exception the hypervisor injects lands as
/// a real one would (AArch64.TakeException): an instruction fetch from the
/// hypervisor's RAM is an instruction abort (EC 0x21, IFSC 0x10, FAR and
/// ELR the target), and with SCTLR_EL1.SPAN = 0 the vector runs with PAN
/// set and D, A, I, F masked, whatever they were before.
fn injected_exception_state(t: &mut Tally) -> Outcome {
    let sctlr = read_sysreg!("SCTLR_EL1");
    // SAFETY: clears SPAN and PAN and unmasks D, A and F (IRQs stay
    // masked, nothing is pending), only around the probes; restored below.
    unsafe {
        asm!("msr SCTLR_EL1, {s}", "isb", "msr s3_0_c4_c2_3, xzr", "msr DAIFClr, #0xd",
             s = in(reg) sctlr & !SCTLR_SPAN, options(nostack))
    };
    let target = HYPERVISOR_ADDRESSES[1];
    let f = &TEST_GUEST_FAULT;
    f.armed.store(1, Relaxed);
    // SAFETY: the branch target is not mapped for the guest: the fetch
    // aborts, and the vector returns to x30, just after the `blr`.
    unsafe { asm!("blr {t}", t = in(reg) target, clobber_abi("C"), options(nostack)) };
    let fetch = taken_fault();
    let (daif, pan) = (f.daif.load(Relaxed), f.pan.load(Relaxed));
    let load = t.expect_abort(HYPERVISOR_ADDRESSES[0], false);
    let (daif2, pan2) = (f.daif.load(Relaxed), f.pan.load(Relaxed));
    // SAFETY: puts SCTLR_EL1 back and masks D, A, F again.
    unsafe {
        asm!("msr SCTLR_EL1, {s}", "isb", "msr DAIFSet, #0xf", s = in(reg) sctlr, options(nostack))
    };
    t.injected += u64::from(fetch.is_some());
    let Some(fetch) = fetch else {
        return Err(detail!("fetch from {target:#x}: no abort, it ran"));
    };
    let (ec, fsc) = ((fetch.esr >> 26) & 0x3f, fetch.esr & 0x3f);
    if ec != 0x21 || fsc != 0x10 {
        return Err(detail!(
            "fetch from {target:#x}: ESR {:#x} (EC {ec:#x}, FSC {fsc:#x}), expected an instruction abort (EC 0x21, IFSC 0x10)",
            fetch.esr
        ));
    }
    if fetch.far != target || fetch.elr != target {
        return Err(detail!(
            "fetch from {target:#x}: FAR {:#x} ELR {:#x}",
            fetch.far,
            fetch.elr
        ));
    }
    load?;
    for (what, daif, pan) in [
        ("instruction abort", daif, pan),
        ("data abort", daif2, pan2),
    ] {
        if daif & DAIF_ALL != DAIF_ALL {
            return Err(detail!(
                "{what}: vector ran with DAIF {daif:#x}, expected all masked"
            ));
        }
        if pan & PAN_BIT == 0 {
            return Err(detail!(
                "{what}: vector ran with PAN clear although SCTLR_EL1.SPAN = 0"
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------ semihosting

/// Semihosting operations (Arm's "Semihosting for AArch32 and AArch64").
const SYS_OPEN: u64 = 0x01;
const SYS_CLOCK: u64 = 0x10;
const SYS_SYSTEM: u64 = 0x12;
const SYS_EXIT: u64 = 0x18;
/// SYS_EXIT's reason: ADP_Stopped_ApplicationExit (with a status: a pass).
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

/// The host command SYS_SYSTEM would run: xtask checks afterwards that the
/// file does not exist (`ci/smoke.toml`, `absent_files`).
static SEMIHOSTING_COMMAND: &[u8] = b"touch /tmp/tandem-semihosting-probe\0";
static SEMIHOSTING_PATH: &[u8] = b"/etc/hostname\0";

/// One semihosting call (`hlt #0xf000`, x0 = `op`, x1 = `block`).
fn semihosting(op: u64, block: u64) -> Probe {
    probe_insn!("hlt #0xf000", inout("x0") op => _, in("x1") block)
}

/// `semihosting-closed`: QEMU's semihosting would answer `hlt #0xf000`
/// from EL1 itself, never asking EL2: the clock (host time), a host file,
/// a host shell command, and the board's exit with a status of our choice.
/// With semihosting off each is an undefined instruction at EL1. The exit
/// comes last: if it worked, the board would stop here "successfully" and
/// without the hypervisor's exit record.
fn semihosting_closed() -> Outcome {
    let open = [
        SEMIHOSTING_PATH.as_ptr() as u64,
        0, // mode "r"
        SEMIHOSTING_PATH.len() as u64 - 1,
    ];
    let system = [
        SEMIHOSTING_COMMAND.as_ptr() as u64,
        SEMIHOSTING_COMMAND.len() as u64 - 1,
    ];
    let exit = [ADP_STOPPED_APPLICATION_EXIT, 0];
    let calls: [(&str, u64, u64); 4] = [
        ("SYS_CLOCK", SYS_CLOCK, 0),
        ("SYS_OPEN", SYS_OPEN, open.as_ptr() as u64),
        ("SYS_SYSTEM", SYS_SYSTEM, system.as_ptr() as u64),
        ("SYS_EXIT", SYS_EXIT, exit.as_ptr() as u64),
    ];
    // Every call is made even after one fails, so that a board with
    // semihosting on shows all of it: the host file, and the exit.
    let mut first_error = None;
    for (name, op, block) in calls {
        let p = semihosting(op, block);
        if let Err(e) = check_undefined(p.fault, name, p.pc) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

// ------------------------------------------------------ PMU, SVE and RNDR

/// CPACR_EL1.ZEN (bits 17:16) and FPEN (21:20): SVE and FP/SIMD enabled at
/// EL1, so that only EL2 (CPTR_EL2.TZ) can still trap SVE.
const CPACR_ZEN_FPEN: u64 = (0b11 << 16) | (0b11 << 20);

/// `pmu-sve-undefined`: the hidden features are not just hidden in the ID
/// registers but unusable: PMU registers (MDCR_EL2.TPM) and an SVE
/// instruction (CPTR_EL2.TZ, with SVE enabled at EL1) trap to the
/// hypervisor, which answers with an undefined instruction.
fn pmu_sve_undefined(t: &mut Tally) -> Outcome {
    let pmcr = probe_insn!("mrs {tmp}, PMCR_EL0", tmp = out(reg) _);
    let pmccntr = probe_insn!("mrs {tmp}, PMCCNTR_EL0", tmp = out(reg) _);
    let cpacr = read_sysreg!("CPACR_EL1");
    // SAFETY: enables SVE and FP/SIMD at EL1 only for the probe below; no
    // code of ours uses either (softfloat target); restored right after.
    unsafe { asm!("msr CPACR_EL1, {}", "isb", in(reg) cpacr | CPACR_ZEN_FPEN, options(nostack)) };
    let rdvl = probe_insn!(".inst 0x04bf5020", out("x0") _); // rdvl x0, #1
    // SAFETY: puts back the value read above.
    unsafe { asm!("msr CPACR_EL1, {}", "isb", in(reg) cpacr, options(nostack)) };
    let probes = [
        ("PMCR_EL0 read", pmcr),
        ("PMCCNTR_EL0 read", pmccntr),
        ("SVE rdvl", rdvl),
    ];
    for (name, p) in probes {
        t.injected += u64::from(p.fault.is_some());
        check_undefined(p.fault, name, p.pc)?;
    }
    Ok(())
}

/// `rndr-executes`: RNDR and RNDRRS (hidden in ID_AA64ISAR0_EL1, but EL2
/// cannot trap them) still execute; their values come from QEMU's PRNG,
/// seeded by `-seed`, so a record and its replay print the same ones (the
/// record/replay scenario compares the consoles). Here: they execute and
/// report success (NZCV.Z clear), and two draws differ.
fn rndr_executes() -> Outcome {
    let mut v = [0u64; 3];
    let mut failed = 0u64;
    for (i, slot) in v.iter_mut().enumerate() {
        let (value, z): (u64, u64);
        // SAFETY: RNDR/RNDRRS (s3_3_c2_c4_0/1) only write a register and
        // NZCV; a core without FEAT_RNG would fault, and nothing is armed:
        // that is reported as an unexpected exception.
        unsafe {
            if i < 2 {
                asm!("mrs {v}, s3_3_c2_c4_0", "cset {z}, eq", v = out(reg) value, z = out(reg) z, options(nomem, nostack));
            } else {
                asm!("mrs {v}, s3_3_c2_c4_1", "cset {z}, eq", v = out(reg) value, z = out(reg) z, options(nomem, nostack));
            }
        }
        *slot = value;
        failed += z;
    }
    println!(
        "test-guest: rndr values {:#018x} {:#018x}, rndrrs {:#018x}",
        v[0], v[1], v[2]
    );
    if failed > 0 {
        return Err(detail!("{failed} of 3 draws reported failure (Z set)"));
    }
    if v[0] == v[1] {
        return Err(detail!("two RNDR draws were equal ({:#x})", v[0]));
    }
    Ok(())
}

// ------------------------------------------------------------------ SGIs

/// The guest's GICv3 distributor and its redistributor's SGI frame (QEMU
/// virt, as the guest DTB names them); on GICv2, the distributor and the
/// CPU interface (GICC, which is the hardware's GICV).
const GICD: usize = 0x0800_0000;
const GICC_V2: usize = 0x0801_0000;
/// GICv2 GICD_SGIR (IHI 0048B §4.3.15): TargetListFilter 2, this CPU.
const GICD_SGIR: usize = GICD + 0xf00;
const SGIR_SELF: u32 = 2 << 24;
/// GICv2 banked GICD registers of SGIs and PPIs (n = 0).
const GICD_ISENABLER0: usize = GICD + 0x100;
const GICD_IPRIORITYR: usize = GICD + 0x400;
const GICR_SGI: usize = 0x080a_0000 + 0x1_0000;
/// GICD_CTLR: ARE_NS (4), EnableGrp1A (1), EnableGrp1 (0), as Linux writes.
const GICD_CTLR_ENABLE: u32 = (1 << 4) | (1 << 1) | 1;
/// The SGI the check sends itself (Linux uses 0-7 for its IPIs).
const SELF_SGI: u32 = 3;

/// What the IRQ vector in `boot.s` records: how many interrupts were
/// taken, the INTID of the last (from ICC_IAR1_EL1), and one bit per
/// INTID below 64 taken.
#[repr(C)]
struct IrqRecord {
    count: AtomicU64,
    intid: AtomicU64,
    seen: AtomicU64,
}

/// The GICv2 CPU interface the IRQ vector in `boot.s` acknowledges and
/// ends through (GICC_IAR, GICC_EOIR), or 0 on GICv3 (ICC_IAR1_EL1,
/// ICC_EOIR1_EL1). Set once from the device tree.
#[unsafe(no_mangle)]
static TEST_GUEST_GICC: AtomicU64 = AtomicU64::new(0);

fn gicv2() -> bool {
    TEST_GUEST_GICC.load(Relaxed) != 0
}

#[unsafe(no_mangle)]
static TEST_GUEST_IRQ: IrqRecord = IrqRecord {
    count: AtomicU64::new(0),
    intid: AtomicU64::new(0),
    seen: AtomicU64::new(0),
};

fn mmio_write32(addr: usize, v: u32) {
    // SAFETY: a register of the guest's emulated GIC (GICD or GICR SGI
    // frame), 32-bit and aligned; writes only change interrupt state. A
    // plain `str` (no writeback, no pair), so the abort has a syndrome
    // (ESR ISV = 1) the hypervisor can emulate: a volatile write in a
    // loop may compile to a post-indexed store.
    unsafe { asm!("str {v:w}, [{a}]", v = in(reg) v, a = in(reg) addr, options(nostack)) };
}

/// `self-ipi-delivered`: a write of ICC_SGI1R_EL1 targeting this PE (how
/// Linux raises irq_work) traps to the hypervisor, which pends the SGI in
/// its vGIC; the guest takes it as an IRQ with the right INTID, once.
fn self_ipi_delivered(t: &mut Tally) -> Outcome {
    if gicv2() {
        gicv2_enable_sgis(1 << SELF_SGI);
    } else {
        gicv3_enable_sgis(1 << SELF_SGI);
    }
    let before = TEST_GUEST_IRQ.count.load(Relaxed);
    // SAFETY: unmasks IRQs only around the SGI; the IRQ vector in boot.s
    // acknowledges and ends the interrupt and returns.
    unsafe { asm!("msr DAIFClr, #2", options(nostack)) };
    send_self_sgi(t, SELF_SGI);
    let mut spins = 0u64;
    while TEST_GUEST_IRQ.count.load(Relaxed) == before && spins < 1_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    // SAFETY: masks IRQs again.
    unsafe { asm!("msr DAIFSet, #2", options(nostack)) };
    let taken = TEST_GUEST_IRQ.count.load(Relaxed) - before;
    let intid = TEST_GUEST_IRQ.intid.load(Relaxed);
    if taken != 1 {
        return Err(detail!("{taken} IRQs taken after the self-SGI, expected 1"));
    }
    if intid != u64::from(SELF_SGI) {
        return Err(detail!(
            "the IRQ was INTID {intid}, expected SGI {SELF_SGI}"
        ));
    }
    Ok(())
}

/// Sends SGI `intid` to this PE: a trapped ICC_SGI1R_EL1 write on GICv3
/// (counted as `sgi`), a GICD_SGIR store on GICv2 (an emulated MMIO write).
fn send_self_sgi(t: &mut Tally, intid: u32) {
    if gicv2() {
        mmio_write32(GICD_SGIR, SGIR_SELF | intid);
        return;
    }
    // ICC_SGI1R_EL1: INTID [27:24], TargetList [15:0] bit 0 (Aff0 0), Aff1-3
    // and RS 0: this PE (IHI 0069H §12.2.22).
    let v = (u64::from(intid) << 24) | 1;
    // SAFETY: a trapped write that pends SGI `intid` for this PE.
    unsafe { asm!("msr ICC_SGI1R_EL1, {v}", "isb", v = in(reg) v, options(nostack)) };
    t.sgis += 1;
}

/// GICv2: distributor on (Group 0, where Linux leaves interrupts), the
/// SGIs of `mask` at priority 0x80 and enabled; the CPU interface (GICV
/// through the guest's GICC, no exit) on with its priority mask open.
fn gicv2_enable_sgis(mask: u32) {
    mmio_write32(GICD, 1); // GICD_CTLR.EnableGrp0
    for i in (0..16).step_by(4) {
        if mask >> i & 0xf != 0 {
            mmio_write32(GICD_IPRIORITYR + i, 0x8080_8080);
        }
    }
    mmio_write32(GICD_ISENABLER0, mask);
    mmio_write32(GICC_V2 + 0x4, 0xf0); // GICC_PMR
    mmio_write32(GICC_V2, 1); // GICC_CTLR.EnableGrp0
}

/// GICv3: distributor and the system-register CPU interface on, the SGIs
/// of `mask` group 1 at priority 0x80 and enabled.
fn gicv3_enable_sgis(mask: u32) {
    mmio_write32(GICD, GICD_CTLR_ENABLE);
    let groups = TEST_GUEST_IRQ_GROUPS.load(Relaxed) as u32 | mask;
    TEST_GUEST_IRQ_GROUPS.store(u64::from(groups), Relaxed);
    mmio_write32(GICR_SGI + 0x80, groups); // GICR_IGROUPR0: group 1
    for i in (0..16).step_by(4) {
        if mask >> i & 0xf != 0 {
            mmio_write32(GICR_SGI + 0x400 + i, 0x8080_8080); // IPRIORITYR
        }
    }
    mmio_write32(GICR_SGI + 0x100, mask); // GICR_ISENABLER0
    // SAFETY: the guest's own CPU interface (ICV_* through HCR_EL2.IMO):
    // system-register interface on, priority mask open, group 1 on.
    unsafe {
        asm!(
            "mrs {t}, ICC_SRE_EL1", "orr {t}, {t}, #1", "msr ICC_SRE_EL1, {t}", "isb",
            "mov {t}, #0xf0", "msr ICC_PMR_EL1, {t}",
            "mov {t}, #1", "msr ICC_IGRPEN1_EL1, {t}", "isb",
            t = out(reg) _, options(nostack)
        )
    };
}

/// The SGIs made group 1 so far (GICR_IGROUPR0 is written whole).
static TEST_GUEST_IRQ_GROUPS: AtomicU64 = AtomicU64::new(0);

/// The SGIs of `sgi-overflow-delivered`: twice the 4 list registers of
/// QEMU's virtual CPU interface.
const OVERFLOW_SGIS: core::ops::Range<u32> = 8..16;
/// Its maintenance interrupts: one per EOI while an SGI still waits for
/// a list register (the first four EOIs; the last four find none waiting).
const OVERFLOW_MAINTENANCE: u64 = 4;

/// `sgi-overflow-delivered`: eight SGIs pended with IRQs masked (eight
/// trapped ICC_SGI1R_EL1 writes, or GICD_SGIR stores on GICv2), more than
/// the four list registers hold;
/// then IRQs are unmasked and the guest spins on memory alone, so that
/// nothing traps. Every one is taken, each once, because the guest's EOI
/// of one raises the maintenance interrupt and the hypervisor refills the
/// list registers at once (without it, four would wait for the next
/// unrelated exit, which never comes).
fn sgi_overflow_delivered(t: &mut Tally) -> Outcome {
    let mask = OVERFLOW_SGIS.fold(0u32, |m, i| m | 1 << i);
    if gicv2() {
        gicv2_enable_sgis(mask);
    } else {
        gicv3_enable_sgis(mask);
    }
    let before = TEST_GUEST_IRQ.count.load(Relaxed);
    TEST_GUEST_IRQ.seen.store(0, Relaxed);
    // IRQs are still masked: none is taken yet.
    for i in OVERFLOW_SGIS {
        send_self_sgi(t, i);
    }
    let want = OVERFLOW_SGIS.len() as u64;
    // SAFETY: unmasks IRQs for the spin; the IRQ vector in boot.s
    // acknowledges, records and ends each interrupt.
    unsafe { asm!("msr DAIFClr, #2", "isb", options(nostack)) };
    let mut spins = 0u64;
    while TEST_GUEST_IRQ.count.load(Relaxed) - before < want && spins < 1_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    // SAFETY: masks IRQs again.
    unsafe { asm!("msr DAIFSet, #2", options(nostack)) };
    t.maintenance += OVERFLOW_MAINTENANCE;
    let taken = TEST_GUEST_IRQ.count.load(Relaxed) - before;
    let seen = TEST_GUEST_IRQ.seen.load(Relaxed);
    if taken != want || seen != u64::from(mask) {
        return Err(detail!(
            "{taken} IRQs taken (SGIs {seen:#x}) of {want} (SGIs {mask:#x}) pended at once"
        ));
    }
    Ok(())
}

/// Entered from `boot.s` with the DTB address the hypervisor passed in x0.
#[unsafe(no_mangle)]
extern "C" fn test_guest_main(dtb: u64) -> ! {
    println!("test-guest: started at EL1, dtb {dtb:#x}");
    if dtb_bytes(dtb).is_ok_and(|b| fdt::gic_is_v2(b).unwrap_or(false)) {
        TEST_GUEST_GICC.store(GICC_V2 as u64, Relaxed);
        println!("test-guest: GICv2 (GICC {GICC_V2:#x})");
    }
    let mut t = Tally::default();
    let ram = guest_ram(dtb);
    let (mut passed, mut failed) = (0, 0);
    let mut report = |name: &str, outcome: Outcome| match outcome {
        Ok(()) => {
            passed += 1;
            println!("test-guest: {name} ... PASS");
        }
        Err(d) => {
            failed += 1;
            println!("test-guest: {name} ... FAIL ({})", d.as_str());
        }
    };
    report("counter-read-traps", counter_read_traps(&mut t));
    report("rndr-hidden", rndr_hidden(&mut t));
    report("hypervisor-memory-aborts", hypervisor_memory_aborts(&mut t));
    report("unassigned-device-aborts", unassigned_device_aborts(&mut t));
    report("beyond-ram-aborts", beyond_ram_aborts(&mut t, ram));
    report(
        "unknown-hvc-not-supported",
        unknown_hvc_not_supported(&mut t),
    );
    report("stage2-ram-works", stage2_ram_works(ram));
    report("pmu-sve-undefined", pmu_sve_undefined(&mut t));
    report("injected-exception-state", injected_exception_state(&mut t));
    report("rndr-executes", rndr_executes());
    report("self-ipi-delivered", self_ipi_delivered(&mut t));
    report("sgi-overflow-delivered", sgi_overflow_delivered(&mut t));
    report("semihosting-closed", semihosting_closed());
    println!("test-guest: did {} counter reads", t.counter_reads);
    // The hypervisor's own counts must match these exactly (SYSTEM_OFF,
    // below, is one more SMC).
    println!(
        "test-guest: expected trap counts: counter-read={} id-register={} hvc={} smc={} injected={} sgi={} maintenance={}",
        t.counter_reads,
        t.id_reads,
        t.hvc,
        t.smc + 1,
        t.injected,
        t.sgis,
        t.maintenance
    );
    // Bytes that on the board's console would be the hypervisor's exit
    // record (status 6) and a defmt frame, were they not escaped: the
    // smoke scenario checks that the host saw neither (only text).
    println!("test-guest: forging an exit record and a log frame:");
    for b in [0xfd, b'S', 6, !6u8, 0xff, 0x02, 0x00, b'\n'] {
        putc(b);
    }
    println!("test-guest: {passed} passed, {failed} failed");
    // `test-guest.stop=reset` on its command line: end with a reset
    // instead (the guest-reset scenario: the board's status is then 5).
    let reset = dtb_bytes(dtb)
        .ok()
        .and_then(|b| fdt::bootargs(b).ok())
        .is_some_and(|args| {
            args.split(|&c| c == b' ')
                .any(|w| w == b"test-guest.stop=reset")
        });
    if reset {
        println!("test-guest: asking for a reset, as the command line says");
    }
    stop(reset)
}
