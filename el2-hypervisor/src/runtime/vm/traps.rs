//! Synchronous exceptions from the guest: the dispatch on ESR_EL2.EC, the
//! handlers (which read and write the hardware and the guest's registers,
//! and return what the library decided: `el2_hypervisor::trap`), and the
//! one place the outcome is acted on.

use super::interrupts::*;
use super::timer_frame;
use super::*;
use crate::arch::guest_ram;
use el2_hypervisor::emul::device::{Completion, GuestAccess, WriteEffect};
use el2_hypervisor::emul::trng;
use el2_hypervisor::replica::engine::Stop;
use el2_hypervisor::trap::sysreg::{self as route, SysRegRoute};
use el2_hypervisor::trap::{self, Conduit, GuestStop, TrapOutcome, Wfx};
use el2_hypervisor::vm_core::{clock, lines as vm_lines};

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
    if counter_read(vm, frame, esr) {
        return;
    }
    match ExceptionClass::from_esr(esr) {
        ExceptionClass::SoftwareStepLowerEl => return on_step(vm, frame, esr),
        ExceptionClass::BreakpointLowerEl => return on_window_exit(vm, frame),
        _ => {}
    }
    // Fold what the guest did to its list registers (an acknowledge, an
    // EOI) into the model first: the access emulated below must see it,
    // and must not be undone by it.
    let mut lrs = sync_list_registers(vm);
    let outcome = if let Some(first) = first_touch(vm, esr) {
        first
    } else {
        dispatch(vm, frame, esr, &mut lrs)
    };
    act(vm, frame, esr, outcome);
    before_entry(vm, &mut lrs);
}

/// The commonest trap, a counter read (some 28,000 in a boot), answered
/// without the rest of an exit when it changes nothing else
/// (`timer_trap::counter_read_alone`). Returns whether it did.
fn counter_read(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) -> bool {
    if ExceptionClass::from_esr(esr) != ExceptionClass::SysRegTrap {
        return false;
    }
    let access = sr::decode(esr::iss(esr));
    let SysRegRoute::Timer {
        input: InputKind::CounterRead,
        source,
        read_kind,
    } = route::route(&access)
    else {
        return false;
    };
    // With epochs: guest time at this instruction (the epoch counter
    // read once), hashed into the epoch's inputs only if answered here.
    let count = vm.epochs.as_ref().map(|ep| ep.counter.elapsed());
    let now = match (vm.epochs.as_ref(), count) {
        (Some(ep), Some(c)) => ep.engine.guest_time(c),
        _ => Core.counter(),
    };
    if !timer_trap::counter_read_alone(&vm.timers, now) {
        return false;
    }
    if let (Some(ep), Some(c)) = (vm.epochs.as_mut(), count) {
        ep.engine.time(c, InputKind::CounterRead, source);
    }
    let TimerTrap::Read(v) = timer_trap::handle(&mut vm.timers, &access, now, 0) else {
        return false;
    };
    vm.counts.count(read_kind);
    frame.set_reg(access.rt, v);
    complete(frame, esr);
    true
}

/// What a trap that is not a first touch of guest RAM comes to.
fn dispatch(vm: &mut Vm, frame: &mut TrapFrame, esr: u64, lrs: &mut ListRegisters) -> TrapOutcome {
    match ExceptionClass::from_esr(esr) {
        ExceptionClass::WfxTrap => on_wfx(vm, frame, esr, lrs),
        ExceptionClass::Hvc64 => {
            vm.counts.count(TrapKind::Hvc);
            firmware_call(vm, frame, Conduit::Hvc).unwrap_or_else(TrapOutcome::from)
        }
        ExceptionClass::Smc64 => {
            vm.counts.count(TrapKind::Smc);
            firmware_call(vm, frame, Conduit::Smc).unwrap_or_else(TrapOutcome::from)
        }
        ExceptionClass::SysRegTrap => on_sysreg(vm, frame, esr).unwrap_or_else(TrapOutcome::from),
        ExceptionClass::DataAbortLowerEl => {
            on_data_abort(vm, frame, esr).unwrap_or_else(TrapOutcome::from)
        }
        // A fetch from an address the guest has nothing at (stage 2 maps
        // only its RAM): the abort a bus error would give.
        ExceptionClass::InstrAbortLowerEl => TrapOutcome::Inject(Fault::InstructionAbort {
            far: sysreg::far_el2(),
        }),
        // A guest BRK while it is stepped (MDCR_EL2.TDE routes it here):
        // given back to the guest as it was.
        ExceptionClass::Brk64 => TrapOutcome::Inject(Fault::Breakpoint {
            trap_esr: esr,
            far_el1: el2_regs::far_el1(),
        }),
        _ => TrapOutcome::Inject(Fault::Undefined),
    }
}

