//! The guest's interrupt lines the hypervisor drives: the virtual and
//! physical EL1 timers (PPIs 27 and 30), the memory-mapped timer frame's
//! two (SPIs, when the guest has that timer: `emul::timer_mem`) and the
//! console PL011 (an SPI), as levels into the vGIC.
//!
//! Without epochs every line follows its source at every exit
//! ([`GuestLines::update`]). With epochs a line may change only where
//! both boards see the same thing: at an epoch boundary the board takes
//! [`GuestLines::current`], logs it (or takes the log's) and
//! [`GuestLines::apply`]s it; in between only the UART's line follows
//! its registers ([`GuestLines::follow_uart`], a function of the guest's
//! own execution), and a trapped timer register the timers' lines at the
//! logged time ([`follow_timers`]).

use crate::emul::pl011::Pl011;
use crate::emul::timer_mem::{FRAME_PHYS_INTID, FRAME_VIRT_INTID};
use crate::emul::vtimer::{GuestTimers, PHYS_TIMER_INTID, VIRT_TIMER_INTID};
use crate::vgic::{ExitListRegisters, Vgic};

/// The lines that are high, by INTID (in the order of
/// [`GuestLines::all`]).
pub type Levels = heapless::Vec<u32, 8>;

/// The guest's lines: the timers' fixed PPIs and the UART's SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestLines {
    /// The console UART's INTID (from the device tree).
    pub uart: u32,
}

impl GuestLines {
    pub const fn new(uart: u32) -> Self {
        Self { uart }
    }

    /// Every line, in the order levels are taken and applied. The timer
    /// frame's are always among them: without a frame they stay low.
    pub const fn all(&self) -> [u32; 5] {
        [
            VIRT_TIMER_INTID,
            PHYS_TIMER_INTID,
            FRAME_PHYS_INTID,
            FRAME_VIRT_INTID,
            self.uart,
        ]
    }

    /// The lines that are high at guest time `now`.
    pub fn current(&self, timers: &GuestTimers, uart: &Pl011, now: u64) -> Levels {
        let mut v = Levels::new();
        if timers.virt.irq_level(now) {
            let _ = v.push(VIRT_TIMER_INTID);
        }
        if timers.phys.irq_level(now) {
            let _ = v.push(PHYS_TIMER_INTID);
        }
        if let Some(f) = timers.frame {
            for (line, high) in f.lines(now) {
                if high {
                    let _ = v.push(line);
                }
            }
        }
        if uart.irq_level() {
            let _ = v.push(self.uart);
        }
        v
    }

    /// Sets every line: high if it is in `high`, low otherwise (an
    /// epoch boundary's levels, this board's or the log's).
    pub fn apply(&self, vgic: &mut Vgic, high: &[u32]) {
        for line in self.all() {
            let _ = vgic.set_level(line, high.contains(&line));
        }
    }

    /// Brings every line up to date at guest time `now` (no epochs).
    pub fn update(&self, vgic: &mut Vgic, timers: &GuestTimers, uart: &Pl011, now: u64) {
        follow_timers(vgic, timers, now);
        self.follow_uart(vgic, uart);
    }

    /// The UART's line follows its registers.
    pub fn follow_uart(&self, vgic: &mut Vgic, uart: &Pl011) {
        let _ = vgic.set_level(self.uart, uart.irq_level());
    }
}

/// The timers' lines follow the emulation at guest time `now`.
pub fn follow_timers(vgic: &mut Vgic, timers: &GuestTimers, now: u64) {
    let _ = vgic.set_level(VIRT_TIMER_INTID, timers.virt.irq_level(now));
    let _ = vgic.set_level(PHYS_TIMER_INTID, timers.phys.irq_level(now));
    if let Some(f) = timers.frame {
        for (line, high) in f.lines(now) {
            let _ = vgic.set_level(line, high);
        }
    }
}

