//! Synchronous exceptions from the guest: the dispatch on ESR_EL2.EC and
//! what each trapped access gets (emulation, a logged input, or an
//! exception injected into the guest).

use super::interrupts::*;
use super::*;

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
    // Fold what the guest did to its list registers (an acknowledge, an
    // EOI) into the model first: the access emulated below must see it,
    // and must not be undone by it.
    let mut lrs = sync_list_registers(vm);
    match ExceptionClass::from_esr(esr) {
        ExceptionClass::WfxTrap => on_wfx(vm, frame, esr, &mut lrs),
        ExceptionClass::Hvc64 => {
            vm.counts.count(TrapKind::Hvc);
            firmware_call(vm, frame);
        }
        ExceptionClass::Smc64 => {
            vm.counts.count(TrapKind::Smc);
            // A trapped SMC returns to the SMC itself: step past it. (An
            // HVC's return address is already past it.)
            complete(frame, esr);
            firmware_call(vm, frame);
        }
        ExceptionClass::SysRegTrap => on_sysreg(vm, frame, esr),
        ExceptionClass::DataAbortLowerEl => on_data_abort(vm, frame, esr),
        // A fetch from an address the guest has nothing at (stage 2 maps
        // only its RAM): the abort a bus error would give.
        ExceptionClass::InstrAbortLowerEl => inject(
            vm,
            frame,
            Fault::InstructionAbort {
                far: sysreg::far_el2(),
            },
        ),
        _ => inject_undefined(vm, frame),
    }
    before_entry(vm, &mut lrs);
}

pub(super) fn on_wfx(vm: &mut Vm, frame: &mut TrapFrame, esr: u64, lrs: &mut ListRegisters) {
    // ISS.TI (bits 1:0): 0 WFI, 1 WFE, 2 WFIT, 3 WFET.
    if esr & 0b11 == 0 && vm.epochs.is_some() {
        vm.counts.count(TrapKind::Wfi);
        // A WFI ends the epoch at this instruction; then step past it.
        epoch_boundary(vm, frame, BoundaryReason::Wfi, lrs);
        return complete(frame, esr);
    }
    if esr & 0b11 == 0 {
        vm.counts.count(TrapKind::Wfi);
        update_levels(vm, guest_now(vm));
        if !vm.vgic.has_pending_deliverable() {
            // Nothing to deliver: sleep until the guest's timer (armed on
            // the EL2 timer) or a device interrupt is pending.
            timer::arm(physical_deadline(vm, vm.timers.next_deadline()));
            timer::wait_for_interrupt();
        }
    } else {
        vm.counts.count(TrapKind::Wfe);
    }
    complete(frame, esr);
}

/// Steps past a trapped instruction the hypervisor emulated: the one place
/// the guest's PC advances (by ESR_EL2.IL, clearing PSTATE.SS and BTYPE as
/// executing it would have: `emul::exception::skip_instruction`).
pub(super) fn complete(frame: &mut TrapFrame, esr: u64) {
    (frame.elr, frame.spsr) = exception::skip_instruction(frame.elr, frame.spsr, esr);
}

