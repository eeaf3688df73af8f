//! Interrupts: physical ones taken at EL2, the guest's lines and list
//! registers, and epoch boundaries (where lines may change).

use super::*;
use el2_hypervisor::replica::engine::Stop;
use el2_hypervisor::replica::epoch_stats::EpochEnd;
use el2_hypervisor::replica::epoch_time::Pace;
use el2_hypervisor::replica::exclusive;
use el2_hypervisor::replica::step_to_count::{self, Landed, STEP_MARGIN};
use el2_hypervisor::vgic::{ExitListRegisters, quiet_maintenance};
use el2_hypervisor::vm_core::clock;
use el2_hypervisor::vm_core::lines::{self as vm_lines, GuestLines, Levels};

/// A physical interrupt while the guest ran.
pub fn on_lower_irq(frame: &mut TrapFrame) {
    let mut guard = VM.lock();
    let Some(vm) = guard.as_mut() else { return };
    let taken = take_physical_interrupts(vm);
    vm.counts.count(if taken.maintenance {
        TrapKind::Maintenance
    } else {
        TrapKind::Irq
    });
    match vm.epochs.as_ref() {
        // With epochs, a physical interrupt changes nothing the guest sees
        // until the next boundary; the epoch counter's overflow is one.
        // The maintenance interrupt is the other: the guest's own
        // deactivation raised it, so it comes at the same instruction on
        // both boards, and the refill is made from the same model state
        // (`vgic::maintenance`).
        Some(_) => {
            // A step or an early overflow that is not the end yet
            // changes nothing, and a maintenance refill still happens.
            if !(taken.epoch_over && counter_landed(vm, frame)) && taken.maintenance {
                let mut lrs = sync_list_registers(vm);
                before_entry(vm, &mut lrs);
            }
        }
        None => {
            let mut lrs = sync_list_registers(vm);
            before_entry(vm, &mut lrs);
        }
    }
}

/// A software step of the guest (EC 0x32) towards an epoch's exact end
/// (`replica::step_to_count`). A step exception with no stepping in
/// progress (none is known to happen: MDSCR_EL1.SS is cleared when
/// stepping stops) changes nothing.
pub(super) fn on_step(vm: &mut Vm, frame: &mut TrapFrame, esr: u64) {
    vm.counts.count(TrapKind::Step);
    if crate::arch::pmu::stepping() {
        el2_regs::clear_guest_step_state(frame.elr);
        if step_to_count::stepped_nothing(esr)
            && let Some(ep) = vm.epochs.as_mut()
        {
            ep.counter.uncount_empty_step();
        }
        counter_landed(vm, frame);
    }
}

/// The epoch counter's overflow, or a software step, landed: at the
/// epoch's end (a boundary, or a timer deadline met inside the epoch), or
/// not yet (the counter has armed the next overflow or step, and nothing
/// the guest sees changes), or past it, which the board cannot undo.
/// Returns whether it was the end (and the list registers were filled).
fn counter_landed(vm: &mut Vm, frame: &mut TrapFrame) -> bool {
    let ram = vm.ram.region();
    let Some(ep) = vm.epochs.as_mut() else {
        return false;
    };
    if crate::arch::pmu::in_window() {
        // The window's budget ran out (the guest spins inside it): the
        // board takes control back, and stepping resumes from here.
        crate::arch::pmu::end_window();
    } else if ep.counter.lands_by_steps() && rewind_exclusive_window(&mut ep.counter, frame, ram) {
        vm.counts.count(TrapKind::ExclusiveWindow);
        return false;
    }
    match ep.counter.landed() {
        Landed::End => {}
        Landed::Short(_) => return false,
        Landed::Overshot { by } => fail(
            ExitStatus::HypervisorException,
            format_args!(
                "epoch counter: the overflow came {by} instructions past the epoch's end ({}): more skid than the step margin ({STEP_MARGIN})",
                ep.counter.end()
            ),
        ),
    }
    let mut lrs = sync_list_registers(vm);
    if vm.epochs.as_mut().is_some_and(|ep| ep.deadline_inside()) {
        deadline_inside(vm, &mut lrs);
    } else if let Err(s) = epoch_boundary(vm, frame, BoundaryReason::Overflow, &mut lrs) {
        super::traps::replica_stopped(vm, s);
    }
    true
}

/// An exit that lands where the two boards differ (the skidded overflow,
/// a step) inside one of the guest's exclusive windows: the guest is
/// rewound to the window's load-exclusive, the rewound instructions are
/// uncounted, and the window runs again whole under breakpoints
/// (`replica::exclusive`). Returns whether it was.
fn rewind_exclusive_window(
    counter: &mut crate::arch::pmu::CycleCounter,
    frame: &mut TrapFrame,
    ram: board_support::Region,
) -> bool {
    // AArch64 guest code only; an exit from it is from EL1 or EL0.
    if exception::is_aarch32(frame.spsr) {
        return false;
    }
    let el0 = !exception::is_el1(frame.spsr);
    let pc = frame.elr;
    let Some(w) = exclusive::window(pc, |va| el2_regs::read_guest_insn(va, el0, ram)) else {
        return false;
    };
    counter.uncount(w.rewound(pc));
    frame.elr = w.load;
    counter.arm_backstop(exclusive::BUDGET);
    crate::arch::pmu::run_window(&w.exits);
    true
}

