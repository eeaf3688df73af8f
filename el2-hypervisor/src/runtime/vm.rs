//! The guest's virtual machine: loading it, entering it, and answering its
//! traps. One vCPU; all state lives in [`VM`], touched only from trap
//! handlers on the one core with exceptions masked.

use super::link_port::LinkPort;
use super::replica::{BoundaryReason, Epochs};
use crate::arch::console::{self, println};
use crate::arch::el2_regs::{self, El1Exception};
use crate::arch::exceptions::{self, TrapFrame};
use crate::arch::pmu;
use crate::arch::{gicv3, power, sysreg, timer};
use board_support::{BoardInfo, GicVersion as BoardGic, Region};
use el2_hypervisor::cpu_features::CpuFeatures;
use el2_hypervisor::emul::id_regs;
use el2_hypervisor::emul::pl011::Pl011;
use el2_hypervisor::emul::psci::{self, PsciOutcome};
use el2_hypervisor::emul::sysreg::{self as sr, SysReg};
use el2_hypervisor::emul::timer_trap::{self, TimerTrap};
use el2_hypervisor::emul::vtimer::{GuestTimers, PHYS_TIMER_INTID, VIRT_TIMER_INTID};
use el2_hypervisor::esr::{self, ExceptionClass, Width};
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::guest::{bundle, dtb as guest_dtb, layout};
use el2_hypervisor::mem::{PageTable, Stage2, Stage2Attrs, TablePool, vtcr_el2, vttbr_el2};
use el2_hypervisor::options::{Mode, Options};
use el2_hypervisor::replica::digest;
use el2_hypervisor::replica::fingerprint::{self, Fingerprint, VcpuState};
use el2_hypervisor::stats::{TrapCounts, TrapKind};
use el2_hypervisor::vgic::{GicVersion, MAX_LIST_REGISTERS, Vgic, VgicConfig};
use replication_link::message::{Hello, InputKind, Role};
use spin::Mutex;

/// The guest's view of the machine, and what the hypervisor tracks of it.
struct Vm {
    vgic: Vgic,
    timers: GuestTimers,
    uart: Pl011,
    /// Guest-physical windows the hypervisor emulates.
    gicd: Region,
    gicr: Region,
    uart_window: Region,
    uart_intid: u32,
    /// The EL2 timer's PPI.
    hyp_timer_intid: u32,
    lr_count: usize,
    counts: TrapCounts,
    guest_ram: Region,
    /// Epochs and the log (record, replay, or `tandem.epoch` in free mode).
    epochs: Option<Epochs>,
}

static VM: Mutex<Option<Vm>> = Mutex::new(None);

/// Stage-2 tables: a 40-bit IPA needs an 8 KiB root plus a few lower tables.
const STAGE2_TABLES: usize = 16;
static STAGE2_POOL: Mutex<[PageTable; STAGE2_TABLES]> =
    Mutex::new([PageTable::EMPTY; STAGE2_TABLES]);

/// SPSR for the guest's first instruction: EL1h, D, A, I, F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

fn fail(status: ExitStatus, args: core::fmt::Arguments<'_>) -> ! {
    println!("hypervisor: {args}");
    power::stop(status)
}

