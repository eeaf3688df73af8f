//! Running the guest at EL1.

use crate::arch::console::println;
use crate::arch::exceptions::TrapFrame;
use crate::arch::power;
use board_support::BoardInfo;
use el2_hypervisor::cpu_features::CpuFeatures;
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::options::Options;

/// Loads and starts the guest found in the board's initrd.
pub fn start(info: &BoardInfo<'_>, _opts: &Options, _features: CpuFeatures) -> ! {
    if info.initrd.is_none() {
        println!(
            "hypervisor: no guest bundle (pass one as the board's initrd); nothing to run, powering off"
        );
        power::stop(ExitStatus::Success);
    }
    println!("hypervisor: guest loading is not implemented yet");
    power::stop(ExitStatus::BadConfiguration)
}

/// A synchronous exception from the guest.
pub fn on_lower_sync(_frame: &mut TrapFrame) {}

/// A physical interrupt while the guest ran.
pub fn on_lower_irq(_frame: &mut TrapFrame) {}