/// A breakpoint of an exclusive window run whole (EC 0x30): out of the
/// window, the landing decides what next, as a step's would.
pub(super) fn on_window_exit(vm: &mut Vm, frame: &mut TrapFrame) {
    if crate::arch::pmu::in_window() {
        crate::arch::pmu::end_window();
        counter_landed(vm, frame);
    }
}

/// What [`take_physical_interrupts`] found.
#[derive(Clone, Copy, Default)]
pub(super) struct Taken {
    /// The epoch counter overflowed.
    pub epoch_over: bool,
    /// The vGIC's maintenance interrupt: refill the list registers.
    pub maintenance: bool,
}

/// Acknowledges every pending physical interrupt, silencing each source
/// (their lines are levels; the maintenance interrupt's is lowered by
/// `vgic::quiet_maintenance`, which changes nothing the guest sees).
pub(super) fn take_physical_interrupts(vm: &mut Vm) -> Taken {
    let mut taken = Taken::default();
    while let Some(acked) = gic::acknowledge() {
        let intid = acked.intid;
        if intid == vm.hyp_timer_intid {
            Core.arm_timer(None);
        }
        if intid == vm.pmu_intid
            && let Some(ep) = vm.epochs.as_ref()
            && ep.counter.overflowed()
        {
            ep.counter.clear_overflow();
            taken.epoch_over = true;
        }
        if intid == vm.maintenance_intid {
            quiet_maintenance(&mut Core, vm.devices.vgic.lr_format(), vm.lr_count);
            taken.maintenance = true;
        }
        gic::end_of_interrupt(acked);
    }
    taken
}

/// The guest's lines (`vm_core::lines`: what they are is decided there).
pub(super) const fn lines(vm: &Vm) -> GuestLines {
    GuestLines::new(vm.uart_intid)
}

/// The interrupt lines that are high at guest time `now`.
pub(super) fn current_levels(vm: &Vm, now: u64) -> Levels {
    lines(vm).current(&vm.timers, &vm.devices.uart, now)
}

pub(super) fn apply_levels(vm: &mut Vm, high: &[u32]) {
    lines(vm).apply(&mut vm.devices.vgic, high);
}

/// Whether the guest has an interrupt to take (in the model, or pending in
/// one of the list registers read at this exit).
pub(super) fn deliverable(vm: &Vm, lrs: &ListRegisters) -> bool {
    vm_lines::deliverable(&vm.devices.vgic, lrs)
}

/// The fingerprint at a boundary of `epoch`: the epoch's inputs, the vCPU
/// (with FP/SIMD and the virtual CPU interface), the vGIC, the emulated
/// timers and PL011, and a round-robin slice of guest RAM.
pub(super) fn fingerprint_of(vm: &Vm, frame: &TrapFrame, epoch: u64, inputs: u64) -> u64 {
    let mut f = Fingerprint::new();
    f.word(inputs);
    f.vcpu(&VcpuState {
        x: frame.x,
        pc: frame.elr,
        pstate: frame.spsr,
        el1: el2_regs::read_el1_state(),
        fp: el2_regs::read_fp_state(),
        cpu_interface: gic::read_cpu_interface_state(),
    });
    f.word(vm.devices.vgic.snapshot_hash());
    f.words(&vm.timers.state_words());
    f.words(&vm.devices.uart.state_words());
    // Untouched blocks are hashed as the zeros the guest would find there,
    // without reading them (`LazyRam::hash_words`).
    let (off, len) = fingerprint::memory_slice(epoch, vm.ram.region().size, 4096);
    vm.ram.hash_words(&Core, off, len, |w| f.word(w));
    f.finish()
}

/// A timer deadline met inside the epoch, at its exact instruction: the
/// timers' lines follow guest time here, as at a trapped timer access
/// (the same instruction, and so the same time, on both boards), and the
/// guest resumes with the interrupt to take.
fn deadline_inside(vm: &mut Vm, lrs: &mut ListRegisters) {
    let now = guest_now(vm);
    vm_lines::follow_timers(&mut vm.devices.vgic, &vm.timers, now);
    vm.epoch_stats.lines_at(&vm.timers, now);
    vm.epoch_stats.inline_deadline();
    // The epoch runs on to its end, or to another timer's deadline.
    end_at_deadline(vm);
    before_entry(vm, lrs);
}

