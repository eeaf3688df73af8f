//! Byte, halfword, word and doubleword accesses; errors for accesses the
//! guest cannot make.

use super::boot::linux_boot;
use super::*;
use crate::vgic::VgicError;

#[test]
fn ipriorityr_by_byte_and_by_word() {
    let mut g = linux_boot();
    g.distributor_write(GICD_IPRIORITYR + 41, 1, 0x47).unwrap();
    assert_eq!(
        g.distributor_read(GICD_IPRIORITYR + 41, 1).unwrap(),
        0x40,
        "5 priority bits"
    );
    assert_eq!(rd(&g, GICD_IPRIORITYR + 40), 0xa0a0_40a0);
    wd(&mut g, GICD_IPRIORITYR + 40, 0x1020_3048);
    assert_eq!(g.distributor_read(GICD_IPRIORITYR + 43, 1).unwrap(), 0x10);
    assert_eq!(g.irq(40).unwrap().priority(), 0x48);
    // The redistributor's IPRIORITYR0-7 too.
    g.redistributor_write(GICR_IPRIORITYR0 + 27, 1, 0x80)
        .unwrap();
    assert_eq!(g.irq(VTIMER).unwrap().priority(), 0x80);
    assert_eq!(rr(&g, GICR_IPRIORITYR0 + 24), 0x80a0_a0a0);
}

#[test]
fn halfword_accesses_are_refused_by_registers() {
    let mut g = linux_boot();
    let before = g.clone();
    for offset in [
        GICD_CTLR,
        GICD_IPRIORITYR + 2,
        GICD_ISENABLER,
        GICD_IROUTER + 32 * 8,
    ] {
        assert_eq!(
            g.distributor_read(offset, 2),
            Err(VgicError::UnsupportedWidth { offset, width: 2 })
        );
        assert!(g.distributor_write(offset, 2, 0xffff).is_err());
    }
    assert_eq!(
        g.redistributor_read(GICR_WAKER, 2),
        Err(VgicError::UnsupportedWidth {
            offset: GICR_WAKER,
            width: 2
        })
    );
    assert_eq!(g, before, "refused writes change nothing");
    // Reserved space is RAZ/WI at any width.
    assert_eq!(g.distributor_read(0x0040, 2), Ok(0));
    assert_eq!(g.distributor_write(0x0042, 2, 1), Ok(()));
}

#[test]
fn irouter_by_doubleword_and_by_word_halves() {
    let mut g = linux_boot();
    let r = GICD_IROUTER + 40 * 8;
    g.distributor_write(r, 8, 0x0000_00ab_8012_3456).unwrap();
    // IRM [31] is RAZ/WI (no 1-of-N).
    assert_eq!(g.distributor_read(r, 8).unwrap(), 0xab_0012_3456);
    assert_eq!(g.distributor_read(r, 4).unwrap(), 0x0012_3456);
    assert_eq!(g.distributor_read(r + 4, 4).unwrap(), 0xab);
    g.distributor_write(r + 4, 4, 0).unwrap();
    g.distributor_write(r, 4, 0).unwrap();
    assert_eq!(g.distributor_read(r, 8).unwrap(), 0);
    assert_eq!(
        g.distributor_read(r + 1, 1),
        Err(VgicError::UnsupportedWidth {
            offset: r + 1,
            width: 1
        })
    );
}

#[test]
fn gicr_typer_by_doubleword_and_halves() {
    let g = Vgic::new(VgicConfig {
        version: GicVersion::V3,
        affinity: 0x0102_0304,
    });
    let typer = g.redistributor_read(0x8, 8).unwrap();
    assert_eq!(typer, 0x0102_0304_0000_0010);
    assert_eq!(g.redistributor_read(0x8, 4).unwrap(), 0x10);
    assert_eq!(g.redistributor_read(0xc, 4).unwrap(), 0x0102_0304);
}