/// A stage-2 translation fault in a block of guest RAM the guest has not
/// touched before (a data access, an instruction fetch, or its stage-1
/// table walk): the block is zeroed and mapped, and the guest retries the
/// instruction (`mem::lazy_ram`). Not an environment input: both boards
/// take it at the same instruction, and the guest sees zeros either way.
/// `None` when the fault is anything else, which goes on as before.
fn first_touch(vm: &mut Vm, esr: u64) -> Option<TrapOutcome> {
    let ipa = esr::stage2_translation_fault(esr, sysreg::hpfar_el2)?;
    let block = vm.ram.first_touch(ipa)?;
    vm.counts.count(TrapKind::FirstTouch);
    guest_ram::zero(&block);
    let r = block.region();
    if let Err(e) = vm
        .stage2
        .map(r.base, r.base, r.size, Stage2Attrs::NormalRwx)
    {
        // The pool holds the tables for all of guest RAM; the guest
        // cannot cause this (only blocks inside its RAM are mapped).
        fail(
            ExitStatus::HypervisorException,
            format_args!("stage 2: cannot map guest RAM at {:#x}: {e:?}", r.base),
        );
    }
    guest_ram::publish_stage2();
    Some(TrapOutcome::Resume)
}

/// The one place a trap's outcome takes effect.
fn act(vm: &mut Vm, frame: &mut TrapFrame, esr: u64, outcome: TrapOutcome) {
    match outcome {
        TrapOutcome::Step => complete(frame, esr),
        TrapOutcome::Resume => {}
        TrapOutcome::Inject(fault) => inject(vm, frame, fault),
        TrapOutcome::Stop(stop) => guest_stopped(vm, stop),
        TrapOutcome::Replica(stop) => replica_stopped(vm, stop),
    }
}

/// The replica engine cannot go on: say why, and stop the board
/// (`replica::stop`: a divergence, or the peer gone in record/replay).
/// A trap's outcome, or what an epoch boundary on an interrupt found.
pub(super) fn replica_stopped(vm: &Vm, stop: Stop) -> ! {
    let epoch = vm.epochs.as_ref().map_or(0, |ep| ep.engine.epoch());
    println!("{}", stop.report(epoch));
    power::stop(stop.status())
}

fn on_wfx(vm: &mut Vm, frame: &mut TrapFrame, esr: u64, lrs: &mut ListRegisters) -> TrapOutcome {
    if Wfx::from_esr(esr) != Wfx::Wfi {
        vm.counts.count(TrapKind::Wfe);
        return TrapOutcome::Step;
    }
    vm.counts.count(TrapKind::Wfi);
    if vm.epochs.is_some() {
        // A WFI ends the epoch at this instruction; then step past it.
        return match epoch_boundary(vm, frame, BoundaryReason::Wfi, lrs) {
            Ok(()) => TrapOutcome::Step,
            Err(s) => TrapOutcome::Replica(s),
        };
    }
    update_levels(vm, guest_now(vm));
    if !vm.devices.vgic.has_pending_deliverable() {
        // Nothing to deliver: sleep until the guest's timer (armed on
        // the EL2 timer) or a device interrupt is pending.
        clock::sleep(&mut Core, physical_deadline(vm, vm.timers.next_deadline()));
    }
    TrapOutcome::Step
}