pub(super) fn firmware_call(vm: &mut Vm, frame: &mut TrapFrame) {
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
pub(super) fn logged(vm: &mut Vm, kind: InputKind, detail: u8, source: u64, computed: u64) -> u64 {
    match vm.epochs.as_mut() {
        Some(ep) => ep.input(kind, detail, source, computed),
        None => computed,
    }
}

pub(super) fn guest_stopped(vm: &mut Vm, what: &str, status: ExitStatus) -> ! {
    println!("\nhypervisor: the guest {what}");
    println!("hypervisor: {}", vm.counts);
    if let Some(ep) = vm.epochs.as_mut() {
        ep.flush();
        let verb = match (ep.mode, ep.engine.live()) {
            (Mode::Record, _) => "recorded",
            (Mode::Replay | Mode::Backup, false) => "replayed",
            _ => "ran",
        };
        println!(
            "hypervisor: {verb} {} epochs, {} log entries",
            ep.engine.epoch() + 1,
            ep.engine.entries()
        );
        if ep.replaying() {
            println!("replay: complete: every epoch matched the log");
        }
        if ep.mode.is_pair() {
            println!("{}", ep.summary());
        }
    }
    power::stop(status)
}

pub(super) fn on_sysreg(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
    let access = sr::decode(esr::iss(esr));
    let rt = access.rt as usize;
    let value = if rt == 31 { 0 } else { frame.x[rt] };
    let reg = access.reg();
    if let Some(group) = sr::sgi_register(reg) {
        if access.read {
            // Write-only registers (IHI 0069H §12.2): UNDEFINED to read.
            return inject_undefined(vm, frame);
        }
        // A function of the guest's own execution (the value it wrote, at
        // this instruction): the same on both boards, not an input.
        vm.counts.count(TrapKind::Sgi);
        vm.vgic.generate_sgi(value, group.is_group1());
        return complete(frame, esr);
    }
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
        // The board's own clock: the engine logs it, replays the log's, or
        // shifts it once live (`Engine::input`).
        let now = logged(vm, kind, 0, source, timer::counter());
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
    complete(frame, esr);
}

/// A system register as `op0:op1:CRn:CRm:op2` packed into 16 bits (the
/// `source` of a log entry).
pub(super) fn sysreg_encoding(r: SysReg) -> u64 {
    ((r.op0 as u64) << 14)
        | ((r.op1 as u64) << 11)
        | ((r.crn as u64) << 7)
        | ((r.crm as u64) << 3)
        | r.op2 as u64
}

pub(super) fn counter_or_timer(reg: SysReg) -> TrapKind {
    if matches!(
        reg,
        sr::CNTVCT_EL0 | sr::CNTPCT_EL0 | sr::CNTVCTSS_EL0 | sr::CNTPCTSS_EL0
    ) {
        TrapKind::CounterRead
    } else {
        TrapKind::TimerRegister
    }
}

pub(super) fn on_data_abort(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
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
            complete(frame, esr);
        }
        Ok(None) => complete(frame, esr),
        Err(()) => inject_abort(vm, frame, esr),
    }
}

/// Which emulated device a guest-physical address belongs to.
#[derive(Clone, Copy)]
pub(super) enum Device {
    Distributor,
    Redistributor,
    Uart,
}

/// Emulates one device access: `store` is the value of a write, `None` for
/// a read. `Ok(Some(v))` is a read's value; `Err(())` means the address or
/// the access is not one the guest may make (it gets an abort).
pub(super) fn emulate_device(
    vm: &mut Vm,
    ipa: u64,
    width: Width,
    store: Option<u64>,
) -> Result<Option<u64>, ()> {
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
        (Device::Distributor, Some(v)) => vm
            .vgic
            .distributor_write(off, w, v)
            .map(|_| None)
            .map_err(drop),
        (Device::Redistributor, None) => vm.vgic.redistributor_read(off, w).map(Some).map_err(drop),
        (Device::Redistributor, Some(v)) => vm
            .vgic
            .redistributor_write(off, w, v)
            .map(|_| None)
            .map_err(drop),
        (Device::Uart, None) => vm.uart.read(off, width).map(Some).map_err(drop),
        (Device::Uart, Some(v)) => match vm.uart.write(off, width, v) {
            Ok(Some(byte)) => {
                // Out now, or held by the output rule (a pair's primary),
                // or kept for a takeover (its backup).
                match vm.epochs.as_mut() {
                    Some(ep) => ep.guest_output(&[byte]),
                    None => console::write_guest(&[byte]),
                }
                Ok(None)
            }
            Ok(None) => Ok(None),
            Err(_) => Err(()),
        },
    }
}

/// Makes the guest take `fault` at the instruction that trapped, as the
/// architecture would have (`emul::exception::Injection`: syndrome,
/// vector, and the PSTATE at the vector per AArch64.TakeException).
pub(super) fn inject(vm: &mut Vm, frame: &mut TrapFrame, fault: Fault) {
    vm.counts.count(TrapKind::Injected);
    let inj = Injection::new(
        fault,
        frame.elr,
        frame.spsr,
        el2_regs::sctlr_el1(),
        vm.pstate_features,
    );
    let e = El1Exception {
        esr: inj.esr_el1,
        far: inj.far_el1,
        elr: inj.elr_el1,
        spsr: inj.spsr_el1,
    };
    // SAFETY: we resume the guest at its own vector with the state a real
    // exception would leave.
    let vbar = unsafe { el2_regs::deliver_to_el1(&e) };
    frame.elr = inj.new_elr(vbar);
    frame.spsr = inj.new_spsr;
}

/// The guest executed something it may not: an undefined instruction
/// exception, as if the instruction did not exist.
pub(super) fn inject_undefined(vm: &mut Vm, frame: &mut TrapFrame) {
    inject(vm, frame, Fault::Undefined);
}

/// The guest touched an address it does not own: a synchronous external
/// abort at the same virtual address (`esr` is the data abort's ESR_EL2).
pub(super) fn inject_abort(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
    let far = sysreg::far_el2();
    inject(vm, frame, Fault::DataAbort { trap_esr: esr, far });
}