/// Loads and starts the guest found in the board's initrd. Never returns:
/// from here on the hypervisor only runs in trap handlers.
pub fn start(
    info: &BoardInfo<'_>,
    opts: &Options,
    features: CpuFeatures,
    board: &board_support::Board,
) -> ! {
    let Some(initrd) = info.initrd else {
        println!(
            "hypervisor: no guest bundle (pass one as the board's initrd); nothing to run, powering off"
        );
        power::stop(ExitStatus::Success);
    };
    if info.gic.version != BoardGic::V3 {
        fail(
            ExitStatus::BadConfiguration,
            format_args!("running a guest needs GICv3 for now (the board has GICv2)"),
        );
    }
    if !features.ecv {
        fail(
            ExitStatus::BadConfiguration,
            format_args!("running a guest needs FEAT_ECV to trap counter reads (use -cpu max)"),
        );
    }
    let ram = info.memory.first().copied().unwrap_or_default();
    if !ram.contains(initrd.base) || initrd.end() > ram.end() {
        fail(
            ExitStatus::BadConfiguration,
            format_args!(
                "the initrd {:#x}..{:#x} is not in RAM",
                initrd.base,
                initrd.end()
            ),
        );
    }
    let reserved_end = board.ram_base + board.hypervisor_reserved;
    let guest_ram = Region::new(reserved_end, ram.end().saturating_sub(reserved_end));

    // SAFETY: the initrd lies in RAM (checked above), was loaded by the boot
    // loader, and nothing else uses it until the copies below.
    let bundle_bytes =
        unsafe { core::slice::from_raw_parts(initrd.base as *const u8, initrd.size as usize) };
    let b = match bundle::parse(bundle_bytes) {
        Ok(b) => b,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("{e}")),
    };
    let addr_of = |s: &[u8]| s.as_ptr() as u64;
    let plan = match layout::plan(&layout::Inputs {
        guest_ram,
        kernel_src: Region::new(addr_of(b.kernel), b.kernel.len() as u64),
        kernel_text_offset: b.kernel_text_offset,
        kernel_image_size: b.kernel_image_size,
        initramfs_src: Region::new(addr_of(b.initramfs), b.initramfs.len() as u64),
    }) {
        Ok(p) => p,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("{e}")),
    };
    // The command line must be copied before the bundle is overwritten.
    let cmdline: alloc::string::String = b.cmdline.into();
    let initrd_region = (plan.initramfs.size > 0).then_some(plan.initramfs);
    let cfg = guest_dtb::from_board(info, guest_ram, &cmdline, initrd_region);
    let dtb = match guest_dtb::build(&cfg) {
        Ok(d) => d,
        Err(e) => fail(
            ExitStatus::BadConfiguration,
            format_args!("guest device tree: {e}"),
        ),
    };
    if dtb.len() as u64 > plan.dtb.size {
        fail(
            ExitStatus::BadConfiguration,
            format_args!("guest device tree too large ({} bytes)", dtb.len()),
        );
    }
    println!(
        "hypervisor: guest RAM {:#x}..{:#x}, kernel at {:#x} ({} KiB), initramfs {} KiB, cmdline \"{}\"",
        guest_ram.base,
        guest_ram.end(),
        plan.kernel.base,
        b.kernel.len() >> 10,
        b.initramfs.len() >> 10,
        cmdline
    );
    // SAFETY: the plan keeps each destination inside guest RAM and orders the
    // copies so that none overwrites a source not yet copied (memmove).
    unsafe {
        core::ptr::copy(
            b.kernel.as_ptr(),
            plan.kernel.base as *mut u8,
            b.kernel.len(),
        );
        core::ptr::copy(
            b.initramfs.as_ptr(),
            plan.initramfs.base as *mut u8,
            b.initramfs.len(),
        );
        core::ptr::copy_nonoverlapping(dtb.as_ptr(), plan.dtb.base as *mut u8, dtb.len());
    }

    let vttbr = build_stage2(guest_ram);
    let vtcr = match vtcr_el2(el2_regs::pa_range()) {
        Ok(v) => v,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("stage 2: {e:?}")),
    };

    let gic = unsafe_gic(info);
    let hyp_timer_intid = info.timer.map(|t| t.hyp_phys).unwrap_or(26);
    gic.enable_ppi(hyp_timer_intid);
    gicv3::enable_virtual_interface();
    let lr_count = gicv3::list_register_count().min(MAX_LIST_REGISTERS);

    let epochs = epochs_for(opts, info, guest_ram, b.image_hash);
    if epochs.is_some() {
        gic.enable_ppi(pmu::PMU_INTID);
    }
    *VM.lock() = Some(Vm {
        vgic: Vgic::new(VgicConfig {
            version: GicVersion::V3,
            affinity: 0,
        }),
        timers: GuestTimers::new(timer::frequency() as u32),
        uart: Pl011::new(),
        gicd: Region::new(
            info.gic.distributor.base,
            el2_hypervisor::vgic::GICD_V3_SIZE,
        ),
        gicr: Region::new(
            info.gic.cpu_or_redistributor.base,
            el2_hypervisor::vgic::GICR_SIZE,
        ),
        uart_window: Region::new(info.console.region.base, 0x1000),
        uart_intid: info.console.intid.unwrap_or(33),
        hyp_timer_intid,
        lr_count,
        counts: TrapCounts::new(),
        guest_ram,
        epochs,
    });
    if let Some(vm) = VM.lock().as_mut()
        && let Some(ep) = vm.epochs.as_mut()
    {
        ep.establish();
        println!(
            "hypervisor: epochs of {} guest instructions ({:?})",
            ep.counter.length(),
            ep.mode
        );
        ep.counter.start();
    }

    // SAFETY: stage 2 maps guest RAM only; the registers are written once.
    unsafe { el2_regs::configure_for_guest(vtcr, vttbr, features.ecv) };
    defmt::info!(
        "entering the guest at {=u64:#x}, dtb {=u64:#x}",
        plan.entry,
        plan.dtb.base
    );
    let mut frame = TrapFrame::default();
    frame.x[0] = plan.dtb.base;
    frame.elr = plan.entry;
    frame.spsr = SPSR_EL1H_MASKED;
    // SAFETY: EL1h with exceptions masked, at the kernel's entry, with stage 2
    // and the trap configuration in place: the Linux arm64 boot protocol.
    unsafe { exceptions::enter_context(&frame) }
}