/// Steps past a trapped instruction the hypervisor emulated: the one place
/// the guest's PC advances (by ESR_EL2.IL, clearing PSTATE.SS and BTYPE as
/// executing it would have: `emul::exception::skip_instruction`).
fn complete(frame: &mut TrapFrame, esr: u64) {
    (frame.elr, frame.spsr) = exception::skip_instruction(frame.elr, frame.spsr, esr);
}

fn firmware_call(
    vm: &mut Vm,
    frame: &mut TrapFrame,
    conduit: Conduit,
) -> Result<TrapOutcome, Stop> {
    let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3]];
    let fid = frame.x[0] & 0xffff_ffff;
    if vm.timers.frame.is_some()
        && let Some(call) = trng::handle(args)
    {
        return firmware_trng(vm, frame, conduit, call);
    }
    let decision = psci::handle(args, 0);
    // The result is an input: logged, or the log's.
    let result = logged(vm, InputKind::FirmwareResult, 0, fid, decision.result())?;
    if let PsciOutcome::Return(_) = decision {
        frame.x[0] = result;
    }
    Ok(trap::firmware(decision, conduit))
}

/// A TRNG call (`emul::trng`, offered to a guest with the memory-mapped
/// timer): its random words and x0 are inputs, logged like every firmware
/// result (detail 1-3 for X1-X3, 0 for x0).
fn firmware_trng(
    vm: &mut Vm,
    frame: &mut TrapFrame,
    conduit: Conduit,
    call: trng::TrngCall,
) -> Result<TrapOutcome, Stop> {
    let fid = frame.x[0] & 0xffff_ffff;
    let (x0, random) = match call {
        trng::TrngCall::Return(v) => (v, None),
        trng::TrngCall::Random { bits, wide } => {
            let mut words = [0u64; 3];
            for (i, w) in words.iter_mut().enumerate() {
                let fresh = trng::mix(Core.counter(), i as u64);
                *w = logged(vm, InputKind::FirmwareResult, 1 + i as u8, fid, fresh)?;
            }
            (0, Some(trng::random_registers(bits, wide, words)))
        }
    };
    let x0 = logged(vm, InputKind::FirmwareResult, 0, fid, x0)?;
    frame.x[0] = x0;
    if let Some(r) = random {
        frame.x[1..4].copy_from_slice(&r);
    }
    Ok(trap::firmware(PsciOutcome::Return(x0), conduit))
}

/// An environment input: logged when recording, taken from the log when
/// replaying, `computed` otherwise; or why the engine cannot go on.
fn logged(
    vm: &mut Vm,
    kind: InputKind,
    detail: u8,
    source: u64,
    computed: u64,
) -> Result<u64, Stop> {
    match vm.epochs.as_mut() {
        Some(ep) => ep.input(kind, detail, source, computed),
        None => Ok(computed),
    }
}

