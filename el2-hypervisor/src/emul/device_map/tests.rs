//! The device table and the dispatch, on QEMU virt's windows.

use super::*;
use crate::emul::device::MmioOp;
use crate::emul::mmio::MmioError;
use crate::vgic::{GicVersion, VgicConfig, VgicError};
use alloc::string::ToString;

/// QEMU virt (hw/arm/virt.c): GICD, GICR, UART0.
const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080a_0000;
const UART: u64 = 0x0900_0000;

fn gic(version: BoardGic) -> GicInfo {
    GicInfo {
        version,
        distributor: Region::new(GICD, 0x1_0000),
        cpu_or_redistributor: Region::new(GICR, 0xf6_0000),
        hyp_interface: None,
        virtual_cpu: None,
        maintenance_intid: None,
    }
}

fn console() -> Uart {
    Uart {
        region: Region::new(UART, 0x1000),
        intid: Some(33),
    }
}

fn virt_table() -> DeviceTable {
    DeviceTable::for_guest(&gic(BoardGic::V3), &console(), false).unwrap()
}

fn devices() -> Devices {
    Devices::new(
        virt_table(),
        Vgic::new(VgicConfig {
            version: GicVersion::V3,
            affinity: 0,
        }),
        Pl011::new(),
    )
}

/// The devices' access with no memory-mapped timer: guest time is never
/// asked for.
fn untimed(d: &mut Devices, a: GuestAccess) -> Result<Completion, DeviceFault> {
    d.access(a, &mut GuestTimers::new(1), |_, _| {
        panic!("guest time read")
    })
}

fn read(d: &mut Devices, ipa: u64, width: Width) -> Result<Completion, DeviceFault> {
    untimed(
        d,
        GuestAccess {
            ipa,
            width,
            op: MmioOp::Read,
        },
    )
}

fn write(d: &mut Devices, ipa: u64, width: Width, v: u64) -> Result<Completion, DeviceFault> {
    untimed(
        d,
        GuestAccess {
            ipa,
            width,
            op: MmioOp::Write(v),
        },
    )
}

#[test]
fn the_guest_windows_are_the_boards_addresses_at_the_emulated_sizes() {
    let t = virt_table();
    assert_eq!(
        t.window(DeviceId::GicDistributor),
        Some(Region::new(GICD, GICD_V3_SIZE))
    );
    // The board's GICR region covers every CPU's frames; the guest has one.
    assert_eq!(
        t.window(DeviceId::GicRedistributor),
        Some(Region::new(GICR, GICR_SIZE))
    );
    assert_eq!(t.window(DeviceId::Console), Some(Region::new(UART, 0x1000)));
    assert_eq!(t.windows().len(), 3);
}

#[test]
fn a_gicv2_guest_has_a_4k_distributor_and_no_redistributor() {
    let t = DeviceTable::for_guest(&gic(BoardGic::V2), &console(), false).unwrap();
    assert_eq!(
        t.window(DeviceId::GicDistributor),
        Some(Region::new(GICD, GICD_V2_SIZE))
    );
    assert_eq!(t.window(DeviceId::GicRedistributor), None);
    assert_eq!(t.lookup(GICR), None);
}

#[test]
fn lookup_edges() {
    let t = virt_table();
    for (device, base, size) in [
        (DeviceId::GicDistributor, GICD, GICD_V3_SIZE),
        (DeviceId::GicRedistributor, GICR, GICR_SIZE),
        (DeviceId::Console, UART, 0x1000),
    ] {
        assert_eq!(t.lookup(base), Some((device, 0)), "{device:?} first byte");
        assert_eq!(
            t.lookup(base + size - 1),
            Some((device, size - 1)),
            "{device:?} last byte"
        );
        assert_eq!(t.lookup(base + size), None, "{device:?} one past");
        assert_eq!(t.lookup(base - 1), None, "{device:?} one before");
    }
    assert_eq!(t.lookup(0), None);
    assert_eq!(t.lookup(u64::MAX), None);
    // Guest RAM is mapped at stage 2: it never reaches the table.
    assert_eq!(t.lookup(0x4000_0000), None);
}

#[test]
fn overlapping_windows_are_refused_and_leave_the_table_as_it_was() {
    let mut t = virt_table();
    let before = t.clone();
    // A window ending one byte into the distributor.
    let bad = Region::new(GICD - 0x1000, 0x1001);
    assert_eq!(
        t.add(bad, DeviceId::Console),
        Err(TableError::Overlap {
            device: DeviceId::Console,
            region: bad,
            with: DeviceId::GicDistributor,
            with_region: Region::new(GICD, GICD_V3_SIZE),
        })
    );
    assert_eq!(t, before);
    // Touching is not overlapping.
    let mut t = DeviceTable::new();
    t.add(Region::new(0x1000, 0x1000), DeviceId::GicDistributor)
        .unwrap();
    t.add(Region::new(0x2000, 0x1000), DeviceId::Console)
        .unwrap();
    t.add(Region::new(0x0, 0x1000), DeviceId::GicRedistributor)
        .unwrap();
}