fn unsafe_gic(info: &BoardInfo<'_>) -> gicv3::Gic {
    // SAFETY: the DTB names these as the board's GICv3 distributor and
    // redistributor; only the hypervisor drives the physical GIC.
    let gic = unsafe {
        gicv3::Gic::new(
            info.gic.distributor.base,
            info.gic.cpu_or_redistributor.base,
        )
    };
    gic.init();
    gic
}

/// Epochs for the chosen mode: record and replay need the link UART.
fn epochs_for(
    opts: &Options,
    info: &BoardInfo<'_>,
    guest_ram: Region,
    image_hash: u64,
) -> Option<Epochs> {
    if opts.mode == Mode::Free && opts.epoch == 0 {
        return None;
    }
    let link = match opts.mode {
        Mode::Free => None,
        Mode::Record | Mode::Replay => {
            let Some(uart) = info.link_uart else {
                fail(
                    ExitStatus::BadConfiguration,
                    format_args!(
                        "tandem.mode={:?} needs the link UART (a second PL011: QEMU `-serial` twice)",
                        opts.mode
                    ),
                );
            };
            let role = if opts.mode == Mode::Record {
                Role::Primary
            } else {
                Role::Backup
            };
            let hello = Hello::new(
                role,
                timer::counter(),
                digest::digest(el2_regs::build_digest()),
                digest::digest(image_hash),
                digest::config_digest(opts.epoch, guest_ram.size, 3),
            );
            // SAFETY: the DTB names this PL011; it is not the console and the
            // guest never sees it (the guest DTB has only the console).
            Some(unsafe { LinkPort::new(uart.region.base, hello) })
        }
    };
    Some(Epochs::new(opts.mode, opts.epoch, link))
}

/// Identity-maps guest RAM (and nothing else) at stage 2; returns VTTBR_EL2.
fn build_stage2(guest_ram: Region) -> u64 {
    let mut pool_guard = STAGE2_POOL.lock();
    // The tables live in a static and are used for the rest of the run.
    let tables: &'static mut [PageTable] = unsafe_leak(&mut pool_guard[..]);
    let base_pa = tables.as_ptr() as u64;
    let result = TablePool::new(tables, base_pa)
        .map_err(|e| alloc::format!("{e:?}"))
        .and_then(|pool| Stage2::new(pool).map_err(|e| alloc::format!("{e:?}")))
        .and_then(|mut s2| {
            s2.map(
                guest_ram.base,
                guest_ram.base,
                guest_ram.size,
                Stage2Attrs::NormalRwx,
            )
            .map_err(|e| alloc::format!("{e:?}"))?;
            Ok(vttbr_el2(s2.root_pa(), 1))
        });
    match result {
        Ok(v) => v,
        Err(e) => fail(
            ExitStatus::BadConfiguration,
            format_args!("stage 2 tables: {e}"),
        ),
    }
}

fn unsafe_leak(tables: &mut [PageTable]) -> &'static mut [PageTable] {
    // SAFETY: the slice is inside a `static` that nothing else touches after
    // boot (the lock guard is dropped right after, and never taken again).
    unsafe { core::slice::from_raw_parts_mut(tables.as_mut_ptr(), tables.len()) }
}

/// Guest time: the physical counter (CNTVOFF_EL2 is 0).
fn guest_now() -> u64 {
    timer::counter()
}

