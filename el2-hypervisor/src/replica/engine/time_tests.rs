//! Guest time through the engine: a function of the instruction count
//! from each epoch's base, the base chosen by the primary and logged, and
//! kept monotonic across a takeover.

use super::tests::Tape;
use super::*;
use crate::replica::epoch_time::Rate;
use replication_link::message::Takeover;

const COUNTER: u64 = 0xdf02; // CNTVCT_EL0's encoding, as the board passes it

/// One epoch: two counter reads, then a boundary at `count` with the
/// board's clock reading `clock`; returns the times the guest read.
fn epoch(e: &mut Engine<Tape>, count: u64, clock: u64) -> Result<[u64; 2], Stop> {
    let a = e.time(count / 4, InputKind::CounterRead, COUNTER);
    let b = e.time(count / 2, InputKind::CounterRead, COUNTER);
    let fp = e.inputs_digest();
    let time = e.next_time(count, clock, Pace::Running, None);
    e.boundary(count, 0x4000_0000 + e.epoch(), fp, &[], time)?;
    Ok([a, b])
}

fn primary() -> Engine<Tape> {
    Engine::new(Role::Primary, Tape::default())
}

fn backup(log: alloc::vec::Vec<Message>) -> Engine<Tape> {
    Engine::new(
        Role::Backup,
        Tape {
            to_read: log.into(),
            ..Tape::default()
        },
    )
}

/// Three epochs of 1,000 instructions on a primary whose clock reads
/// `clocks` at their ends; the log and what the guest read.
fn recorded(clocks: [u64; 3]) -> (alloc::vec::Vec<Message>, alloc::vec::Vec<[u64; 2]>) {
    let mut p = primary();
    let seen = clocks
        .iter()
        .map(|&c| epoch(&mut p, 1_000, c).unwrap())
        .collect();
    (core::mem::take(&mut p.port().sent), seen)
}

#[test]
fn no_time_is_logged_and_each_epoch_end_carries_the_next_base() {
    // The first boundary fixes the offset (the clock reads 50,000 where
    // guest time is 1,000); then the clock runs 1,500 ticks an epoch,
    // ahead of the epochs' 1,000: slewed, it is caught up by at most an
    // epoch's length per boundary.
    let (log, seen) = recorded([50_000, 51_500, 53_000]);
    assert_eq!(log.len(), 3, "three epoch ends and nothing else: {log:?}");
    let times: alloc::vec::Vec<u64> = log
        .iter()
        .map(|m| match m {
            Message::EpochEnd(end) => end.time,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(times, [1_000, 2_500, 4_000]);
    // Inside each epoch: base + count (one tick per instruction).
    assert_eq!(seen, [[250, 500], [1_250, 1_500], [2_750, 3_000]]);
}

#[test]
fn a_backup_reads_the_primarys_times_whatever_its_own_clock() {
    let (log, primary_saw) = recorded([50_000, 51_500, 53_000]);
    let mut b = backup(log);
    let saw: alloc::vec::Vec<[u64; 2]> = [7, 999_999, 3]
        .iter()
        .map(|&c| epoch(&mut b, 1_000, c).unwrap())
        .collect();
    assert_eq!(saw, primary_saw);
    assert!(b.replaying());
    assert_eq!(b.time_offset(), 0, "a replaying backup's clock is not used");
}

#[test]
fn a_changed_base_is_caught_at_the_boundary_of_the_epoch_that_ran_on_it() {
    let (mut log, _) = recorded([50_000, 51_500, 53_000]);
    let Message::EpochEnd(end) = &mut log[0] else {
        panic!()
    };
    end.time += 1;
    let mut b = backup(log);
    epoch(&mut b, 1_000, 0).unwrap();
    match epoch(&mut b, 1_000, 0) {
        Err(Stop::Diverged(Divergence::Boundary { at, field, .. })) => {
            assert_eq!((at.epoch, field), (1, "state fingerprint"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_log_that_takes_time_back_is_refused() {
    let (mut log, _) = recorded([50_000, 51_500, 53_000]);
    let Message::EpochEnd(end) = &mut log[1] else {
        panic!()
    };
    end.time = 1_500; // epoch 1 ended at 2,000
    let mut b = backup(log);
    epoch(&mut b, 1_000, 0).unwrap();
    match epoch(&mut b, 1_000, 0) {
        Err(Stop::Diverged(Divergence::TimeWentBack { at, end, logged })) => {
            assert_eq!((at.epoch, end, logged), (1, 2_000, 1_500));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_backup_that_goes_live_goes_on_from_where_guest_time_got_to() {
    // Its clock behind the primary's (a shift forward) or ahead (back).
    for clock in [10, 9_000_000] {
        let (mut log, primary_saw) = recorded([50_000, 51_500, 53_000]);
        log.truncate(2);
        log.push(Message::Takeover(Takeover { epoch: 2, count: 0 }));
        let mut b = backup(log);
        assert_eq!(epoch(&mut b, 1_000, 0).unwrap(), primary_saw[0]);
        assert_eq!(epoch(&mut b, 1_000, 0).unwrap(), primary_saw[1]);
        // Epoch 2 runs from the last logged base (2,500) and ends at
        // 3,500 with the log: live from there, on its own clock.
        assert_eq!(epoch(&mut b, 1_000, clock).unwrap(), primary_saw[2]);
        assert!(b.live());
        assert_eq!(b.guest_time(0), 3_500, "no step back, no leap");
        // The first base it chooses fixes its offset: its clock reads
        // where guest time got to.
        let t = b.next_time(100, clock, Pace::Idle, None);
        assert_eq!(t, 3_600, "clock {clock}");
        assert_eq!(b.time_offset(), 3_600 - clock as i64);
        b.boundary(100, 0, 0, &[], t).unwrap();
        // Then its clock, shifted: 600 ticks later, 600 ticks on.
        assert_eq!(b.next_time(10, clock + 600, Pace::Idle, None), 4_200);
    }
}

#[test]
fn idle_time_passes_on_the_clock() {
    let mut p = primary();
    epoch(&mut p, 1_000, 50_000).unwrap(); // offset: -49,000
    // The guest waited at a WFI after 10 instructions until the clock
    // read 80,000: the next epoch starts there, in guest time.
    let t = p.next_time(10, 80_000, Pace::Idle, None);
    assert_eq!(t, 31_000);
    p.boundary(10, 0, 0, &[], t).unwrap();
    assert_eq!(p.guest_time(5), 31_005);
    // The guest's next deadline bounds the step: it fires on time.
    let t = p.next_time(10, 99_000, Pace::Idle, Some(35_000));
    assert_eq!(t, 35_000);
    // A caller's base below the epoch's end is raised to it.
    p.boundary(10, 0, 0, &[], 0).unwrap();
    assert_eq!(p.guest_time(0), 31_010);
}

#[test]
fn the_rate_is_the_guest_counters() {
    // 62.5 MHz: 16 instructions a tick.
    let mut s = Engine::new(Role::Solo, NoLog).with_rate(Rate::new(62_500_000));
    assert_eq!(s.time(1_600, InputKind::CounterRead, COUNTER), 100);
    assert_eq!(s.epoch_time().count_at(100), 1_600);
}
