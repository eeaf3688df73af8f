//! The guest's virtual machine: loading it, entering it, and answering its
//! traps. One vCPU; all state lives in [`VM`], touched only from trap
//! handlers on the one core with exceptions masked.

use crate::arch::console::{self, println};
use crate::arch::el2_regs::{self, El1Exception};
use crate::arch::exceptions::{self, TrapFrame};
use crate::arch::gic::{self, Gic};
use crate::arch::hw::Core;
use crate::arch::link;
use crate::arch::pmu::CycleCounter;
use crate::arch::virtio_net::VirtioNet;
use crate::arch::{power, sysreg, timer};
use board_support::{BoardInfo, GicVersion as BoardGic, Region};
use el2_hypervisor::cpu_features::CpuFeatures;
use el2_hypervisor::emul::device_map::{DeviceTable, Devices};
use el2_hypervisor::emul::exception::{self, Fault, Injection, PstateFeatures};
use el2_hypervisor::emul::id_regs;
use el2_hypervisor::emul::pl011::Pl011;
use el2_hypervisor::emul::psci::{self, PsciOutcome};
use el2_hypervisor::emul::sysreg::{self as sr, SysReg};
use el2_hypervisor::emul::timer_mem;
use el2_hypervisor::emul::timer_trap::{self, TimerTrap};
use el2_hypervisor::emul::vtimer::GuestTimers;
use el2_hypervisor::esr::{self, ExceptionClass};
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::guest::{bundle, counter_patch, dtb as guest_dtb, layout};
use el2_hypervisor::hw::{EpochCounter, Hw};
use el2_hypervisor::mem::{
    LazyRam, PageTable, Stage2, Stage2Attrs, TablePool, vtcr_el2, vttbr_el2,
};
use el2_hypervisor::options::{Deadlines, GuestTimer, LinkMedium, Mode, Options};
use el2_hypervisor::replica::digest::{self, PairingConfig};
use el2_hypervisor::replica::epoch_stats::EpochStats;
use el2_hypervisor::replica::fingerprint::{self, Fingerprint, VcpuState};
use el2_hypervisor::replica::link_timing;
use el2_hypervisor::replica::session::{self, BoundaryReason};
use el2_hypervisor::stats::{TrapCounts, TrapKind};
use el2_hypervisor::vgic::{GicVersion, MAX_LIST_REGISTERS, Vgic, VgicConfig};
use el2_hypervisor::vm_core::clock::GuestClock;
use replication_link::message::{Hello, InputKind, Role};
use spin::Mutex;

mod interrupts;
mod timer_frame;
mod traps;

pub use interrupts::on_lower_irq;
pub use traps::on_lower_sync;

/// The guest's view of the machine, and what the hypervisor tracks of it.
struct Vm {
    /// The emulated devices (vGIC, console UART) and their windows.
    devices: Devices,
    timers: GuestTimers,
    uart_intid: u32,
    /// The EL2 timer's PPI.
    hyp_timer_intid: u32,
    /// The PMU's overflow PPI (the epoch counter).
    pmu_intid: u32,
    /// The vGIC maintenance PPI (`vgic::maintenance`).
    maintenance_intid: u32,
    lr_count: usize,
    /// The PSTATE features of this core, for injected exceptions.
    pstate_features: PstateFeatures,
    counts: TrapCounts,
    /// Why epochs ended, and how late timer interrupts were raised.
    epoch_stats: EpochStats,
    /// Guest RAM and which of its blocks are touched (mapped at stage 2).
    ram: LazyRam,
    /// The stage-2 tables, for mapping a block at its first touch.
    stage2: Stage2<'static>,
    /// Epochs and the log (record, replay, or `tandem.epoch` in free mode).
    epochs: Option<Epochs>,
}

/// Epochs and the log on this board: the library's replica session over
/// this core.
type Epochs = session::Epochs<Core>;

static VM: Mutex<Option<Vm>> = Mutex::new(None);

/// Stage-2 tables: a 40-bit IPA needs an 8 KiB root plus a few lower tables.
const STAGE2_TABLES: usize = 16;
static STAGE2_POOL: Mutex<[PageTable; STAGE2_TABLES]> =
    Mutex::new([PageTable::EMPTY; STAGE2_TABLES]);

