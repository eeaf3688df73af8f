//! Boot on the board: console, device tree, options, banner.

use crate::arch::console::println;
use crate::arch::{console, mmu, power, sysreg};
use el2_hypervisor::banner::Banner;
use el2_hypervisor::cpu_features::CpuFeatures;
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::options::{self, Options};

include!(concat!(env!("OUT_DIR"), "/board.rs"));

/// Waits this long (ms of the physical counter) for the secondary cores
/// to report themselves parked.
const PARK_TIMEOUT_MS: u64 = 500;

/// Entered once from the boot stub on core 0, at EL2, exceptions masked.
#[unsafe(no_mangle)]
fn hypervisor_main(dtb: Option<&'static mut [u8]>) -> ! {
    // SAFETY: the board description names its console PL011; the MMU is off
    // (it maps the console once it is on: `mem::el2_layout`).
    unsafe { console::init(BOARD.early_console) };
    sysreg::install_vectors();
    crate::arch::heap::init();

    let Some(dtb) = dtb else {
        println!(
            "hypervisor: no device tree in x0 (boot with `-kernel`, or a firmware that passes one)"
        );
        power::stop(ExitStatus::BadConfiguration);
    };
    // Nodes a boot loader deleted are NOPs, which the parser trips on.
    if let Err(e) = board_support::dtb::strip_nops(dtb) {
        println!("hypervisor: the board's device tree is unusable: {e}");
        power::stop(ExitStatus::BadConfiguration);
    }
    let dtb: &'static [u8] = dtb;
    let info = match board_support::dtb::parse(dtb) {
        Ok(info) => info,
        Err(e) => {
            println!("hypervisor: the board's device tree is unusable: {e}");
            power::stop(ExitStatus::BadConfiguration);
        }
    };
    // The MMU and caches on, early: every device the hypervisor drives is
    // known now (`mem::el2_layout`), and nothing has been written to guest
    // RAM yet.
    let mmu = match mmu::enable(&info, &BOARD, dtb) {
        Ok(m) => m,
        Err(e) => {
            println!("hypervisor: the EL2 map cannot be built, the MMU stays off: {e}");
            power::stop(ExitStatus::BadConfiguration);
        }
    };
    let opts = match options::parse(info.bootargs) {
        Ok(o) => o,
        Err(e) => {
            println!("hypervisor: bad board command line: {e}");
            power::stop(ExitStatus::BadConfiguration);
        }
    };
    if info.console.region.base != BOARD.early_console {
        // SAFETY: the device tree's console is a PL011 (checked by compatible).
        unsafe { console::init(info.console.region.base) };
    }

    let features = CpuFeatures::decode(&sysreg::id_registers());
    println!(
        "{}",
        Banner {
            board_name: BOARD.name,
            info: &info,
            features
        }
    );
    println!(
        "hypervisor: EL2 MMU and caches on ({} regions, {} translation tables)",
        mmu.regions, mmu.tables
    );
    defmt::info!(
        "hypervisor up: dtb {=usize} bytes, {=u64} MiB RAM",
        info.dtb_size,
        info.memory_size() >> 20
    );

    park_secondaries(&info);
    run_self_test(&opts);
    if opts.banner_only {
        println!("hypervisor: banner only, stopping");
        power::stop(ExitStatus::Success);
    }
    crate::runtime::vm::start(&info, &opts, features, &BOARD)
}

/// Sends the spin table's cores to the park loop (bootstub/src/boot.s),
/// and checks that each got there; a board whose cores cannot be parked
/// does not run a guest (they would run, and count, instructions).
fn park_secondaries(info: &board_support::BoardInfo<'_>) {
    use crate::arch::secondaries;
    if info.spin_table_cpus.is_empty() {
        return;
    }
    let reserved = board_support::Region::new(BOARD.ram_base, BOARD.hypervisor_reserved);
    let cpus = match el2_hypervisor::secondaries::to_release(
        &info.spin_table_cpus,
        secondaries::boot_mpidr(),
        reserved,
        secondaries::image_region(),
    ) {
        Ok(c) => c,
        Err(e) => {
            println!("hypervisor: cannot park the secondary cores: {e}");
            power::stop(ExitStatus::BadConfiguration);
        }
    };
    // SAFETY: `to_release` checked every release word: hypervisor RAM
    // outside the image.
    unsafe { secondaries::release(&cpus) };
    let ticks = crate::arch::timer::frequency() / 1000 * PARK_TIMEOUT_MS;
    let missing = secondaries::wait_parked(&cpus, ticks);
    if !missing.is_empty() {
        println!(
            "hypervisor: secondary cores {:?} did not reach the park loop within {} ms",
            missing.as_slice(),
            PARK_TIMEOUT_MS
        );
        power::stop(ExitStatus::BadConfiguration);
    }
    let ids: heapless::Vec<u64, { board_support::MAX_CPUS }> =
        cpus.iter().map(|c| c.mpidr).collect();
    println!(
        "hypervisor: secondary cores {:?} parked in WFI (exceptions masked, hypervisor memory)",
        ids.as_slice()
    );
}

#[cfg(feature = "test-hooks")]
fn run_self_test(opts: &Options) {
    use el2_hypervisor::options::SelfTest;
    match opts.selftest {
        Some(SelfTest::Exception) => {
            println!("selftest: executing an undefined instruction at EL2");
            // SAFETY: deliberately faults; the exception vector reports and stops.
            unsafe { core::arch::asm!("udf #0x7e57") };
        }
        Some(SelfTest::Panic) => panic!("selftest: deliberate panic"),
        // At that epoch's boundary (runtime/replica.rs).
        Some(SelfTest::Diverge(_)) | None => {}
    }
}

#[cfg(not(feature = "test-hooks"))]
fn run_self_test(opts: &Options) {
    if opts.selftest.is_some() {
        println!("hypervisor: tandem.selftest ignored (image built without test-hooks)");
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => console::write_fmt_fatal(format_args!(
            "\n*** hypervisor panic at {}:{}:{}: {}\n",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        )),
        None => {
            console::write_fmt_fatal(format_args!("\n*** hypervisor panic: {}\n", info.message()))
        }
    }
    console::write_fmt_fatal(format_args!(
        "*** board stopped (exit status {})\n",
        ExitStatus::Panic.code()
    ));
    power::stop(ExitStatus::Panic)
}