#[test]
fn a_board_whose_console_sits_in_its_gic_is_refused() {
    let mut c = console();
    c.region.base = GICR + 0x1_0000;
    let e = DeviceTable::for_guest(&gic(BoardGic::V3), &c, false).unwrap_err();
    assert!(
        matches!(
            e,
            TableError::Overlap {
                device: DeviceId::Console,
                with: DeviceId::GicRedistributor,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the console UART window 0x80b0000..0x80b1000 overlaps the GIC redistributor window 0x80a0000..0x80c0000"
    );
}

#[test]
fn empty_wrapping_duplicate_windows_and_a_full_table_are_refused() {
    let mut t = DeviceTable::new();
    assert_eq!(
        t.add(Region::new(0x1000, 0), DeviceId::Console),
        Err(TableError::Empty(DeviceId::Console))
    );
    assert_eq!(
        t.add(Region::new(u64::MAX - 0xfff, 0x1000), DeviceId::Console),
        Err(TableError::Wraps(DeviceId::Console))
    );
    t.add(Region::new(0x1000, 0x1000), DeviceId::Console)
        .unwrap();
    assert_eq!(
        t.add(Region::new(0x8000, 0x1000), DeviceId::Console),
        Err(TableError::Duplicate(DeviceId::Console))
    );
    assert_eq!(t.windows().len(), 1);
}

#[test]
fn a_full_table_is_refused() {
    // Only three devices exist, so fill the table by hand.
    let mut t = DeviceTable::new();
    for i in 0..MAX_WINDOWS as u64 {
        t.windows
            .push(Window {
                region: Region::new(i * 0x1000, 0x1000),
                device: DeviceId::GicDistributor,
            })
            .unwrap();
    }
    t.windows.retain(|w| w.device != DeviceId::Console);
    assert_eq!(
        t.add(Region::new(0x10_0000, 0x1000), DeviceId::Console),
        Err(TableError::Full(DeviceId::Console))
    );
}

#[test]
fn each_window_reaches_its_own_device() {
    let mut d = devices();
    // Offset 4 in each window: GICD_TYPER, GICR_IIDR, UARTRSR.
    let reference = d.vgic.clone();
    let gicd_typer = reference.distributor_read(4, 4).unwrap();
    let gicr_iidr = reference.redistributor_read(4, 4).unwrap();
    assert_ne!(gicd_typer, gicr_iidr);
    assert_eq!(
        read(&mut d, GICD + 4, Width::Word),
        Ok(Completion::Read(gicd_typer))
    );
    assert_eq!(
        read(&mut d, GICR + 4, Width::Word),
        Ok(Completion::Read(gicr_iidr))
    );
    assert_eq!(read(&mut d, UART + 4, Width::Word), Ok(Completion::Read(0)));
    // What the UART received is the one read from outside the model:
    // an environment input; every other device read is the model's.
    assert_eq!(read(&mut d, UART, Width::Word), Ok(Completion::Outside(0)));
    assert_eq!(
        read(&mut d, UART + 1, Width::Byte),
        Ok(Completion::Outside(0))
    );
    assert_eq!(
        read(&mut d, UART + 0x18, Width::Half),
        Ok(Completion::Read(0x90))
    );
    for gic in [GICD, GICR, GICR + 0x1_0000] {
        assert!(
            matches!(read(&mut d, gic, Width::Word), Ok(Completion::Read(_))),
            "{gic:#x}"
        );
    }
    // The UART's PeriphID0, at the top of its window.
    assert_eq!(
        read(&mut d, UART + 0xfe0, Width::Word),
        Ok(Completion::Read(0x11))
    );
}

#[test]
fn writes_reach_the_device_and_the_uart_transmits() {
    let mut d = devices();
    // GICD_CTLR: enable both groups (ARE and DS read as one).
    assert_eq!(
        write(&mut d, GICD, Width::Word, 0b11),
        Ok(Completion::Written(WriteEffect::None))
    );
    assert_eq!(d.vgic.distributor_read(0, 4), Ok(0x53));
    // GICR_WAKER: wake the redistributor.
    assert_eq!(
        write(&mut d, GICR + 0x14, Width::Word, 0),
        Ok(Completion::Written(WriteEffect::None))
    );
    assert_eq!(d.vgic.redistributor_read(0x14, 4), Ok(0));
    // DR: a byte out.
    assert_eq!(
        write(&mut d, UART, Width::Byte, u64::from(b'A')),
        Ok(Completion::Written(WriteEffect::Transmit(b'A')))
    );
    // IMSC: stored, nothing out.
    assert_eq!(
        write(&mut d, UART + 0x38, Width::Word, 0x10),
        Ok(Completion::Written(WriteEffect::None))
    );
    assert_eq!(
        read(&mut d, UART + 0x38, Width::Word),
        Ok(Completion::Read(0x10))
    );
}

#[test]
fn an_unmapped_address_is_a_fault_that_changes_nothing() {
    let mut d = devices();
    let (vgic, uart) = (d.vgic.clone(), d.uart.clone());
    for ipa in [
        0,
        GICD - 1,
        GICD + GICD_V3_SIZE,
        GICR + GICR_SIZE,
        UART + 0x1000,
    ] {
        assert_eq!(
            read(&mut d, ipa, Width::Word),
            Err(DeviceFault::Unmapped { ipa })
        );
        assert_eq!(
            write(&mut d, ipa, Width::Word, 1),
            Err(DeviceFault::Unmapped { ipa })
        );
    }
    assert_eq!((d.vgic, d.uart), (vgic, uart));
}

#[test]
fn widths_the_devices_refuse_are_their_faults() {
    let mut d = devices();
    assert_eq!(
        read(&mut d, UART, Width::Double),
        Err(DeviceFault::Uart(MmioError::UnsupportedWidth(
            Width::Double
        )))
    );
    assert_eq!(
        write(&mut d, UART + 0x18, Width::Word, 0).map_err(|_| ()),
        Ok(Completion::Written(WriteEffect::None))
    );
    assert!(matches!(
        read(&mut d, UART + 0x1a, Width::Word),
        Err(DeviceFault::Uart(MmioError::Misaligned { .. }))
    ));
    // A byte of FR, the high half of CR.
    assert_eq!(
        read(&mut d, UART + 0x18, Width::Byte),
        Ok(Completion::Read(0x90))
    );
    assert_eq!(
        read(&mut d, UART + 0x32, Width::Half),
        Ok(Completion::Read(0))
    );
    // No halfword anywhere in the GIC; GICD_CTLR is word-only; GICR_TYPER
    // is read whole at 64 bits.
    assert_eq!(
        read(&mut d, GICD, Width::Half),
        Err(DeviceFault::Gic(VgicError::UnsupportedWidth {
            offset: 0,
            width: 2
        }))
    );
    assert!(matches!(
        write(&mut d, GICD, Width::Byte, 1),
        Err(DeviceFault::Gic(VgicError::UnsupportedWidth { .. }))
    ));
    let typer = d.vgic.redistributor_read(8, 8).unwrap();
    assert_eq!(
        read(&mut d, GICR + 8, Width::Double),
        Ok(Completion::Read(typer))
    );
    // The last word of the redistributor pair is inside it; a word
    // straddling the end of the distributor is not aligned.
    assert!(read(&mut d, GICR + GICR_SIZE - 4, Width::Word).is_ok());
    assert!(matches!(
        read(&mut d, GICD + GICD_V3_SIZE - 2, Width::Word),
        Err(DeviceFault::Gic(_))
    ));
}

/// The dispatch as `runtime/vm/traps.rs` had it before the table (an
/// if-chain over the three windows): the reference the table must match.
fn if_chain(
    vgic: &mut Vgic,
    uart: &mut Pl011,
    ipa: u64,
    width: Width,
    store: Option<u64>,
) -> Result<(Option<u64>, Option<u8>), ()> {
    let gicd = Region::new(GICD, GICD_V3_SIZE);
    let gicr = Region::new(GICR, GICR_SIZE);
    let uart_window = Region::new(UART, 0x1000);
    let w = width as u8;
    if gicd.contains(ipa) {
        let off = ipa - gicd.base;
        return match store {
            None => vgic
                .distributor_read(off, w)
                .map(|v| (Some(v), None))
                .map_err(drop),
            Some(v) => vgic
                .distributor_write(off, w, v)
                .map(|_| (None, None))
                .map_err(drop),
        };
    }
    if gicr.contains(ipa) {
        let off = ipa - gicr.base;
        return match store {
            None => vgic
                .redistributor_read(off, w)
                .map(|v| (Some(v), None))
                .map_err(drop),
            Some(v) => vgic
                .redistributor_write(off, w, v)
                .map(|_| (None, None))
                .map_err(drop),
        };
    }
    if uart_window.contains(ipa) {
        let off = ipa - uart_window.base;
        return match store {
            None => uart.read(off, width).map(|v| (Some(v), None)).map_err(drop),
            Some(v) => uart.write(off, width, v).map(|b| (None, b)).map_err(drop),
        };
    }
    Err(())
}

#[test]
fn the_table_answers_as_the_if_chain_did() {
    let mut d = devices();
    let (mut vgic, mut uart) = (d.vgic.clone(), d.uart.clone());
    let widths = [Width::Byte, Width::Half, Width::Word, Width::Double];
    // Offsets near each window's registers and edges, every width, both
    // directions, with a fixed-seed generator for the store values.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut n = 0;
    for base in [GICD, GICR, GICR + 0x1_0000, UART] {
        for off in (0..0x120u64).chain(0xfd0..0x1008).chain(0xffe0..0x1_0008) {
            for width in widths {
                for write in [false, true] {
                    let ipa = base.wrapping_add(off).wrapping_sub(4);
                    let v = next();
                    let store = write.then_some(v & width_mask(width));
                    let old = if_chain(&mut vgic, &mut uart, ipa, width, store);
                    let new = untimed(
                        &mut d,
                        GuestAccess {
                            ipa,
                            width,
                            op: store.map_or(MmioOp::Read, MmioOp::Write),
                        },
                    );
                    let new = match new {
                        Ok(Completion::Read(v) | Completion::Outside(v)) => Ok((Some(v), None)),
                        Ok(Completion::Written(WriteEffect::None)) => Ok((None, None)),
                        Ok(Completion::Written(WriteEffect::Transmit(b))) => Ok((None, Some(b))),
                        Err(_) => Err(()),
                    };
                    assert_eq!(new, old, "{ipa:#x} {width:?} {store:?}");
                    n += 1;
                }
            }
        }
    }
    assert_eq!((d.vgic, d.uart), (vgic, uart));
    assert!(n > 10_000);
}

fn width_mask(w: Width) -> u64 {
    match w {
        Width::Double => u64::MAX,
        w => (1u64 << (w as u32 * 8)) - 1,
    }
}

/// The memory-mapped timer's two windows, and guest time read once per
/// access to its frame (never for another device or its control frame).
#[test]
fn the_timer_windows_read_guest_time_only_in_the_frame() {
    use crate::emul::timer_mem::{self, CNT_BASE0, CNTCTL_BASE, CNTTIDR_VALUE};
    let t = DeviceTable::for_guest(&gic(BoardGic::V3), &console(), true).unwrap();
    assert_eq!(
        t.window(DeviceId::TimerControl),
        Some(timer_mem::CONTROL_WINDOW)
    );
    assert_eq!(
        t.window(DeviceId::TimerFrame),
        Some(timer_mem::FRAME_WINDOW)
    );
    assert_eq!(virt_table().window(DeviceId::TimerFrame), None);
    let mut d = Devices::new(
        t,
        Vgic::new(VgicConfig {
            version: GicVersion::V3,
            affinity: 0,
        }),
        Pl011::new(),
    );
    let mut timers = GuestTimers::with_frame(62_500_000);
    let mut asked = alloc::vec::Vec::new();
    let mut go = |d: &mut Devices, timers: &mut GuestTimers, ipa: u64, op: MmioOp| {
        let a = GuestAccess {
            ipa,
            width: Width::Word,
            op,
        };
        d.access(a, timers, |kind, src| {
            asked.push((kind, src));
            0x1_2345_6789
        })
    };
    assert_eq!(
        go(&mut d, &mut timers, CNTCTL_BASE + 8, MmioOp::Read),
        Ok(Completion::Read(CNTTIDR_VALUE.into()))
    );
    assert_eq!(
        go(&mut d, &mut timers, UART + 0x18, MmioOp::Read).map(|_| ()),
        Ok(())
    );
    assert_eq!(
        go(&mut d, &mut timers, CNT_BASE0 + 0xc, MmioOp::Read),
        Ok(Completion::Read(1))
    );
    assert_eq!(
        go(&mut d, &mut timers, CNT_BASE0 + 0x3c, MmioOp::Write(1)),
        Ok(Completion::Written(WriteEffect::None))
    );
    assert!(timers.frame.unwrap().virt.enabled());
    assert_eq!(
        asked,
        [
            (InputKind::CounterRead, CNT_BASE0 + 0xc),
            (InputKind::TimerRegRead, CNT_BASE0 + 0x3c)
        ]
    );
    // Timers without a frame (a table built wrongly): unmapped, not a panic.
    let mut bare = GuestTimers::new(1);
    assert_eq!(
        d.access(
            GuestAccess {
                ipa: CNT_BASE0,
                width: Width::Word,
                op: MmioOp::Read
            },
            &mut bare,
            |_, _| 0
        ),
        Err(DeviceFault::Unmapped { ipa: CNT_BASE0 })
    );
}