/// Whether the guest has an interrupt to take: in the model, or pending
/// in one of the list registers read at this exit.
pub fn deliverable(vgic: &Vgic, lrs: &ExitListRegisters) -> bool {
    lrs.any_pending(vgic) || vgic.has_pending_deliverable()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vgic::{GicVersion, VgicConfig};

    const UART: u32 = 33;
    const LINES: GuestLines = GuestLines::new(UART);

    fn vgic() -> Vgic {
        Vgic::new(VgicConfig {
            version: GicVersion::V3,
            affinity: 0,
        })
    }

    fn pending(g: &Vgic, intid: u32) -> bool {
        g.irq(intid).is_some_and(|s| s.pending())
    }

    /// The virtual timer fires at 100, the physical one at 200.
    fn timers() -> GuestTimers {
        let mut t = GuestTimers::new(62_500_000);
        t.virt.write_cval(100);
        t.virt.write_ctl(1);
        t.phys.write_cval(200);
        t.phys.write_ctl(1);
        t
    }

    #[test]
    fn current_levels_follow_the_timers_at_the_time_given() {
        let (t, u) = (timers(), Pl011::new());
        assert!(LINES.current(&t, &u, 99).is_empty());
        assert_eq!(LINES.current(&t, &u, 100).as_slice(), &[VIRT_TIMER_INTID]);
        assert_eq!(
            LINES.current(&t, &u, 200).as_slice(),
            &[VIRT_TIMER_INTID, PHYS_TIMER_INTID]
        );
        // A masked timer's line is low, its condition met or not.
        let mut masked = t;
        masked.virt.write_ctl(0b11);
        assert_eq!(
            LINES.current(&masked, &u, 200).as_slice(),
            &[PHYS_TIMER_INTID]
        );
        assert_eq!(
            LINES.all(),
            [
                VIRT_TIMER_INTID,
                PHYS_TIMER_INTID,
                FRAME_PHYS_INTID,
                FRAME_VIRT_INTID,
                UART
            ]
        );
    }

    #[test]
    fn applied_levels_set_every_line_and_update_agrees_with_them() {
        let (t, u) = (timers(), Pl011::new());
        let mut g = vgic();
        LINES.apply(&mut g, &[VIRT_TIMER_INTID, PHYS_TIMER_INTID]);
        assert!(pending(&g, VIRT_TIMER_INTID) && pending(&g, PHYS_TIMER_INTID));
        // A line not in the list goes low.
        LINES.apply(&mut g, &[PHYS_TIMER_INTID]);
        assert!(!pending(&g, VIRT_TIMER_INTID) && pending(&g, PHYS_TIMER_INTID));
        LINES.apply(&mut g, &[]);
        assert!(!pending(&g, PHYS_TIMER_INTID));
        // Updating at a time is applying that time's levels.
        for now in [0, 100, 150, 200, 1_000] {
            let (mut a, mut b) = (vgic(), vgic());
            LINES.update(&mut a, &t, &u, now);
            LINES.apply(&mut b, &LINES.current(&t, &u, now));
            assert_eq!(a.snapshot_hash(), b.snapshot_hash(), "at {now}");
        }
    }

    #[test]
    fn the_timers_lines_follow_alone() {
        let (t, u) = (timers(), Pl011::new());
        let mut g = vgic();
        follow_timers(&mut g, &t, 150);
        assert!(pending(&g, VIRT_TIMER_INTID) && !pending(&g, PHYS_TIMER_INTID));
        LINES.follow_uart(&mut g, &u);
        assert!(!pending(&g, UART));
        assert!(pending(&g, VIRT_TIMER_INTID));
    }

    /// The memory-mapped timer's frame: its lines are taken, applied and
    /// followed with the system-register timers'.
    #[test]
    fn the_timer_frames_lines_go_with_the_others() {
        let u = Pl011::new();
        let mut t = GuestTimers::with_frame(62_500_000);
        let f = t.frame.as_mut().unwrap();
        f.virt.write_cval(50);
        f.virt.write_ctl(1);
        f.phys.write_cval(70);
        f.phys.write_ctl(1);
        assert!(LINES.current(&t, &u, 49).is_empty());
        assert_eq!(LINES.current(&t, &u, 50).as_slice(), &[FRAME_VIRT_INTID]);
        assert_eq!(
            LINES.current(&t, &u, 70).as_slice(),
            &[FRAME_PHYS_INTID, FRAME_VIRT_INTID]
        );
        let mut g = vgic();
        follow_timers(&mut g, &t, 60);
        assert!(pending(&g, FRAME_VIRT_INTID) && !pending(&g, FRAME_PHYS_INTID));
        LINES.apply(&mut g, &[FRAME_PHYS_INTID]);
        assert!(!pending(&g, FRAME_VIRT_INTID) && pending(&g, FRAME_PHYS_INTID));
        // Every line high at once fits the levels.
        let mut all = timers();
        all.frame = t.frame;
        assert_eq!(LINES.current(&all, &u, 1_000).len(), 4);
    }
}