/// SPSR for the guest's first instruction: EL1h, D, A, I, F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// Rewrites the guest kernel's CNTVCT_EL0 reads, which cannot trap on this
/// core, into trapped CNTPCT_EL0 reads (`guest::counter_patch`). The patch
/// is a function of the bundle, which was hashed (the pairing's image hash)
/// before it. A kernel whose code cannot be found runs unpatched: its
/// early counter reads see this board's counter, and replay or the pair
/// detects the divergence.
fn redirect_counter_reads(kernel: &mut [u8]) {
    match counter_patch::patch(kernel) {
        Ok(p) if p.redirected > 0 => println!(
            "hypervisor: guest kernel: {} CNTVCT_EL0 reads redirected to the trapped CNTPCT_EL0 ({} left in embedded ELF images, the vDSO)",
            p.redirected, p.skipped
        ),
        Ok(_) => println!(
            "hypervisor: guest kernel: no CNTVCT_EL0 read found in its .text; running it unpatched"
        ),
        Err(e) => println!(
            "hypervisor: guest kernel: {e}; running it unpatched (its CNTVCT_EL0 reads see this board's counter)"
        ),
    }
}

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
    // Without FEAT_ECV the guest's CNTVCT_EL0 reads cannot be trapped:
    // it is given the memory-mapped timer instead (`emul::timer_mem`).
    let guest_timer = match GuestTimer::choose(opts.guest_timer, features.ecv) {
        Ok(t) => t,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("{e}")),
    };
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
    // The image hash is the guest's identity in the pairing handshake: it
    // must be the hash of what will run, not a number the bundle claims.
    if !b.verify() {
        fail(
            ExitStatus::BadConfiguration,
            format_args!(
                "the guest bundle is damaged: its contents do not hash to the image hash {:#018x} in its header",
                b.image_hash
            ),
        );
    }
    let addr_of = |s: &[u8]| s.as_ptr() as u64;
    let layout_inputs = layout::Inputs {
        guest_ram,
        kernel_src: Region::new(addr_of(b.kernel), b.kernel.len() as u64),
        kernel_text_offset: b.kernel_text_offset,
        kernel_image_size: b.kernel_image_size,
        kernel_placed_anywhere: b.kernel_placed_anywhere,
        initramfs_src: Region::new(addr_of(b.initramfs), b.initramfs.len() as u64),
    };
    let plan = match layout::plan(&layout_inputs) {
        Ok(p) => p,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("{e}")),
    };
    let in_place = plan.kernel_in_place(&layout_inputs);
    // The command line must be copied before the bundle is overwritten.
    let cmdline: alloc::string::String = b.cmdline.into();
    let initrd_region = (plan.initramfs.size > 0).then_some(plan.initramfs);
    let cfg = guest_dtb::from_board(info, guest_ram, &cmdline, initrd_region, guest_timer);
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
    match guest_timer {
        GuestTimer::Sysreg => println!("hypervisor: guest timer: sysreg (arm,armv8-timer)"),
        GuestTimer::Mmio => println!(
            "hypervisor: guest timer: mmio (arm,armv7-timer-mem at {:#x}, frame {:#x}; no CP15 timer node)",
            timer_mem::CNTCTL_BASE,
            timer_mem::CNT_BASE0
        ),
    }
    println!(
        "hypervisor: guest RAM {:#x}..{:#x}, kernel at {:#x} ({} KiB{}), initramfs {} KiB, cmdline \"{}\"",
        guest_ram.base,
        guest_ram.end(),
        plan.kernel.base,
        b.kernel.len() >> 10,
        if in_place { ", in place" } else { "" },
        b.initramfs.len() >> 10,
        cmdline
    );
    // SAFETY: the plan keeps each destination inside guest RAM and orders the
    // copies so that none overwrites a source not yet copied (memmove).
    unsafe {
        if !in_place {
            core::ptr::copy(
                b.kernel.as_ptr(),
                plan.kernel.base as *mut u8,
                b.kernel.len(),
            );
        }
        core::ptr::copy(
            b.initramfs.as_ptr(),
            plan.initramfs.base as *mut u8,
            b.initramfs.len(),
        );
        core::ptr::copy_nonoverlapping(dtb.as_ptr(), plan.dtb.base as *mut u8, dtb.len());
    }
    if guest_timer == GuestTimer::Mmio {
        // SAFETY: the kernel was just placed there, inside guest RAM, and
        // nothing else refers to those bytes before entry.
        let kernel =
            unsafe { core::slice::from_raw_parts_mut(plan.kernel.base as *mut u8, b.kernel.len()) };
        redirect_counter_reads(kernel);
    }

    // Guest RAM is zeroed on first touch (`mem::lazy_ram`): only the
    // blocks that hold the kernel, the initramfs and the guest DTB are
    // mapped before entry, and the rest of those blocks is scrubbed now
    // (the bundle's leftovers and the board's DTB, which holds this
    // board's own command line, must not reach the guest or its
    // fingerprint). Every other block is zeroed when the guest first
    // touches it: QEMU commits only what the guest uses.
    let kernel_area = Region::new(plan.kernel.base, b.kernel_image_size);
    let guest_dtb_area = Region::new(plan.dtb.base, dtb.len() as u64);
    let loaded = [kernel_area, plan.initramfs, guest_dtb_area];
    let mut lazy_ram = match LazyRam::new(guest_ram) {
        Ok(r) => r,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("{e}")),
    };
    for area in loaded {
        lazy_ram.touch(area);
    }
    for run in lazy_ram.touched_runs() {
        for gap in layout::gaps(run, &loaded) {
            // SAFETY: `gaps` returns parts of touched guest RAM outside the
            // kernel, initramfs and guest DTB just placed; nothing else
            // lives there, and the board DTB is not read after this point.
            unsafe { core::ptr::write_bytes(gap.base as *mut u8, 0, gap.size as usize) };
        }
        // Written through the hypervisor's cacheable map; the guest starts
        // with its MMU off and reads memory (`arch::guest_ram`).
        crate::arch::guest_ram::hand_over(run);
    }

    let (mut stage2, vttbr) = build_stage2(&lazy_ram);
    map_virtual_cpu_interface(&mut stage2, info);
    let vtcr = match vtcr_el2(el2_regs::pa_range()) {
        Ok(v) => v,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("stage 2: {e:?}")),
    };

    let gic = unsafe_gic(info);
    let hyp_timer_intid = info
        .timer
        .map(|t| t.hyp_phys)
        .unwrap_or(board.interrupts.hyp_timer);
    gic.enable_ppi(hyp_timer_intid);
    let maintenance_intid = info
        .gic
        .maintenance_intid
        .unwrap_or(board.interrupts.maintenance);
    gic.enable_ppi(maintenance_intid);
    gic::enable_virtual_interface();
    let lr_count = gic::list_register_count().min(MAX_LIST_REGISTERS);
    let platform = Platform {
        gic_version: gic.version(),
        lr_count,
        guest_timer,
    };

    let epochs = epochs_for(opts, info, guest_ram, b.image_hash, platform);
    if epochs.is_some() {
        gic.enable_ppi(board.interrupts.pmu);
    }
    let mmio_timer = guest_timer == GuestTimer::Mmio;
    let table = match DeviceTable::for_guest(&info.gic, &info.console, mmio_timer) {
        Ok(t) => t,
        Err(e) => fail(
            ExitStatus::BadConfiguration,
            format_args!("guest devices: {e}"),
        ),
    };
    let vgic = Vgic::new(VgicConfig {
        version: match info.gic.version {
            BoardGic::V2 => GicVersion::V2,
            BoardGic::V3 => GicVersion::V3,
        },
        affinity: 0,
    });
    *VM.lock() = Some(Vm {
        devices: Devices::new(table, vgic, Pl011::new()),
        timers: if mmio_timer {
            GuestTimers::with_frame(timer::frequency() as u32)
        } else {
            GuestTimers::new(timer::frequency() as u32)
        },
        uart_intid: info.console.intid.unwrap_or(board.interrupts.console),
        hyp_timer_intid,
        pmu_intid: board.interrupts.pmu,
        maintenance_intid,
        lr_count,
        // The hardware's ID_AA64PFR1_EL1 and ID_AA64MMFR1_EL1 (not the
        // guest's sanitised view): what the core does on exception entry.
        pstate_features: PstateFeatures::from_id_registers(
            el2_regs::read_id_register(4, 1),
            el2_regs::read_id_register(7, 1),
        ),
        counts: TrapCounts::new(),
        epoch_stats: EpochStats::new(),
        ram: lazy_ram,
        stage2,
        epochs,
    });
    if let Some(vm) = VM.lock().as_mut()
        && let Some(ep) = vm.epochs.as_mut()
    {
        if let Err(status) = ep.establish() {
            power::stop(status);
        }
        println!(
            "hypervisor: epochs of {} guest instructions ({:?}, counted by {})",
            ep.counter.length(),
            ep.mode,
            opts.epoch_counter.option()
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

fn unsafe_gic(info: &BoardInfo<'_>) -> Gic {
    // SAFETY: the DTB names these as the board's GIC blocks; only the
    // hypervisor drives the physical GIC, and the guest's stage 2 maps
    // none of them but GICV (`map_virtual_cpu_interface`).
    match unsafe { Gic::new(&info.gic) } {
        Ok(g) => g,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("{e}")),
    }
}

/// On GICv2, the guest's CPU interface is the hardware's virtual one: GICV
/// mapped at stage 2 where the guest's device tree puts GICC
/// (`guest::dtb::GICV2_CPU_SIZE`, 8 KiB: GICC_DIR is at 0x1000), so its
/// GICC accesses reach GICV without an exit. GICD stays unmapped (the
/// model emulates it), GICC and GICH are never mapped.
fn map_virtual_cpu_interface(stage2: &mut Stage2<'static>, info: &BoardInfo<'_>) {
    if info.gic.version != BoardGic::V2 {
        return;
    }
    let Some(gicv) = info.gic.virtual_cpu else {
        return; // `unsafe_gic` refuses such a board
    };
    let guest_gicc = info.gic.cpu_or_redistributor.base;
    let size = guest_dtb::GICV2_CPU_SIZE;
    if gicv.size < size {
        fail(
            ExitStatus::BadConfiguration,
            format_args!(
                "the GICV block is {:#x} bytes, less than the {size:#x} of a CPU interface",
                gicv.size
            ),
        );
    }
    if let Err(e) = stage2.map(guest_gicc, gicv.base, size, Stage2Attrs::DeviceRw) {
        fail(
            ExitStatus::BadConfiguration,
            format_args!("stage 2: GICV at the guest's GICC: {e:?}"),
        );
    }
}

/// What the pairing digest's platform lane says of the GIC and the timer.
#[derive(Clone, Copy)]
struct Platform {
    gic_version: u8,
    lr_count: usize,
    /// The guest's timer interface (a different device tree).
    guest_timer: GuestTimer,
}

/// The epoch counter `tandem.epoch-counter` names (`arch::pmu`), or the
/// board stops saying why it cannot count that way.
fn epoch_counter(opts: &Options) -> CycleCounter {
    match CycleCounter::new(opts.epoch, opts.epoch_counter, opts.step_skid) {
        Ok(c) => c,
        Err(e) => fail(ExitStatus::BadConfiguration, format_args!("{e}")),
    }
}

/// Epochs for the chosen mode: record, replay and a pair need the link.
fn epochs_for(
    opts: &Options,
    info: &BoardInfo<'_>,
    guest_ram: Region,
    image_hash: u64,
    platform: Platform,
) -> Option<Epochs> {
    if opts.mode == Mode::Free && opts.epoch == 0 {
        return None;
    }
    if !opts.mode.has_link() {
        let mut epochs = Epochs::new(opts.mode, epoch_counter(opts), Core, None, opts.timing);
        epochs.deadlines = opts.deadlines;
        return Some(epochs);
    }
    let role = if matches!(opts.mode, Mode::Record | Mode::Primary) {
        Role::Primary
    } else {
        Role::Backup
    };
    let config = PairingConfig {
        epoch: opts.epoch,
        deadlines_end_epochs: opts.deadlines == Deadlines::EpochEnd,
        epoch_counter: opts.epoch_counter,
        guest_ram: guest_ram.size,
        platform: platform_digest(platform),
        seed: opts.seed.unwrap_or(digest::NO_SEED),
    };
    let hello = Hello::new(
        role,
        timer::counter(),
        digest::digest(el2_regs::build_digest()),
        digest::digest(image_hash),
        config.digest(),
    );
    let medium = if opts.mode.is_pair() {
        opts.link
    } else {
        // Record and replay talk to a host program over the link UART.
        LinkMedium::Serial
    };
    let timing = if opts.mode.is_pair() {
        link_timing::pair(
            opts.timing.heartbeat_ms,
            opts.timing.fail_ms,
            medium == LinkMedium::Serial,
        )
    } else {
        link_timing::RECORD_REPLAY
    };
    let port = match medium {
        LinkMedium::Serial => {
            let uart = info
                .link_uart
                .map(|u| (link::UartKind::Pl011, u))
                .or(info.mini_uart.map(|u| (link::UartKind::Mini, u)));
            let Some((kind, uart)) = uart else {
                fail(
                    ExitStatus::BadConfiguration,
                    format_args!(
                        "tandem.mode={:?} needs the link UART (a second PL011 or the mini-UART: QEMU `-serial` twice)",
                        opts.mode
                    ),
                );
            };
            // SAFETY: the DTB names this UART; it is not the console and the
            // guest never sees it (the guest DTB has only the console).
            unsafe {
                link::serial(
                    kind,
                    uart.region.base,
                    crate::runtime::boot::BOARD.link_pl011_timing,
                    hello,
                    timing,
                )
            }
        }
        LinkMedium::Ethernet => {
            let slots: heapless::Vec<(u64, u64), { board_support::dtb::MAX_VIRTIO_SLOTS }> =
                info.virtio_mmio.iter().map(|r| (r.base, r.size)).collect();
            // SAFETY: the DTB names these virtio-mmio slots; the hypervisor
            // alone drives them (the guest DTB has none, stage 2 maps none).
            match unsafe { VirtioNet::probe(&slots) } {
                Ok(nic) => link::ethernet(nic, hello, timing),
                Err(e) => fail(
                    ExitStatus::BadConfiguration,
                    format_args!("tandem.link=ethernet: {e}"),
                ),
            }
        }
    };
    let mut epochs = Epochs::new(
        opts.mode,
        epoch_counter(opts),
        Core,
        Some(port),
        opts.timing,
    );
    epochs.deadlines = opts.deadlines;
    epochs.ack = opts.ack;
    if cfg!(feature = "test-hooks")
        && let Some(el2_hypervisor::options::SelfTest::Diverge(n)) = opts.selftest
    {
        epochs.diverge_at(Some(n));
    }
    Some(epochs)
}

/// The platform lane of the pairing digest: every hardware-derived value
/// the guest can see, as it sees it.
fn platform_digest(p: Platform) -> u64 {
    let mut ids = [0u64; 56];
    for (i, id) in ids.iter_mut().enumerate() {
        let (crm, op2) = (1 + (i / 8) as u8, (i % 8) as u8);
        let reg = SysReg::new(3, 0, 0, crm, op2);
        *id = id_regs::sanitize_id_register(reg, el2_regs::read_id_register(crm, op2));
    }
    let hw = el2_regs::platform_registers();
    digest::Platform {
        gic_version: p.gic_version,
        list_registers: p.lr_count as u8,
        guest_timer: p.guest_timer as u8,
        id_registers: &ids,
        midr: hw.midr,
        mpidr: el2_regs::GUEST_MPIDR,
        ctr: hw.ctr,
        dczid: hw.dczid,
        clidr: hw.clidr,
        cntfrq: hw.cntfrq,
    }
    .digest()
}

/// Identity-maps the touched blocks of guest RAM (and nothing else) at
/// stage 2; returns the tables, kept for first touches, and VTTBR_EL2.
fn build_stage2(ram: &LazyRam) -> (Stage2<'static>, u64) {
    let mut pool_guard = STAGE2_POOL.lock();
    // The tables live in a static and are used for the rest of the run.
    let tables: &'static mut [PageTable] = unsafe_leak(&mut pool_guard[..]);
    let base_pa = tables.as_ptr() as u64;
    let result = TablePool::new(tables, base_pa)
        .map_err(|e| alloc::format!("{e:?}"))
        .and_then(|pool| Stage2::new(pool).map_err(|e| alloc::format!("{e:?}")))
        .and_then(|mut s2| {
            for run in ram.touched_runs() {
                s2.map(run.base, run.base, run.size, Stage2Attrs::NormalRwx)
                    .map_err(|e| alloc::format!("{e:?}"))?;
            }
            let vttbr = vttbr_el2(s2.root_pa(), 1);
            Ok((s2, vttbr))
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

/// Guest time. With epochs, a function of the instruction count from the
/// epoch's base (`replica::epoch_time`); without, the physical counter
/// (CNTVOFF_EL2 is 0).
fn guest_now(vm: &Vm) -> u64 {
    match vm.epochs.as_ref() {
        Some(ep) => ep.guest_now(),
        None => guest_clock(vm).now(&Core),
    }
}

/// Guest time over the physical counter (`vm_core::clock`): with epochs,
/// what the board's idle waits are measured in (shifted by the engine's
/// offset: `Engine::time_offset`).
fn guest_clock(vm: &Vm) -> GuestClock {
    GuestClock::new(vm.epochs.as_ref().map_or(0, |e| e.engine.time_offset()))
}

/// The EL2 timer deadline (physical counter) for a guest-time deadline.
fn physical_deadline(vm: &Vm, deadline: Option<u64>) -> Option<u64> {
    guest_clock(vm).physical(deadline)
}