/// A synchronous exception from the guest.
pub fn on_lower_sync(frame: &mut TrapFrame) {
    let esr = sysreg::esr_el2();
    let mut guard = VM.lock();
    let Some(vm) = guard.as_mut() else {
        drop(guard);
        fail(
            ExitStatus::HypervisorException,
            format_args!("guest trap before the VM exists (ESR {esr:#x})"),
        );
    };
    match ExceptionClass::from_esr(esr) {
        ExceptionClass::WfxTrap => on_wfx(vm, frame, esr),
        ExceptionClass::Hvc64 => {
            vm.counts.count(TrapKind::Hvc);
            firmware_call(vm, frame);
        }
        ExceptionClass::Smc64 => {
            vm.counts.count(TrapKind::Smc);
            // A trapped SMC returns to the SMC itself: step past it.
            frame.elr += 4;
            firmware_call(vm, frame);
        }
        ExceptionClass::SysRegTrap => on_sysreg(vm, frame, esr),
        ExceptionClass::DataAbortLowerEl => on_data_abort(vm, frame, esr),
        _ => inject_undefined(vm, frame),
    }
    before_entry(vm);
}

fn on_wfx(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
    // ISS.TI (bits 1:0): 0 WFI, 1 WFE, 2 WFIT, 3 WFET.
    if esr & 0b11 == 0 && vm.epochs.is_some() {
        vm.counts.count(TrapKind::Wfi);
        // A WFI ends the epoch at this instruction; the boundary steps past it.
        return epoch_boundary(vm, frame, BoundaryReason::Wfi);
    }
    if esr & 0b11 == 0 {
        vm.counts.count(TrapKind::Wfi);
        update_levels(vm, guest_now());
        if !vm.vgic.has_pending_deliverable() {
            // Nothing to deliver: sleep until the guest's timer (armed on
            // the EL2 timer) or a device interrupt is pending.
            timer::arm(vm.timers.next_deadline());
            timer::wait_for_interrupt();
        }
    } else {
        vm.counts.count(TrapKind::Wfe);
    }
    frame.elr += 4;
}

fn firmware_call(vm: &mut Vm, frame: &mut TrapFrame) {
    let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3]];
    let fid = frame.x[0] & 0xffff_ffff;
    match psci::handle(args, 0) {
        PsciOutcome::Return(v) => frame.x[0] = logged(vm, InputKind::FirmwareResult, 0, fid, v),
        PsciOutcome::PowerOff => {
            logged(vm, InputKind::FirmwareResult, 0, fid, 0);
            guest_stopped(vm, "powered off", ExitStatus::Success)
        }
        PsciOutcome::Reset => {
            logged(vm, InputKind::FirmwareResult, 0, fid, 0);
            guest_stopped(vm, "asked for a reset", ExitStatus::GuestReset)
        }
    }
}

/// An environment input: logged when recording, taken from the log when
/// replaying, `computed` otherwise.
fn logged(vm: &mut Vm, kind: InputKind, detail: u8, source: u64, computed: u64) -> u64 {
    match vm.epochs.as_mut() {
        Some(ep) => ep.input(kind, detail, source, computed),
        None => computed,
    }
}

fn guest_stopped(vm: &mut Vm, what: &str, status: ExitStatus) -> ! {
    println!("\nhypervisor: the guest {what}");
    println!("hypervisor: {}", vm.counts);
    if let Some(ep) = vm.epochs.as_mut() {
        ep.flush();
        let verb = match (ep.mode, ep.live) {
            (Mode::Record, _) => "recorded",
            (Mode::Replay, false) => "replayed",
            _ => "ran",
        };
        println!(
            "hypervisor: {verb} {} epochs, {} log entries",
            ep.epoch + 1,
            ep.entries
        );
        if ep.mode == Mode::Replay && !ep.live {
            println!("replay: complete: every epoch matched the log");
        }
    }
    power::stop(status)
}

