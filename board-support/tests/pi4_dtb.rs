//! The device-tree reader on a tree shaped like the Raspberry Pi 4's
//! (Linux's bcm2711-rpi-4-b.dts as QEMU `-M raspi4b` passes it on):
//! peripherals at bus addresses under `/soc`, translated by its `ranges`;
//! `stdout-path` naming the mini-UART; disabled PL011s; a spin table.
//! Built here with vm-fdt so the test needs no copy of that file; the QEMU
//! smoke scenario `raspi4b-*` reads the real one.

use board_support::dtb::{self, GicVersion, Region, SpinTableCpu};
use vm_fdt::FdtWriter;

struct Pi4 {
    /// Also enable UART3 (`dtoverlay=uart3` on a real board).
    uart3: bool,
    /// What `/chosen/stdout-path` says.
    stdout: &'static str,
}

fn pi4(o: &Pi4) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string("model", "Raspberry Pi 4 Model B")
        .unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 1).unwrap();

    let aliases = w.begin_node("aliases").unwrap();
    w.property_string("serial0", "/soc/serial@7e201000")
        .unwrap();
    w.property_string("serial1", "/soc/serial@7e215040")
        .unwrap();
    w.end_node(aliases).unwrap();

    let chosen = w.begin_node("chosen").unwrap();
    w.property_string("stdout-path", o.stdout).unwrap();
    w.property_string("bootargs", "tandem.seed=1").unwrap();
    w.end_node(chosen).unwrap();

    let soc = w.begin_node("soc").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_array_u32(
        "ranges",
        &[
            0x7e00_0000,
            0,
            0xfe00_0000,
            0x0180_0000, //
            0x7c00_0000,
            0,
            0xfc00_0000,
            0x0200_0000, //
            0x4000_0000,
            0,
            0xff80_0000,
            0x0080_0000,
        ],
    )
    .unwrap();
    let uart = |w: &mut FdtWriter, at: u32, status: &str| {
        let n = w.begin_node(&format!("serial@{at:x}")).unwrap();
        w.property_string_list(
            "compatible",
            vec!["arm,pl011".into(), "arm,primecell".into()],
        )
        .unwrap();
        w.property_array_u32("reg", &[at, 0x200]).unwrap();
        w.property_array_u32("interrupts", &[0, 0x79, 4]).unwrap();
        w.property_string("status", status).unwrap();
        w.end_node(n).unwrap();
    };
    uart(&mut w, 0x7e20_1000, "okay");
    uart(&mut w, 0x7e20_1400, "disabled");
    uart(
        &mut w,
        0x7e20_1600,
        if o.uart3 { "okay" } else { "disabled" },
    );
    // A node QEMU deletes (`fdt_nop_node`), followed by a sibling: the
    // test below turns its tokens into NOPs, which the `fdt` crate does not
    // skip between a node's properties and its next child.
    let avs = w.begin_node("avs-monitor@7d5d2000").unwrap();
    w.property_array_u32("reg", &[0x7d5d_2000, 0xf00]).unwrap();
    let gone = w.begin_node("thermal").unwrap();
    w.property_u32("nop-me", 0x6e6f_7021).unwrap();
    w.end_node(gone).unwrap();
    let kept = w.begin_node("kept").unwrap();
    w.end_node(kept).unwrap();
    w.end_node(avs).unwrap();
    let aux = w.begin_node("serial@7e215040").unwrap();
    w.property_string("compatible", "brcm,bcm2835-aux-uart")
        .unwrap();
    w.property_array_u32("reg", &[0x7e21_5040, 0x40]).unwrap();
    w.property_array_u32("interrupts", &[0, 0x5d, 4]).unwrap();
    w.property_string("status", "okay").unwrap();
    w.end_node(aux).unwrap();
    let gic = w.begin_node("interrupt-controller@40041000").unwrap();
    w.property_string("compatible", "arm,gic-400").unwrap();
    w.property_array_u32(
        "reg",
        &[
            0x4004_1000,
            0x1000,
            0x4004_2000,
            0x2000,
            0x4004_4000,
            0x2000,
            0x4004_6000,
            0x2000,
        ],
    )
    .unwrap();
    w.property_array_u32("interrupts", &[1, 9, 0xf04]).unwrap();
    w.end_node(gic).unwrap();
    w.end_node(soc).unwrap();

    let timer = w.begin_node("timer").unwrap();
    w.property_string("compatible", "arm,armv8-timer").unwrap();
    w.property_array_u32(
        "interrupts",
        &[1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08, 1, 10, 0xf08],
    )
    .unwrap();
    w.end_node(timer).unwrap();

    let cpus = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    for n in 0..4u32 {
        let cpu = w.begin_node(&format!("cpu@{n}")).unwrap();
        w.property_string("device_type", "cpu").unwrap();
        w.property_u32("reg", n).unwrap();
        w.property_string("enable-method", "spin-table").unwrap();
        w.property_array_u32("cpu-release-addr", &[0, 0xd8 + 8 * n])
            .unwrap();
        w.end_node(cpu).unwrap();
    }
    w.end_node(cpus).unwrap();

    let mem = w.begin_node("memory@0").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u32("reg", &[0, 0, 0x3c00_0000]).unwrap();
    w.end_node(mem).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

