//! EL2 exception entry: the trap frame and the dispatch on the vector kind.

use super::{console, power, sysreg};
use el2_hypervisor::esr::{ExceptionClass, Report};
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::replica::step_to_count::Exit;

core::arch::global_asm!(include_str!("vectors.s"));

/// The interrupted context as vectors.s saves it (its layout is the
/// library's, which the vectors' offsets follow).
pub use el2_hypervisor::trap::TrapFrame;

const KIND_NAMES: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

fn fatal(frame: &TrapFrame, kind: u64) -> ! {
    let report = Report {
        esr: sysreg::esr_el2(),
        elr: frame.elr,
        far: sysreg::far_el2(),
        spsr: frame.spsr,
    };
    let origin = match kind / 4 {
        0 => "EL2 (SP0)",
        1 => "EL2",
        2 => "lower EL (AArch64)",
        _ => "lower EL (AArch32)",
    };
    console::write_fmt_fatal(format_args!(
        "\n*** hypervisor: unexpected {} exception from {}\n{}\n",
        KIND_NAMES[(kind % 4) as usize],
        origin,
        report
    ));
    for (i, pair) in frame.x.chunks(2).enumerate() {
        match pair {
            [a, b] => console::write_fmt_fatal(format_args!(
                "  x{:<2} {:#018x}  x{:<2} {:#018x}\n",
                i * 2,
                a,
                i * 2 + 1,
                b
            )),
            [a] => console::write_fmt_fatal(format_args!("  x{:<2} {:#018x}\n", i * 2, a)),
            _ => {}
        }
    }
    console::write_fmt_fatal(format_args!(
        "*** board stopped (exit status {})\n",
        ExitStatus::HypervisorException.code()
    ));
    power::stop(ExitStatus::HypervisorException)
}

/// Called by vectors.s for every exception taken to EL2.
#[unsafe(no_mangle)]
extern "C" fn el2_trap(frame: &mut TrapFrame, kind: u64) {
    let was_stepping = super::pmu::stepping();
    let mut exit = Exit::Other;
    match kind {
        8 => {
            // The exit's kind matters only to a stepped guest
            // (`spsr_on_return`): no extra ESR read on other exits.
            if was_stepping
                && ExceptionClass::from_esr(sysreg::esr_el2())
                    == ExceptionClass::SoftwareStepLowerEl
            {
                exit = Exit::Step;
            }
            crate::runtime::vm::on_lower_sync(frame);
        }
        9 => crate::runtime::vm::on_lower_irq(frame),
        _ => fatal(frame, kind),
    }
    // Back to the guest: one more instruction if it is being stepped.
    super::pmu::before_return(&mut frame.spsr, exit, was_stepping);
}

/// Starts running `frame` (a guest context) from the top of the EL2 stack.
///
/// # Safety
/// `frame` must describe a context that is safe to enter with ERET (SPSR
/// selecting EL1, ELR inside guest memory, stage 2 and HCR_EL2 set up).
pub unsafe fn enter_context(frame: &TrapFrame) -> ! {
    unsafe extern "C" {
        fn enter_context(frame: *const TrapFrame, stack_top: usize) -> !;
        static __stack_top: u8;
    }
    // SAFETY: forwarded from the caller; the stack top is the linker's.
    unsafe { enter_context(frame, core::ptr::addr_of!(__stack_top) as usize) }
}