fn on_sysreg(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
    let access = sr::decode(esr::iss(esr));
    let rt = access.rt as usize;
    let value = if rt == 31 { 0 } else { frame.x[rt] };
    let reg = access.reg();
    let result = if reg.is_id_register() && access.read {
        vm.counts.count(TrapKind::IdRegister);
        Some(id_regs::sanitize_id_register(
            reg,
            el2_regs::read_id_register(reg.crm, reg.op2),
        ))
    } else {
        let kind = if counter_or_timer(reg) == TrapKind::CounterRead {
            InputKind::CounterRead
        } else {
            InputKind::TimerRegRead
        };
        let source = sysreg_encoding(reg);
        if !timer_trap::handles(&access) {
            return inject_undefined(vm, frame);
        }
        // Guest time is an environment input: logged or replayed.
        let now = logged(vm, kind, 0, source, guest_now());
        let result = timer_trap::handle(&mut vm.timers, &access, now, value);
        if vm.epochs.is_some() {
            // The timer lines follow the emulation at this (logged) time:
            // deterministic on both boards.
            let _ = vm
                .vgic
                .set_level(VIRT_TIMER_INTID, vm.timers.virt.irq_level(now));
            let _ = vm
                .vgic
                .set_level(PHYS_TIMER_INTID, vm.timers.phys.irq_level(now));
        }
        match result {
            TimerTrap::Read(v) => {
                vm.counts.count(counter_or_timer(reg));
                Some(v)
            }
            TimerTrap::Written => {
                vm.counts.count(TrapKind::TimerRegister);
                None
            }
            TimerTrap::NotHandled => return inject_undefined(vm, frame),
        }
    };
    if let Some(v) = result
        && rt != 31
    {
        frame.x[rt] = v;
    }
    frame.elr += 4;
}

/// A system register as `op0:op1:CRn:CRm:op2` packed into 16 bits (the
/// `source` of a log entry).
fn sysreg_encoding(r: SysReg) -> u64 {
    ((r.op0 as u64) << 14)
        | ((r.op1 as u64) << 11)
        | ((r.crn as u64) << 7)
        | ((r.crm as u64) << 3)
        | r.op2 as u64
}

fn counter_or_timer(reg: SysReg) -> TrapKind {
    if matches!(
        reg,
        sr::CNTVCT_EL0 | sr::CNTPCT_EL0 | sr::CNTVCTSS_EL0 | sr::CNTPCTSS_EL0
    ) {
        TrapKind::CounterRead
    } else {
        TrapKind::TimerRegister
    }
}

fn on_data_abort(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
    let Ok(access) = esr::decode_data_abort(esr, sysreg::hpfar_el2(), sysreg::far_el2()) else {
        return inject_abort(vm, frame, esr);
    };
    vm.counts.count(if access.write {
        TrapKind::MmioWrite
    } else {
        TrapKind::MmioRead
    });
    let width = access.width as u8;
    let reg = access.reg as usize;
    let store = if reg == 31 {
        0
    } else {
        access.store_value(frame.x[reg])
    };
    let ipa = access.ipa;
    let result = emulate_device(vm, ipa, access.width, access.write.then_some(store));
    let result = match result {
        Ok(Some(v)) => Ok(Some(logged(vm, InputKind::MmioRead, width, ipa, v))),
        other => other,
    };
    match result {
        Ok(Some(v)) => {
            if reg != 31 {
                frame.x[reg] = access.load_value(v);
            }
            frame.elr += 4;
        }
        Ok(None) => frame.elr += 4,
        Err(()) => inject_abort(vm, frame, esr),
    }
}

/// Which emulated device a guest-physical address belongs to.
#[derive(Clone, Copy)]
enum Device {
    Distributor,
    Redistributor,
    Uart,
}

/// Emulates one device access: `store` is the value of a write, `None` for
/// a read. `Ok(Some(v))` is a read's value; `Err(())` means the address or
/// the access is not one the guest may make (it gets an abort).
fn emulate_device(vm: &mut Vm, ipa: u64, width: Width, store: Option<u64>) -> Result<Option<u64>, ()> {
    let (device, base) = if vm.gicd.contains(ipa) {
        (Device::Distributor, vm.gicd.base)
    } else if vm.gicr.contains(ipa) {
        (Device::Redistributor, vm.gicr.base)
    } else if vm.uart_window.contains(ipa) {
        (Device::Uart, vm.uart_window.base)
    } else {
        return Err(());
    };
    let (off, w) = (ipa - base, width as u8);
    match (device, store) {
        (Device::Distributor, None) => vm.vgic.distributor_read(off, w).map(Some).map_err(drop),
        (Device::Distributor, Some(v)) => vm.vgic.distributor_write(off, w, v).map(|_| None).map_err(drop),
        (Device::Redistributor, None) => vm.vgic.redistributor_read(off, w).map(Some).map_err(drop),
        (Device::Redistributor, Some(v)) => vm.vgic.redistributor_write(off, w, v).map(|_| None).map_err(drop),
        (Device::Uart, None) => vm.uart.read(off, width).map(Some).map_err(drop),
        (Device::Uart, Some(v)) => match vm.uart.write(off, width, v) {
            Ok(Some(byte)) => {
                console::write_raw(&[byte]);
                Ok(None)
            }
            Ok(None) => Ok(None),
            Err(_) => Err(()),
        },
    }
}