const QEMU: Pi4 = Pi4 {
    uart3: false,
    stdout: "serial1:115200n8",
};

#[test]
fn peripherals_are_translated_to_cpu_addresses() {
    let blob = pi4(&QEMU);
    let b = dtb::parse(&blob).unwrap();
    assert_eq!(b.memory.as_slice(), &[Region::new(0, 0x3c00_0000)]);
    // stdout-path names the mini-UART, which is not a PL011: the console
    // is the first enabled PL011, UART0, at its CPU address.
    assert_eq!(b.console.region, Region::new(0xfe20_1000, 0x200));
    assert_eq!(b.console.intid, Some(32 + 0x79));
    assert_eq!(b.link_uart, None, "UART2-5 are disabled");
    let mini = b.mini_uart.expect("the mini-UART");
    assert_eq!(mini.region, Region::new(0xfe21_5040, 0x40));
    assert_eq!(mini.intid, Some(32 + 0x5d));
    assert_eq!(b.gic.version, GicVersion::V2);
    assert_eq!(b.gic.distributor.base, 0xff84_1000);
    assert_eq!(b.gic.cpu_or_redistributor.base, 0xff84_2000);
    assert_eq!(b.gic.hyp_interface.unwrap().base, 0xff84_4000);
    assert_eq!(b.gic.virtual_cpu.unwrap().base, 0xff84_6000);
    assert_eq!(b.gic.maintenance_intid, Some(25));
    assert_eq!(b.timer.unwrap().hyp_phys, 26);
    assert_eq!(b.bootargs, "tandem.seed=1");
}

#[test]
fn the_description_agrees_with_the_tree() {
    let blob = pi4(&QEMU);
    let b = dtb::parse(&blob).unwrap();
    let pi = board_support::boards::RASPBERRY_PI_4;
    assert_eq!(b.console.region.base, pi.early_console);
    assert_eq!(b.console.intid, Some(pi.interrupts.console));
    assert_eq!(b.timer.unwrap().hyp_phys, pi.interrupts.hyp_timer);
    assert_eq!(b.spin_table_cpus.len() as u32, pi.cores);
}

#[test]
fn the_spin_table_is_read_per_core() {
    let blob = pi4(&QEMU);
    let b = dtb::parse(&blob).unwrap();
    let want: Vec<SpinTableCpu> = (0..4)
        .map(|n| SpinTableCpu {
            mpidr: n,
            release_addr: 0xd8 + 8 * n,
        })
        .collect();
    assert_eq!(b.spin_table_cpus.as_slice(), want.as_slice());
}

#[test]
fn an_enabled_uart3_is_the_link_pl011() {
    let blob = pi4(&Pi4 {
        uart3: true,
        stdout: "serial0:115200n8",
    });
    let b = dtb::parse(&blob).unwrap();
    assert_eq!(b.console.region.base, 0xfe20_1000);
    assert_eq!(b.link_uart.unwrap().region.base, 0xfe20_1600);
}

#[test]
fn stdout_path_by_full_path_wins_when_it_is_a_pl011() {
    let blob = pi4(&Pi4 {
        uart3: true,
        stdout: "/soc/serial@7e201600",
    });
    let b = dtb::parse(&blob).unwrap();
    assert_eq!(b.console.region.base, 0xfe20_1600);
    assert_eq!(b.link_uart.unwrap().region.base, 0xfe20_1000);
}

/// Turns the `thermal` node into NOPs, as libfdt's `fdt_nop_node` does:
/// its BEGIN_NODE, name, one property and END_NODE.
fn nop_thermal(blob: &mut [u8]) {
    let name = b"\0\0\0\x01thermal\0";
    let at = blob.windows(name.len()).position(|w| w == name).unwrap();
    // BEGIN_NODE + "thermal\0" (8) + PROP (12 + 4) + END_NODE.
    let len = 4 + 8 + 16 + 4;
    assert_eq!(&blob[at + len - 4..at + len], &[0, 0, 0, 2], "END_NODE");
    for w in blob[at..at + len].chunks_exact_mut(4) {
        w.copy_from_slice(&4u32.to_be_bytes());
    }
}

#[test]
fn a_tree_with_deleted_nodes_parses_once_its_nops_are_stripped() {
    let mut blob = pi4(&QEMU);
    nop_thermal(&mut blob);
    assert_eq!(dtb::strip_nops(&mut blob), Ok(8));
    let b = dtb::parse(&blob).unwrap();
    // Everything after the deleted node is still found.
    assert_eq!(b.mini_uart.unwrap().region.base, 0xfe21_5040);
    assert_eq!(b.gic.distributor.base, 0xff84_1000);
    assert_eq!(b.spin_table_cpus.len(), 4);
    assert_eq!(b.memory_size(), 0x3c00_0000);
}