#[test]
fn doubleword_access_to_word_registers_is_refused() {
    let g = linux_boot();
    for offset in [
        GICD_CTLR,
        0x0008,
        GICD_ISENABLER + 8,
        GICD_IPRIORITYR + 32,
        GICD_ICFGR + 8,
        0x0010,
    ] {
        assert_eq!(
            g.distributor_read(offset, 8),
            Err(VgicError::UnsupportedWidth { offset, width: 8 }),
            "{offset:#x}"
        );
    }
    assert!(g.redistributor_read(GICR_ISENABLER0, 8).is_err());
    assert_eq!(g.distributor_read(0x0018, 8), Ok(0), "reserved");
}

#[test]
fn byte_access_to_word_registers_is_refused() {
    let g = linux_boot();
    assert!(g.distributor_read(GICD_CTLR, 1).is_err());
    assert!(g.distributor_read(GICD_TYPER + 1, 1).is_err());
    assert!(g.distributor_read(GICD_ISENABLER + 5, 1).is_err());
    assert!(g.redistributor_read(GICR_WAKER, 1).is_err());
}

#[test]
fn bad_widths_misalignment_and_out_of_frame_are_errors() {
    let mut g = linux_boot();
    for width in [0, 3, 5, 16, 255] {
        assert_eq!(
            g.distributor_read(0, width),
            Err(VgicError::BadWidth { width })
        );
        assert_eq!(
            g.redistributor_write(0, width, 0),
            Err(VgicError::BadWidth { width })
        );
    }
    assert_eq!(
        g.distributor_read(0x401, 4),
        Err(VgicError::Misaligned {
            offset: 0x401,
            width: 4
        })
    );
    assert_eq!(
        g.distributor_read(0x6004, 8),
        Err(VgicError::Misaligned {
            offset: 0x6004,
            width: 8
        })
    );
    assert_eq!(
        g.distributor_read(0x1_0000, 4),
        Err(VgicError::OutOfRange {
            offset: 0x1_0000,
            width: 4
        })
    );
    assert_eq!(
        g.distributor_write(u64::MAX - 7, 8, 0),
        Err(VgicError::OutOfRange {
            offset: u64::MAX - 7,
            width: 8
        })
    );
    assert_eq!(
        g.redistributor_read(0x2_0000, 1),
        Err(VgicError::OutOfRange {
            offset: 0x2_0000,
            width: 1
        })
    );
    assert_eq!(
        g.distributor_read(0xfff8, 8),
        Ok(0),
        "last doubleword of the frame"
    );
    assert_eq!(g.redistributor_read(0x1_fffc, 4), Ok(0));
    assert!(
        VgicError::OutOfRange {
            offset: 0,
            width: 4
        }
        .is_guest_fault()
    );
}

#[test]
fn read_only_registers_ignore_writes() {
    let mut g = linux_boot();
    let typer = rd(&g, GICD_TYPER);
    wd(&mut g, GICD_TYPER, 0);
    wd(&mut g, 0xffe8, 0);
    assert_eq!(rd(&g, GICD_TYPER), typer);
    assert_eq!(rd(&g, 0xffe8), 0x3b);
    wr(&mut g, SGI_BASE + 0x0c00, 0);
    assert_eq!(rr(&g, SGI_BASE + 0x0c00), 0xaaaa_aaaa);
    g.redistributor_write(0x8, 8, 0).unwrap();
    assert_eq!(g.redistributor_read(0x8, 8).unwrap(), 0x10);
}

#[test]
fn the_v2_model_has_no_redistributor() {
    let mut g = Vgic::new(VgicConfig {
        version: GicVersion::V2,
        affinity: 0,
    });
    assert_eq!(g.redistributor_read(0, 4), Err(VgicError::NoSuchFrame));
    assert_eq!(g.redistributor_write(0, 4, 0), Err(VgicError::NoSuchFrame));
    assert_eq!(
        g.distributor_read(0x1000, 4),
        Err(VgicError::OutOfRange {
            offset: 0x1000,
            width: 4
        })
    );
}
