//! Tests of the guest device tree: the blob is read back with the `fdt`
//! crate (and with `board_support::dtb::parse`, and `dtc` when installed).

use super::*;
use alloc::string::ToString;
use alloc::vec;
use fdt::Fdt;

const VIRT_GICV3: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../board-support/tests/fixtures/virt-gicv3.dtb"
));
const VIRT_GICV2: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../board-support/tests/fixtures/virt-gicv2.dtb"
));

const BOOTARGS: &str = "console=ttyAMA0 rdinit=/init clocksource.arm_arch_timer.evtstrm=0";

/// A guest on QEMU virt with GICv3: 256 MiB at 0x4800_0000.
fn v3_config() -> GuestDtbConfig<'static> {
    GuestDtbConfig {
        memory: Region::new(0x4800_0000, 0x1000_0000),
        gic: GuestGic::V3 {
            distributor: 0x0800_0000,
            redistributor: 0x080a_0000,
        },
        uart: Uart {
            region: Region::new(0x0900_0000, 0x1000),
            intid: Some(33),
        },
        timer: DEFAULT_TIMER,
        guest_timer: GuestTimer::Sysreg,
        psci: PsciMethod::Smc,
        bootargs: BOOTARGS,
        initrd: Some(Region::new(0x5000_0000, 0x12_3000)),
    }
}

fn v2_config() -> GuestDtbConfig<'static> {
    GuestDtbConfig {
        gic: GuestGic::V2 {
            distributor: 0x0800_0000,
            cpu_interface: 0x0801_0000,
        },
        psci: PsciMethod::Hvc,
        initrd: None,
        ..v3_config()
    }
}

fn prop<'a>(fdt: &Fdt<'a>, path: &str, name: &str) -> &'a [u8] {
    fdt.find_node(path)
        .unwrap_or_else(|| panic!("no node {path}"))
        .property(name)
        .unwrap_or_else(|| panic!("no property {path}:{name}"))
        .value
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    assert_eq!(bytes.len() % 4, 0);
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn u32_prop(fdt: &Fdt<'_>, path: &str, name: &str) -> Vec<u32> {
    u32s(prop(fdt, path, name))
}

fn str_prop<'a>(fdt: &Fdt<'a>, path: &str, name: &str) -> &'a [u8] {
    prop(fdt, path, name)
}