/// Offset of the vector an exception from the interrupted context uses
/// (Arm ARM D1.3.1): current EL with SP_EL0 / SP_ELx, or lower EL AArch64.
fn vector_offset(spsr: u64) -> u64 {
    let from_el1 = (spsr >> 2) & 3 == 1;
    match (from_el1, spsr & 1 == 1) {
        (true, false) => 0x000,
        (true, true) => 0x200,
        (false, _) => 0x400,
    }
}

fn inject(vm: &mut Vm, frame: &mut TrapFrame, esr_el1: u64, far: u64) {
    vm.counts.count(TrapKind::Injected);
    let e = El1Exception {
        esr: esr_el1,
        far,
        elr: frame.elr,
        spsr: frame.spsr,
    };
    // SAFETY: we resume the guest at its own vector with the state a real
    // exception would leave.
    let vbar = unsafe { el2_regs::deliver_to_el1(&e) };
    frame.elr = vbar + vector_offset(frame.spsr);
    frame.spsr = SPSR_EL1H_MASKED;
}

/// The guest executed something it may not: an undefined instruction
/// exception (EC 0, IL 1), as if the instruction did not exist.
fn inject_undefined(vm: &mut Vm, frame: &mut TrapFrame) {
    inject(vm, frame, 1 << 25, 0);
}

/// The guest touched an address it does not own: a synchronous external
/// abort (DFSC 0x10) at the same virtual address.
fn inject_abort(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
    let from_el1 = (frame.spsr >> 2) & 3 == 1;
    let ec: u64 = if from_el1 { 0x25 } else { 0x24 };
    let wnr = esr & (1 << 6);
    inject(
        vm,
        frame,
        (ec << 26) | (1 << 25) | wnr | 0x10,
        sysreg::far_el2(),
    );
}

/// A physical interrupt while the guest ran.
pub fn on_lower_irq(frame: &mut TrapFrame) {
    let mut guard = VM.lock();
    let Some(vm) = guard.as_mut() else { return };
    vm.counts.count(TrapKind::Irq);
    let epoch_over = take_physical_interrupts(vm);
    match vm.epochs.as_ref() {
        // With epochs, a physical interrupt changes nothing the guest sees
        // until the next boundary; the epoch counter's overflow is one.
        Some(_) => {
            if epoch_over {
                epoch_boundary(vm, frame, BoundaryReason::Overflow);
            }
        }
        None => before_entry(vm),
    }
}

/// Acknowledges every pending physical interrupt, silencing each source
/// (their lines are levels); returns whether the epoch counter overflowed.
fn take_physical_interrupts(vm: &mut Vm) -> bool {
    let mut epoch_over = false;
    loop {
        let intid = gicv3::acknowledge();
        if intid >= gicv3::SPURIOUS {
            break;
        }
        if intid == vm.hyp_timer_intid {
            timer::arm(None);
        }
        if intid == pmu::PMU_INTID
            && let Some(ep) = vm.epochs.as_ref()
            && ep.counter.overflowed()
        {
            ep.counter.clear_overflow();
            epoch_over = true;
        }
        gicv3::end_of_interrupt(intid);
    }
    epoch_over
}

/// The interrupt lines that are high at guest time `now`.
fn current_levels(vm: &Vm, now: u64) -> heapless::Vec<u32, 4> {
    let mut v = heapless::Vec::new();
    if vm.timers.virt.irq_level(now) {
        let _ = v.push(VIRT_TIMER_INTID);
    }
    if vm.timers.phys.irq_level(now) {
        let _ = v.push(PHYS_TIMER_INTID);
    }
    if vm.uart.irq_level() {
        let _ = v.push(vm.uart_intid);
    }
    v
}

fn apply_levels(vm: &mut Vm, high: &[u32]) {
    for line in [VIRT_TIMER_INTID, PHYS_TIMER_INTID, vm.uart_intid] {
        let _ = vm.vgic.set_level(line, high.contains(&line));
    }
}