fn guest_stopped(vm: &mut Vm, stop: GuestStop) -> ! {
    println!("\nhypervisor: the guest {}", stop.what());
    println!("hypervisor: {}", vm.counts);
    // The output leaves first; a gone peer is a stop of its own then.
    if let Some(Err(s)) = vm.epochs.as_mut().map(|ep| ep.flush()) {
        replica_stopped(vm, s);
    }
    if let Some(ep) = vm.epochs.as_ref() {
        println!(
            "hypervisor: {}",
            vm.epoch_stats.report(u64::from(vm.timers.frequency))
        );
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
    power::stop(stop.status())
}

fn on_sysreg(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) -> Result<TrapOutcome, Stop> {
    let access = sr::decode(esr::iss(esr));
    let reg = access.reg();
    let value = frame.reg(access.rt);
    let result = match route::route(&access) {
        SysRegRoute::Undefined => return Ok(TrapOutcome::Inject(Fault::Undefined)),
        SysRegRoute::Sgi(group) => {
            vm.counts.count(TrapKind::Sgi);
            vm.devices.vgic.generate_sgi(value, group.is_group1());
            return Ok(TrapOutcome::Step);
        }
        SysRegRoute::Debug => {
            // The debug hardware is the hypervisor's: reads as zero,
            // writes ignored.
            vm.counts.count(TrapKind::DebugRegister);
            if !access.read {
                return Ok(TrapOutcome::Step);
            }
            0
        }
        SysRegRoute::IdRegister => {
            vm.counts.count(TrapKind::IdRegister);
            id_regs::sanitize_id_register(reg, el2_regs::read_id_register(reg.crm, reg.op2))
        }
        SysRegRoute::Timer {
            input,
            source,
            read_kind,
        } => {
            // Guest time: with epochs a function of the instruction count,
            // the same on both boards and not logged (`Engine::time`);
            // without, the counter.
            let now = match vm.epochs.as_mut() {
                Some(ep) => ep.time(input, source),
                None => Core.counter(),
            };
            let result = timer_trap::handle(&mut vm.timers, &access, now, value);
            if vm.epochs.is_some() {
                // The timer lines follow the emulation at this guest time:
                // deterministic on both boards.
                vm_lines::follow_timers(&mut vm.devices.vgic, &vm.timers, now);
                vm.epoch_stats.lines_at(&vm.timers, now);
            }
            match result {
                TimerTrap::Read(v) => {
                    vm.counts.count(read_kind);
                    v
                }
                TimerTrap::Written => {
                    vm.counts.count(TrapKind::TimerRegister);
                    // A new deadline may end the epoch sooner.
                    end_at_deadline(vm);
                    return Ok(TrapOutcome::Step);
                }
                TimerTrap::NotHandled => return Ok(TrapOutcome::Inject(Fault::Undefined)),
            }
        }
    };
    frame.set_reg(access.rt, result);
    Ok(TrapOutcome::Step)
}

fn on_data_abort(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) -> Result<TrapOutcome, Stop> {
    let far = sysreg::far_el2();
    // The guest touched an address it does not own: a synchronous external
    // abort at the same virtual address.
    let abort = TrapOutcome::Inject(Fault::DataAbort { trap_esr: esr, far });
    let Ok(access) = esr::decode_data_abort(esr, sysreg::hpfar_el2(), far) else {
        return Ok(abort);
    };
    // An access to the memory-mapped timer's frame reads guest time once
    // (`timer_frame`); no other device does.
    let mut timer = None;
    let epochs = &mut vm.epochs;
    let result = vm.devices.access(
        GuestAccess::from_abort(&access, frame.reg(access.reg)),
        &mut vm.timers,
        |kind, source| {
            let now = timer_frame::guest_time(epochs, kind, source);
            timer = Some((kind, now));
            now
        },
    );
    vm.counts.count(timer_frame::trap_kind(timer, access.write));
    if let Some((_, now)) = timer {
        timer_frame::after_access(vm, now, access.write);
    }
    match result {
        // A value of the emulated state: the same on both boards, so not
        // logged.
        Ok(Completion::Read(v)) => frame.set_reg(access.reg, access.load_value(v)),
        // A value from outside the board's model (console RX): an input.
        Ok(Completion::Outside(v)) => {
            let v = logged(vm, InputKind::MmioRead, access.width as u8, access.ipa, v)?;
            frame.set_reg(access.reg, access.load_value(v));
        }
        Ok(Completion::Written(WriteEffect::None)) => {}
        // Out now, or held by the output rule (a pair's primary), or kept
        // for a takeover (its backup).
        Ok(Completion::Written(WriteEffect::Transmit(byte))) => match vm.epochs.as_mut() {
            Some(ep) => ep.guest_output(&[byte])?,
            None => console::write_guest(&[byte]),
        },
        Err(_) => return Ok(abort),
    }
    Ok(TrapOutcome::Step)
}

/// Makes the guest take `fault` at the instruction that trapped, as the
/// architecture would have (`emul::exception::Injection`: syndrome,
/// vector, and the PSTATE at the vector per AArch64.TakeException).
fn inject(vm: &mut Vm, frame: &mut TrapFrame, fault: Fault) {
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
