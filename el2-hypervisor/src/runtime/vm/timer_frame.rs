//! The memory-mapped timer's frame as the trap path sees it
//! (`el2_hypervisor::emul::timer_mem`): guest time for an access to it,
//! how the access is counted, and what follows it. Kept apart from the
//! trap dispatch; `traps::on_data_abort` calls in.

use super::interrupts::end_at_deadline;
use super::*;
use el2_hypervisor::vm_core::lines as vm_lines;

/// Guest time at the accessing instruction: with epochs base + count
/// (`Engine::time`, hashed into the epoch's inputs as `kind` from
/// `source`, the register's address, and not logged), exactly as a
/// trapped counter register is answered; without, the counter.
pub(super) fn guest_time(epochs: &mut Option<Epochs>, kind: InputKind, source: u64) -> u64 {
    match epochs.as_mut() {
        Some(ep) => ep.time(kind, source),
        None => Core.counter(),
    }
}

/// How a data abort is counted: a read of the frame's counter apart
/// (`timer` is what the access read of guest time, if it did).
pub(super) fn trap_kind(timer: Option<(InputKind, u64)>, write: bool) -> TrapKind {
    match (timer, write) {
        (Some((InputKind::CounterRead, _)), false) => TrapKind::MmioCounter,
        (_, true) => TrapKind::MmioWrite,
        (_, false) => TrapKind::MmioRead,
    }
}

/// After an access to the frame at guest time `now`, as after a trapped
/// timer register (`traps::on_sysreg`): with epochs the timers' lines
/// follow the emulation at `now` (the same instruction, so the same time,
/// on both boards), and a write may bring the epoch's end forward to a
/// new deadline. Without epochs `before_entry` does both.
pub(super) fn after_access(vm: &mut Vm, now: u64, write: bool) {
    if vm.epochs.is_none() {
        return;
    }
    vm_lines::follow_timers(&mut vm.devices.vgic, &vm.timers, now);
    vm.epoch_stats.lines_at(&vm.timers, now);
    if write {
        end_at_deadline(vm);
    }
}