/// Whether the guest has an interrupt to take (in the model or in an LR).
fn deliverable(vm: &Vm) -> bool {
    let lr_pending = (0..vm.lr_count).any(|i| (gicv3::read_lr(i) >> 62) & 1 == 1);
    lr_pending || vm.vgic.has_pending_deliverable()
}

/// The fingerprint at a boundary of `epoch`: the epoch's inputs, the vCPU,
/// the vGIC and a round-robin slice of guest RAM.
fn fingerprint_of(vm: &Vm, frame: &TrapFrame, epoch: u64, inputs: u64) -> u64 {
    let mut f = Fingerprint::new();
    f.word(inputs);
    f.vcpu(&VcpuState {
        x: frame.x,
        pc: frame.elr,
        pstate: frame.spsr,
        el1: el2_regs::read_el1_state(),
    });
    f.word(vm.vgic.snapshot_hash());
    let (off, len) = fingerprint::memory_slice(epoch, vm.guest_ram.size, 4096);
    // SAFETY: the slice lies inside guest RAM (memory_slice keeps it within
    // `size`), which the hypervisor's identity view (MMU off) can read.
    let words = unsafe {
        core::slice::from_raw_parts((vm.guest_ram.base + off) as *const u64, (len / 8) as usize)
    };
    f.words(words);
    f.finish()
}

/// An epoch boundary: fingerprint, log or check, interrupt lines, next epoch.
fn epoch_boundary(vm: &mut Vm, frame: &mut TrapFrame, reason: BoundaryReason) {
    let Some(ep) = vm.epochs.as_ref() else { return };
    let (count, epoch) = (ep.counter.elapsed(), ep.epoch);
    let inputs = ep.inputs_digest();
    let replaying = ep.mode == Mode::Replay && !ep.live;
    sync_list_registers(vm);
    let fp = fingerprint_of(vm, frame, epoch, inputs);
    let mut levels = current_levels(vm, guest_now());
    if reason == BoundaryReason::Wfi && !replaying {
        // Idle: wait for something to deliver, then end the epoch with it.
        loop {
            apply_levels(vm, &levels);
            if deliverable(vm) {
                break;
            }
            timer::arm(vm.timers.next_deadline());
            timer::wait_for_interrupt();
            take_physical_interrupts(vm);
            levels = current_levels(vm, guest_now());
        }
    }
    let Some(ep) = vm.epochs.as_mut() else { return };
    let high = ep.boundary(count, frame.elr, fp, &levels);
    apply_levels(vm, &high);
    if reason == BoundaryReason::Wfi {
        frame.elr += 4;
    }
    fill_list_registers(vm);
    if let Some(ep) = vm.epochs.as_mut() {
        ep.service_link();
    }
}

/// Brings the interrupt lines up to date at guest time `now`.
fn update_levels(vm: &mut Vm, now: u64) {
    let _ = vm
        .vgic
        .set_level(VIRT_TIMER_INTID, vm.timers.virt.irq_level(now));
    let _ = vm
        .vgic
        .set_level(PHYS_TIMER_INTID, vm.timers.phys.irq_level(now));
    let _ = vm.vgic.set_level(vm.uart_intid, vm.uart.irq_level());
}

/// Runs before every return to the guest: interrupt lines, list
/// registers, and the EL2 timer for the guest's next deadline.
fn before_entry(vm: &mut Vm) {
    sync_list_registers(vm);
    if vm.epochs.is_some() {
        // Only what is a function of the guest's own execution may change
        // between boundaries: the UART's line follows its registers.
        let _ = vm.vgic.set_level(vm.uart_intid, vm.uart.irq_level());
    } else {
        let now = guest_now();
        update_levels(vm, now);
        timer::arm(vm.timers.next_deadline().filter(|&d| d > now));
    }
    fill_list_registers(vm);
}

fn sync_list_registers(vm: &mut Vm) {
    let mut lrs = [0u64; MAX_LIST_REGISTERS];
    let n = vm.lr_count;
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = gicv3::read_lr(i);
    }
    vm.vgic.sync_from_list_registers(&lrs[..n]);
}

fn fill_list_registers(vm: &mut Vm) {
    let mut lrs = [0u64; MAX_LIST_REGISTERS];
    let n = vm.lr_count;
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = gicv3::read_lr(i);
    }
    vm.vgic.fill_list_registers(&mut lrs[..n]);
    for (i, lr) in lrs.iter().enumerate().take(n) {
        gicv3::write_lr(i, *lr);
    }
}