#[test]
fn root_memory_and_cpu() {
    let blob = build(&v3_config()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(u32_prop(&fdt, "/", "#address-cells"), [2]);
    assert_eq!(u32_prop(&fdt, "/", "#size-cells"), [2]);
    assert_eq!(str_prop(&fdt, "/", "compatible"), b"linux,dummy-virt\0");
    assert_eq!(str_prop(&fdt, "/", "model"), b"tandem guest\0");
    assert_eq!(u32_prop(&fdt, "/", "interrupt-parent"), [PHANDLE_GIC]);

    assert_eq!(
        str_prop(&fdt, "/memory@48000000", "device_type"),
        b"memory\0"
    );
    assert_eq!(
        u32_prop(&fdt, "/memory@48000000", "reg"),
        [0, 0x4800_0000, 0, 0x1000_0000]
    );

    assert_eq!(u32_prop(&fdt, "/cpus", "#address-cells"), [1]);
    assert_eq!(u32_prop(&fdt, "/cpus", "#size-cells"), [0]);
    let cpus: Vec<_> = fdt.find_node("/cpus").unwrap().children().collect();
    assert_eq!(cpus.len(), 1, "exactly one CPU");
    assert_eq!(cpus[0].name, "cpu@0");
    assert_eq!(str_prop(&fdt, "/cpus/cpu@0", "device_type"), b"cpu\0");
    assert_eq!(str_prop(&fdt, "/cpus/cpu@0", "compatible"), b"arm,armv8\0");
    assert_eq!(u32_prop(&fdt, "/cpus/cpu@0", "reg"), [0]);
    assert_eq!(str_prop(&fdt, "/cpus/cpu@0", "enable-method"), b"psci\0");
}

#[test]
fn psci_method_follows_the_config() {
    for (cfg, method) in [(v3_config(), b"smc\0"), (v2_config(), b"hvc\0")] {
        let blob = build(&cfg).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(
            str_prop(&fdt, "/psci", "compatible"),
            b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0"
        );
        assert_eq!(str_prop(&fdt, "/psci", "method"), method);
    }
}

#[test]
fn timer_flags_depend_on_the_gic() {
    for (cfg, flags) in [(v3_config(), 4), (v2_config(), 0x104)] {
        let blob = build(&cfg).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(str_prop(&fdt, "/timer", "compatible"), b"arm,armv8-timer\0");
        assert_eq!(
            u32_prop(&fdt, "/timer", "interrupts"),
            [1, 13, flags, 1, 14, flags, 1, 11, flags, 1, 10, flags]
        );
    }
}

#[test]
fn gic_v3() {
    let blob = build(&v3_config()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let p = "/intc@8000000";
    assert_eq!(str_prop(&fdt, p, "compatible"), b"arm,gic-v3\0");
    assert_eq!(u32_prop(&fdt, p, "#interrupt-cells"), [3]);
    assert_eq!(prop(&fdt, p, "interrupt-controller"), b"");
    assert_eq!(u32_prop(&fdt, p, "#address-cells"), [0]);
    assert_eq!(u32_prop(&fdt, p, "#redistributor-regions"), [1]);
    assert_eq!(
        u32_prop(&fdt, p, "reg"),
        [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0x2_0000]
    );
    assert_eq!(u32_prop(&fdt, p, "phandle"), [PHANDLE_GIC]);
}

#[test]
fn gic_v2() {
    let blob = build(&v2_config()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let p = "/intc@8000000";
    assert_eq!(str_prop(&fdt, p, "compatible"), b"arm,cortex-a15-gic\0");
    assert_eq!(u32_prop(&fdt, p, "#interrupt-cells"), [3]);
    assert_eq!(prop(&fdt, p, "interrupt-controller"), b"");
    assert!(
        fdt.find_node(p)
            .unwrap()
            .property("#redistributor-regions")
            .is_none()
    );
    assert_eq!(
        u32_prop(&fdt, p, "reg"),
        [0, 0x0800_0000, 0, 0x1000, 0, 0x0801_0000, 0, 0x2000]
    );
}

#[test]
fn uart_and_its_clock() {
    let blob = build(&v3_config()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let u = "/serial@9000000";
    assert_eq!(
        str_prop(&fdt, u, "compatible"),
        b"arm,pl011\0arm,primecell\0"
    );
    assert_eq!(u32_prop(&fdt, u, "reg"), [0, 0x0900_0000, 0, 0x1000]);
    assert_eq!(u32_prop(&fdt, u, "interrupts"), [0, 1, 4]);
    assert_eq!(u32_prop(&fdt, u, "clocks"), [PHANDLE_APB_PCLK; 2]);
    assert_eq!(str_prop(&fdt, u, "clock-names"), b"uartclk\0apb_pclk\0");
    assert_eq!(u32_prop(&fdt, u, "arm,primecell-periphid"), [0x0024_1011]);

    let c = "/apb-pclk";
    assert_eq!(str_prop(&fdt, c, "compatible"), b"fixed-clock\0");
    assert_eq!(u32_prop(&fdt, c, "#clock-cells"), [0]);
    assert_eq!(u32_prop(&fdt, c, "clock-frequency"), [24_000_000]);
    assert_eq!(str_prop(&fdt, c, "clock-output-names"), b"clk24mhz\0");
    assert_eq!(u32_prop(&fdt, c, "phandle"), [PHANDLE_APB_PCLK]);

    // Without an interrupt the node has none.
    let mut cfg = v3_config();
    cfg.uart.intid = None;
    let blob = build(&cfg).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    assert!(fdt.find_node(u).unwrap().property("interrupts").is_none());
}

#[test]
fn chosen_and_aliases() {
    let blob = build(&v3_config()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let mut bootargs = BOOTARGS.as_bytes().to_vec();
    bootargs.push(0);
    assert_eq!(str_prop(&fdt, "/chosen", "bootargs"), &bootargs[..]);
    assert_eq!(
        str_prop(&fdt, "/chosen", "stdout-path"),
        b"/serial@9000000\0"
    );
    assert_eq!(
        prop(&fdt, "/chosen", "linux,initrd-start"),
        0x5000_0000u64.to_be_bytes()
    );
    assert_eq!(
        prop(&fdt, "/chosen", "linux,initrd-end"),
        0x5012_3000u64.to_be_bytes()
    );
    assert_eq!(str_prop(&fdt, "/aliases", "serial0"), b"/serial@9000000\0");
    assert_eq!(fdt.chosen().stdout().unwrap().name, "serial@9000000");

    let blob = build(&v2_config()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    assert!(chosen.property("linux,initrd-start").is_none());
    assert!(chosen.property("linux,initrd-end").is_none());
}

/// Nothing but the nodes listed here, and nothing random or PMU-like.
#[test]
fn nothing_else_is_visible() {
    for cfg in [v3_config(), v2_config()] {
        let blob = build(&cfg).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let mut names: Vec<&str> = fdt.all_nodes().map(|n| n.name).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "/",
                "aliases",
                "apb-pclk",
                "chosen",
                "cpu@0",
                "cpus",
                "intc@8000000",
                "memory@48000000",
                "psci",
                "serial@9000000",
                "timer"
            ]
        );
        for node in fdt.all_nodes() {
            for p in node.properties() {
                assert!(!p.name.contains("seed"), "{}:{}", node.name, p.name);
                let text = String::from_utf8_lossy(p.value);
                for banned in ["pmu", "virtio", "rng"] {
                    assert!(!text.contains(banned), "{}:{} = {text}", node.name, p.name);
                }
            }
        }
        assert_eq!(fdt.memory_reservations().count(), 0);
    }
}

#[test]
fn the_blob_is_a_pure_function_of_the_config() {
    for cfg in [v3_config(), v2_config()] {
        let (first, second) = (build(&cfg).unwrap(), build(&cfg).unwrap());
        assert_eq!(first, second);
    }
    assert_ne!(build(&v3_config()).unwrap(), build(&v2_config()).unwrap());
    let mut other = v3_config();
    other.bootargs = "console=ttyAMA0";
    assert_ne!(build(&v3_config()).unwrap(), build(&other).unwrap());
}

#[test]
fn invalid_configs_are_errors() {
    type Edit = fn(&mut GuestDtbConfig<'static>);
    let cases: Vec<(Edit, GuestDtbError)> = vec![
        (
            |c| c.memory.size = 0,
            GuestDtbError::BadMemory(Region::new(0x4800_0000, 0)),
        ),
        (
            |c| c.memory = Region::new(u64::MAX - 10, 0x1000),
            GuestDtbError::BadMemory(Region::new(u64::MAX - 10, 0x1000)),
        ),
        (
            |c| c.uart.region = Region::new(0x4900_0000, 0x1000),
            GuestDtbError::DeviceInMemory("UART"),
        ),
        (
            |c| c.uart.region = Region::new(u64::MAX, 0x1000),
            GuestDtbError::BadDevice("UART"),
        ),
        (
            |c| {
                c.gic = GuestGic::V3 {
                    distributor: 0x0800_0000,
                    redistributor: 0x47ff_0000,
                }
            },
            GuestDtbError::DeviceInMemory("GIC redistributor"),
        ),
        (
            |c| {
                c.gic = GuestGic::V2 {
                    distributor: u64::MAX - 0x100,
                    cpu_interface: 0x0801_0000,
                }
            },
            GuestDtbError::BadDevice("GIC distributor"),
        ),
        (
            |c| c.uart.intid = Some(27),
            GuestDtbError::UartIntidNotSpi(27),
        ),
        (
            |c| c.uart.intid = Some(1020),
            GuestDtbError::UartIntidNotSpi(1020),
        ),
        (|c| c.timer.virt = 33, GuestDtbError::TimerIntidNotPpi(33)),
        (
            |c| c.timer.hyp_phys = 15,
            GuestDtbError::TimerIntidNotPpi(15),
        ),
        (
            |c| c.initrd = Some(Region::new(0x5800_0000, 0x1000)),
            GuestDtbError::InitrdOutsideMemory(Region::new(0x5800_0000, 0x1000)),
        ),
        (
            |c| c.initrd = Some(Region::new(0x57ff_f000, 0x2000)),
            GuestDtbError::InitrdOutsideMemory(Region::new(0x57ff_f000, 0x2000)),
        ),
        (
            |c| c.initrd = Some(Region::new(0x5000_0000, u64::MAX)),
            GuestDtbError::InitrdOutsideMemory(Region::new(0x5000_0000, u64::MAX)),
        ),
        (|c| c.bootargs = "a\0b", GuestDtbError::BootargsHasNul),
    ];
    for (edit, want) in cases {
        let mut cfg = v3_config();
        edit(&mut cfg);
        assert_eq!(build(&cfg), Err(want));
        assert!(want.to_string().starts_with("guest device tree: "));
    }
    // An initrd that ends exactly at the end of RAM is fine.
    let mut cfg = v3_config();
    cfg.initrd = Some(Region::new(0x57ff_f000, 0x1000));
    assert!(build(&cfg).is_ok());
}

#[test]
fn from_the_qemu_virt_gicv3_board() {
    let board = board_support::dtb::parse(VIRT_GICV3).unwrap();
    let mem = Region::new(0x4400_0000, 0x1c00_0000);
    let initrd = Some(Region::new(0x5000_0000, 0x4_0000));
    let cfg = from_board(&board, mem, BOOTARGS, initrd, GuestTimer::Sysreg);
    assert_eq!(
        cfg.gic,
        GuestGic::V3 {
            distributor: 0x0800_0000,
            redistributor: 0x080a_0000
        }
    );
    assert_eq!(cfg.uart.region, Region::new(0x0900_0000, 0x1000));
    assert_eq!(cfg.uart.intid, Some(33));
    assert_eq!(cfg.timer, DEFAULT_TIMER);
    assert_eq!(cfg.psci, PsciMethod::Smc);
    assert_eq!(
        (cfg.memory, cfg.bootargs, cfg.initrd),
        (mem, BOOTARGS, initrd)
    );

    // The guest's tree reads back, through the board reader, as the guest
    // board it describes.
    let blob = build(&cfg).unwrap();
    let guest = board_support::dtb::parse(&blob).unwrap();
    assert_eq!(guest.model, "tandem guest");
    assert_eq!(guest.memory.as_slice(), &[mem]);
    assert_eq!(guest.console, cfg.uart);
    assert_eq!(guest.gic.version, GicVersion::V3);
    assert_eq!(guest.gic.distributor, Region::new(0x0800_0000, 0x1_0000));
    assert_eq!(
        guest.gic.cpu_or_redistributor,
        Region::new(0x080a_0000, 0x2_0000)
    );
    assert_eq!(guest.gic.maintenance_intid, None);
    assert_eq!(guest.timer, Some(DEFAULT_TIMER));
    assert_eq!(guest.psci, Some(PsciMethod::Smc));
    assert_eq!(guest.bootargs, BOOTARGS);
    assert_eq!(guest.initrd, initrd);
    assert_eq!(guest.dtb_size, blob.len());
}

#[test]
fn from_the_qemu_virt_gicv2_board() {
    let board = board_support::dtb::parse(VIRT_GICV2).unwrap();
    let cfg = from_board(
        &board,
        Region::new(0x4400_0000, 0x1000_0000),
        "",
        None,
        GuestTimer::Sysreg,
    );
    assert_eq!(
        cfg.gic,
        GuestGic::V2 {
            distributor: 0x0800_0000,
            cpu_interface: 0x0801_0000
        }
    );
    let blob = build(&cfg).unwrap();
    let guest = board_support::dtb::parse(&blob).unwrap();
    assert_eq!(guest.gic.version, GicVersion::V2);
    assert_eq!(
        guest.gic.cpu_or_redistributor,
        Region::new(0x0801_0000, 0x2000)
    );
    assert_eq!(guest.gic.hyp_interface, None);
    assert_eq!(guest.initrd, None);
}

#[test]
fn defaults_when_the_board_is_silent() {
    let mut board = board_support::dtb::parse(VIRT_GICV3).unwrap();
    board.timer = None;
    board.psci = None;
    let cfg = from_board(
        &board,
        Region::new(0x4400_0000, 0x1000_0000),
        "",
        None,
        GuestTimer::Sysreg,
    );
    assert_eq!(cfg.timer, DEFAULT_TIMER);
    assert_eq!(cfg.psci, PsciMethod::Hvc);
}

/// `dtc` decompiles the blob without a warning (skipped when `dtc` is not
/// installed).
#[test]
fn dtc_accepts_the_blob() {
    use std::process::Command;
    if Command::new("dtc").arg("--version").output().is_err() {
        std::eprintln!("dtc not installed: skipped");
        return;
    }
    let mmio = GuestDtbConfig {
        guest_timer: GuestTimer::Mmio,
        ..v3_config()
    };
    for (name, cfg) in [("v3", v3_config()), ("v2", v2_config()), ("mmio", mmio)] {
        let path = std::env::temp_dir().join(format!(
            "tandem-guest-dtb-{}-{name}.dtb",
            std::process::id()
        ));
        std::fs::write(&path, build(&cfg).unwrap()).unwrap();
        let out = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-o", "-"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dtc failed: {stderr}");
        assert!(stderr.trim().is_empty(), "dtc warnings: {stderr}");
        let dts = String::from_utf8_lossy(&out.stdout);
        assert!(dts.contains("serial@9000000 {"), "{dts}");
        assert!(
            dts.contains("arm,primecell-periphid = <0x241011>;"),
            "{dts}"
        );
    }
}

/// On a core without ECV: the memory-mapped timer, one frame with its two
/// SPIs, and no CP15 timer node (Linux would count with CNTVCT_EL0).
#[test]
fn the_memory_mapped_timer_replaces_the_cp15_one() {
    use crate::emul::timer_mem::{CNT_BASE0, CNTCTL_BASE};
    for base in [v3_config(), v2_config()] {
        let cfg = GuestDtbConfig {
            guest_timer: GuestTimer::Mmio,
            ..base
        };
        let blob = build(&cfg).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        for node in fdt.all_nodes() {
            if let Some(c) = node.property("compatible") {
                assert!(!c.value.starts_with(b"arm,armv8-timer"), "{}", node.name);
            }
        }
        let t = "/timer@3ffe0000";
        assert_eq!(str_prop(&fdt, t, "compatible"), b"arm,armv7-timer-mem\0");
        assert_eq!(u32_prop(&fdt, t, "reg"), [0, CNTCTL_BASE as u32, 0, 0x1000]);
        assert_eq!(u32_prop(&fdt, t, "#address-cells"), [2]);
        assert_eq!(u32_prop(&fdt, t, "#size-cells"), [2]);
        assert!(prop(&fdt, t, "ranges").is_empty());
        let f = "/timer@3ffe0000/frame@3fff0000";
        assert_eq!(u32_prop(&fdt, f, "frame-number"), [0]);
        assert_eq!(u32_prop(&fdt, f, "reg"), [0, CNT_BASE0 as u32, 0, 0x1000]);
        // SPIs 208 and 209 (INTIDs 240, 241), level high: physical, virtual.
        assert_eq!(u32_prop(&fdt, f, "interrupts"), [0, 208, 4, 0, 209, 4]);
    }
    // The same configuration, the same bytes (both boards of a pair).
    let cfg = GuestDtbConfig {
        guest_timer: GuestTimer::Mmio,
        ..v3_config()
    };
    assert_eq!(build(&cfg).unwrap(), build(&cfg).unwrap());
    assert_ne!(build(&cfg).unwrap(), build(&v3_config()).unwrap());
}

/// Guest RAM over the timer's frames is refused, as for any device.
#[test]
fn guest_ram_over_the_timer_is_refused() {
    let cfg = GuestDtbConfig {
        guest_timer: GuestTimer::Mmio,
        memory: Region::new(0x3000_0000, 0x2000_0000),
        initrd: None,
        ..v3_config()
    };
    assert_eq!(
        build(&cfg),
        Err(GuestDtbError::DeviceInMemory("timer control frame"))
    );
    // The CP15 timer needs no window: the same RAM is fine.
    let cfg = GuestDtbConfig {
        guest_timer: GuestTimer::Sysreg,
        ..cfg
    };
    assert!(build(&cfg).is_ok());
}