/// An epoch boundary: fingerprint, log or check, interrupt lines, next
/// epoch. `lrs` are the list registers this exit read and synced. An
/// error is the engine's stop, for the caller to act on.
pub(super) fn epoch_boundary(
    vm: &mut Vm,
    frame: &mut TrapFrame,
    reason: BoundaryReason,
    lrs: &mut ListRegisters,
) -> Result<(), Stop> {
    let Some(ep) = vm.epochs.as_ref() else {
        return Ok(());
    };
    let (count, epoch, steps) = (ep.counter.elapsed(), ep.engine.epoch(), ep.counter.steps());
    let why = match reason {
        BoundaryReason::Wfi => EpochEnd::Idle,
        BoundaryReason::Overflow if ep.counter.ends_early() => EpochEnd::Deadline,
        BoundaryReason::Overflow => EpochEnd::Full,
    };
    let inputs = ep.inputs_digest();
    let replaying = ep.replaying();
    let fp = fingerprint_of(vm, frame, epoch, inputs);
    let pace = match reason {
        BoundaryReason::Overflow => Pace::Running,
        BoundaryReason::Wfi => Pace::Idle,
    };
    // The next epoch's base, and the lines as they are then.
    let mut time = next_time(vm, pace);
    let mut levels = current_levels(vm, time);
    if reason == BoundaryReason::Wfi && !replaying {
        // Idle: wait for something to deliver, then end the epoch with it.
        loop {
            apply_levels(vm, &levels);
            if deliverable(vm, lrs) {
                break;
            }
            // Wake for the guest's next deadline, or sooner when the
            // link is due a heartbeat: an idle guest must not pass for a
            // dead board.
            let guest = physical_deadline(vm, vm.timers.next_deadline());
            let link = vm.epochs.as_ref().and_then(|e| e.idle_wake());
            clock::sleep(&mut Core, clock::earliest(guest, link));
            take_physical_interrupts(vm);
            if let Some(ep) = vm.epochs.as_mut() {
                ep.service_link()?;
            }
            time = next_time(vm, pace);
            levels = current_levels(vm, time);
        }
    }
    let Some(ep) = vm.epochs.as_mut() else {
        return Ok(());
    };
    let high = ep.boundary(count, frame.elr, fp, &levels, time)?;
    let base = ep.guest_now();
    apply_levels(vm, &high);
    vm.epoch_stats.ended(why);
    vm.epoch_stats.stepped(steps);
    vm.epoch_stats.lines_at(&vm.timers, base);
    fill_list_registers(vm, lrs);
    if let Some(ep) = vm.epochs.as_mut() {
        ep.service_link()?;
    }
    end_at_deadline(vm);
    Ok(())
}

/// The next epoch's base if the boundary were now (`Epochs::next_time`).
fn next_time(vm: &mut Vm, pace: Pace) -> u64 {
    let deadline = vm.timers.next_deadline();
    vm.epochs
        .as_mut()
        .map_or(0, |ep| ep.next_time(pace, deadline))
}

/// With epochs, the epoch in progress ends where guest time reaches the
/// guest's next timer deadline, if that comes first. Called where the
/// deadline or the epoch's base can change: a timer register written, a
/// boundary, a deadline met inside the epoch.
pub(super) fn end_at_deadline(vm: &mut Vm) {
    let deadline = vm.timers.next_deadline();
    if let Some(ep) = vm.epochs.as_mut() {
        ep.end_at_deadline(deadline);
    }
}

/// Brings the interrupt lines up to date at guest time `now`.
pub(super) fn update_levels(vm: &mut Vm, now: u64) {
    lines(vm).update(&mut vm.devices.vgic, &vm.timers, &vm.devices.uart, now);
}

/// Runs before every return to the guest: interrupt lines, list
/// registers (read and synced at the start of this exit), and the EL2
/// timer for the guest's next deadline.
pub(super) fn before_entry(vm: &mut Vm, lrs: &mut ListRegisters) {
    if vm.epochs.is_some() {
        // Only what is a function of the guest's own execution may change
        // between boundaries: the UART's line follows its registers.
        lines(vm).follow_uart(&mut vm.devices.vgic, &vm.devices.uart);
    } else {
        let now = guest_now(vm);
        update_levels(vm, now);
        clock::arm_for_guest(&mut Core, guest_clock(vm), vm.timers.next_deadline(), now);
    }
    fill_list_registers(vm, lrs);
}

/// The list registers of this exit (`vgic::ExitListRegisters`).
pub(super) type ListRegisters = ExitListRegisters;

/// Reads ICH_LR<n>_EL2 and folds what the guest did to them into the model.
pub(super) fn sync_list_registers(vm: &mut Vm) -> ListRegisters {
    ExitListRegisters::sync(&mut vm.devices.vgic, &Core, vm.lr_count)
}

/// Lets the model fill the list registers read at this exit, and writes them.
pub(super) fn fill_list_registers(vm: &mut Vm, lrs: &mut ListRegisters) {
    lrs.fill(&mut vm.devices.vgic, &mut Core);
}
