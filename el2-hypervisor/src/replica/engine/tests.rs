//! The engine against a tape: a primary's log recorded into memory and
//! fed to a backup, intact, changed, cut short, or gone.

use super::*;
use alloc::collections::VecDeque;
use alloc::vec::Vec as StdVec;
use replication_link::message::{Released, Takeover};

/// A log port over memory: what is sent is kept; what is read comes from
/// `to_read`. An exhausted tape, or a send after `send_limit`, is a peer
/// that went away.
#[derive(Default)]
pub(super) struct Tape {
    pub(super) sent: StdVec<Message>,
    pub(super) to_read: VecDeque<Message>,
    pub(super) send_limit: Option<usize>,
}

impl LogPort for Tape {
    fn send(&mut self, msg: Message) -> Result<(), PeerGone> {
        if self.send_limit.is_some_and(|n| self.sent.len() >= n) {
            return Err(PeerGone);
        }
        self.sent.push(msg);
        Ok(())
    }
    fn next(&mut self) -> Result<Message, PeerGone> {
        self.to_read.pop_front().ok_or(PeerGone)
    }
}

/// One step of a guest's execution as the engine sees it.
#[derive(Clone, Copy)]
enum Step {
    /// An input at `count`: (kind, width, source, the board's own value).
    Input(u64, InputKind, u8, u64, u64),
    /// A boundary at `count`, PC, with these lines high on this board.
    Boundary(u64, u64, &'static [u32]),
}

use InputKind::{FirmwareResult, MmioRead, SysRegRead};

/// Two epochs of logged inputs: system register reads, an MMIO read, a
/// firmware call. (Time is not an input: [`time_script`] has it.)
const SCRIPT: [Step; 7] = [
    Step::Input(10, SysRegRead, 0, 0xdf02, 1000),
    Step::Input(20, MmioRead, 4, 0x0900_0018, 0x90),
    Step::Boundary(1_000, 0x4000_1000, &[27]),
    Step::Input(5, FirmwareResult, 0, 0x8400_0000, 0x10001),
    Step::Input(7, SysRegRead, 0, 0xdf02, 2000),
    Step::Input(9, SysRegRead, 0, 0xdf02, 3000),
    Step::Boundary(400, 0x4000_2000, &[]),
];

/// What a run saw: each input's value and each boundary's lines.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Value(u64),
    Lines(StdVec<u32>),
}

/// The board's clock at the boundary of `epoch`, `skew` ticks off.
fn clock_at(epoch: u64, skew: u64) -> u64 {
    100_000 * (epoch + 1) + skew
}

/// Runs `script` on `engine`; `skew` is added to every value the board
/// computes and to its clock (a backup's own values differ from the
/// primary's). The fingerprint of a boundary is the inputs digest xor the
/// PC: the state of this model guest.
fn run(engine: &mut Engine<Tape>, script: &[Step], skew: u64) -> Result<StdVec<Seen>, Stop> {
    let mut seen = StdVec::new();
    for step in script {
        match *step {
            Step::Input(count, kind, width, source, value) => {
                let v = engine.input(count, kind, width, source, value + skew)?;
                seen.push(Seen::Value(v));
            }
            Step::Boundary(count, pc, lines) => {
                let fp = engine.inputs_digest() ^ pc;
                let clock = clock_at(engine.epoch(), skew);
                let time = engine.next_time(count, clock, Pace::Running, None);
                let high = engine.boundary(count, pc, fp, lines, time)?;
                seen.push(Seen::Lines(high.iter().copied().collect()));
            }
        }
    }
    Ok(seen)
}

/// The primary's log of [`SCRIPT`], and what its guest saw.
fn recorded() -> (StdVec<Message>, StdVec<Seen>) {
    let mut p = Engine::new(Role::Primary, Tape::default());
    let seen = run(&mut p, &SCRIPT, 0).unwrap();
    assert_eq!(p.entries(), 5);
    assert_eq!(p.epoch(), 2);
    (core::mem::take(&mut p.port().sent), seen)
}

fn backup(log: StdVec<Message>) -> Engine<Tape> {
    Engine::new(
        Role::Backup,
        Tape {
            to_read: log.into(),
            ..Tape::default()
        },
    )
}

#[test]
fn the_primary_logs_every_input_and_boundary_in_order() {
    let (log, seen) = recorded();
    assert_eq!(log.len(), SCRIPT.len());
    match (&log[1], &log[2]) {
        (Message::LogEntry(e), Message::EpochEnd(end)) => {
            assert_eq!(
                (e.epoch, e.count, e.kind, e.detail, e.value),
                (0, 20, MmioRead, 4, 0x90)
            );
            assert_eq!((end.epoch, end.count, end.pc), (0, 1_000, 0x4000_1000));
            assert_eq!(&end.interrupts[..], &[27]);
        }
        other => panic!("{other:?}"),
    }
    // The primary's guest saw its own values.
    assert_eq!(seen[0], Seen::Value(1000));
}

#[test]
fn the_backup_sees_the_primarys_values_and_lines() {
    let (log, primary_saw) = recorded();
    let mut b = backup(log);
    // Its own values (skewed) and lines are not what its guest gets.
    let mut script = SCRIPT;
    script[6] = Step::Boundary(400, 0x4000_2000, &[30]);
    let backup_saw = run(&mut b, &script, 7).unwrap();
    assert_eq!(backup_saw, primary_saw);
    assert_eq!(b.entries(), 5);
    assert!(b.replaying() && !b.live());
}

#[test]
fn a_changed_value_is_caught_at_the_boundary_of_its_epoch() {
    let (mut log, _) = recorded();
    // The second epoch's last counter read, changed after recording.
    let Message::LogEntry(e) = &mut log[5] else {
        panic!()
    };
    e.value += 1;
    let mut b = backup(log);
    match run(&mut b, &SCRIPT, 0) {
        Err(Stop::Diverged(Divergence::Boundary { at, field, .. })) => {
            assert_eq!((at.epoch, at.count, field), (1, 400, "state fingerprint"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn another_access_is_a_divergence_at_its_count() {
    let cases: [(usize, Step); 4] = [
        (0, Step::Input(11, SysRegRead, 0, 0xdf02, 1000)), // another count
        (0, Step::Input(10, MmioRead, 0, 0xdf02, 1000)),   // another kind
        (1, Step::Input(20, MmioRead, 4, 0x0900_0000, 0)), // another register
        (1, Step::Input(20, MmioRead, 8, 0x0900_0018, 0)), // another width
    ];
    for (i, step) in cases {
        let (log, _) = recorded();
        let mut b = backup(log);
        let mut script = SCRIPT;
        script[i] = step;
        match run(&mut b, &script, 0) {
            Err(Stop::Diverged(Divergence::Input { at, .. })) => assert_eq!(at.epoch, 0),
            other => panic!("case {i}: {other:?}"),
        }
    }
}

#[test]
fn an_input_where_the_log_ends_the_epoch_and_the_reverse() {
    let (log, _) = recorded();
    let mut extra = SCRIPT.to_vec();
    extra.insert(2, Step::Input(30, SysRegRead, 0, 0xdf02, 5));
    match run(&mut backup(log), &extra, 0) {
        Err(Stop::Diverged(Divergence::InputInsteadOfBoundary { logged_end, .. })) => {
            assert_eq!(logged_end.count, 1_000);
        }
        other => panic!("{other:?}"),
    }
    let (log, _) = recorded();
    let mut fewer = SCRIPT.to_vec();
    fewer.remove(1);
    match run(&mut backup(log), &fewer, 0) {
        Err(Stop::Diverged(Divergence::BoundaryInsteadOfInput { at, expected })) => {
            assert_eq!((at.epoch, at.count, expected.count), (0, 1_000, 20));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn at_the_end_of_the_log_the_backup_goes_live_with_its_own_values() {
    let (mut log, primary_saw) = recorded();
    log.truncate(3); // the first epoch
    log.push(Message::Takeover(Takeover { epoch: 1, count: 0 }));
    let mut b = backup(log);
    let saw = run(&mut b, &SCRIPT, 7).unwrap();
    assert_eq!(saw[..3], primary_saw[..3]);
    assert_eq!(saw[3], Seen::Value(0x10001 + 7), "its own value once live");
    assert!(b.live() && !b.replaying());
    assert_eq!(
        b.take_went_live(),
        Some(WentLive {
            at: At { epoch: 1, count: 5 },
            why: LiveReason::EndOfLog
        })
    );
    assert_eq!(b.take_went_live(), None, "said once");
}

#[test]
fn a_peer_that_goes_away_is_peer_gone_not_a_divergence() {
    let (mut log, _) = recorded();
    log.truncate(4);
    assert_eq!(run(&mut backup(log), &SCRIPT, 0), Err(Stop::PeerGone));
    let mut p = Engine::new(
        Role::Primary,
        Tape {
            send_limit: Some(2),
            ..Tape::default()
        },
    );
    assert_eq!(run(&mut p, &SCRIPT, 0), Err(Stop::PeerGone));
}

#[test]
fn a_solo_board_logs_nothing_and_sees_its_own_values() {
    let mut s = Engine::new(Role::Solo, NoLog);
    for step in SCRIPT {
        match step {
            Step::Input(count, kind, width, source, value) => {
                assert_eq!(s.input(count, kind, width, source, value), Ok(value));
            }
            Step::Boundary(count, pc, lines) => {
                assert_eq!(&s.boundary(count, pc, 0, lines, 0).unwrap()[..], lines);
            }
        }
    }
    assert_eq!((s.epoch(), s.entries()), (2, 0));
}

#[test]
fn the_inputs_digest_covers_each_field_and_restarts_each_epoch() {
    let digest_after = |kind, width, source, count, value| {
        let mut s = Engine::new(Role::Solo, NoLog);
        s.input(count, kind, width, source, value).unwrap();
        s.inputs_digest()
    };
    let base = digest_after(MmioRead, 4, 0x900_0000, 10, 1);
    assert_ne!(base, digest_after(SysRegRead, 4, 0x900_0000, 10, 1));
    assert_ne!(base, digest_after(MmioRead, 8, 0x900_0000, 10, 1));
    assert_ne!(base, digest_after(MmioRead, 4, 0x900_0004, 10, 1));
    assert_ne!(base, digest_after(MmioRead, 4, 0x900_0000, 11, 1));
    assert_ne!(base, digest_after(MmioRead, 4, 0x900_0000, 10, 2));
    let mut s = Engine::new(Role::Solo, NoLog);
    let empty = s.inputs_digest();
    s.input(1, SysRegRead, 0, 0, 5).unwrap();
    s.boundary(2, 0, 0, &[], 10).unwrap();
    let mut same_base = Engine::new(Role::Solo, NoLog);
    same_base.boundary(2, 0, 0, &[], 10).unwrap();
    assert_eq!(
        s.inputs_digest(),
        same_base.inputs_digest(),
        "a new epoch's digest holds only its base"
    );
    let mut other_base = Engine::new(Role::Solo, NoLog);
    other_base.boundary(2, 0, 0, &[], 11).unwrap();
    assert_ne!(s.inputs_digest(), other_base.inputs_digest());
    assert_ne!(empty, other_base.inputs_digest());
}

fn released(output: u64) -> Message {
    Message::Released(Released { output })
}

#[test]
fn released_marks_are_taken_out_of_the_log_and_never_go_down() {
    let (mut log, primary_saw) = recorded();
    // log: entry, entry, end, entry, entry, entry, end. A mark where the
    // backup expects a boundary, then one where it expects an input.
    log.insert(2, released(10));
    log.insert(4, released(4));
    log.insert(8, released(12));
    let mut b = backup(log);
    let mut saw = run(&mut b, &SCRIPT[..4], 0).unwrap();
    assert_eq!(b.peer_released(), 10, "a lower mark changes nothing");
    saw.extend(run(&mut b, &SCRIPT[4..], 0).unwrap());
    assert_eq!(saw, primary_saw);
    assert_eq!(b.peer_released(), 12);
    assert_eq!(b.entries(), 5, "marks are not log entries");
    assert!(b.replaying());
}

#[test]
fn the_primary_tells_how_far_it_released_when_that_grew() {
    let mut p = Engine::new(Role::Primary, Tape::default());
    for total in [0, 5, 5, 3, 9] {
        p.released(total).unwrap();
    }
    assert_eq!(p.port().sent, [released(5), released(9)]);
    assert_eq!(p.entries(), 0);
    // Nobody else sends marks.
    for role in [Role::Solo, Role::Backup] {
        let mut e = Engine::new(role, Tape::default());
        e.released(5).unwrap();
        assert!(e.port().sent.is_empty(), "{role:?}");
    }
    // Without failover a gone backup stops the primary, as for any send.
    let mut p = Engine::new(
        Role::Primary,
        Tape {
            send_limit: Some(0),
            ..Tape::default()
        },
    );
    assert_eq!(p.released(1), Err(Stop::PeerGone));
}

#[test]
fn with_failover_a_backup_goes_live_where_the_log_it_received_ends() {
    // Gone before an input: everything received is replayed first.
    let (mut log, primary_saw) = recorded();
    log.truncate(4);
    log.push(released(3));
    let mut b = backup(log).with_failover();
    let saw = run(&mut b, &SCRIPT, 7).unwrap();
    assert_eq!(saw[..4], primary_saw[..4]);
    // Live: its own values.
    assert_eq!(saw[4], Seen::Value(2007), "its own value once live");
    assert_eq!(saw[5], Seen::Value(3007));
    assert_eq!(b.peer_released(), 3, "the mark before the end was taken");
    assert_eq!(
        b.take_went_live(),
        Some(WentLive {
            at: At { epoch: 1, count: 7 },
            why: LiveReason::PeerGone
        })
    );
    assert!(b.live() && b.port().to_read.is_empty());
    // Gone before a boundary: the board's own lines from then on.
    let (mut log, _) = recorded();
    log.truncate(6);
    let mut b = backup(log).with_failover();
    let mut script = SCRIPT;
    script[6] = Step::Boundary(400, 0x4000_2000, &[30]);
    let saw = run(&mut b, &script, 0).unwrap();
    assert_eq!(saw[6], Seen::Lines([30].into()));
    assert_eq!(
        b.take_went_live().map(|w| (w.at, w.why)),
        Some((
            At {
                epoch: 1,
                count: 400
            },
            LiveReason::PeerGone
        ))
    );
    assert_eq!(b.entries(), 5);
}

#[test]
fn with_failover_a_primary_whose_backup_is_gone_continues_alone() {
    // (messages the port takes, the epoch in which the next one fails):
    // at a boundary, at an input, at a mark.
    for (limit, epoch) in [(2, 0), (3, 1)] {
        let mut p = Engine::new(
            Role::Primary,
            Tape {
                send_limit: Some(limit),
                ..Tape::default()
            },
        )
        .with_failover();
        let (_, primary_saw) = recorded();
        assert_eq!(run(&mut p, &SCRIPT, 0).unwrap(), primary_saw);
        assert_eq!(p.role(), Role::Solo);
        assert_eq!(p.take_backup_lost(), Some(epoch), "limit {limit}");
        assert_eq!(p.take_backup_lost(), None, "said once");
        assert_eq!(p.port().sent.len(), limit, "nothing logged after");
        assert_eq!(p.epoch(), 2);
    }
    let mut p = Engine::new(
        Role::Primary,
        Tape {
            send_limit: Some(0),
            ..Tape::default()
        },
    )
    .with_failover();
    assert_eq!(p.released(4), Ok(()));
    assert_eq!((p.role(), p.take_backup_lost()), (Role::Solo, Some(0)));
    assert_eq!(p.entries(), 0, "an entry not sent is not counted");
}

#[test]
fn any_message_that_is_not_a_log_ends_it() {
    let (mut log, _) = recorded();
    log.truncate(3);
    log.push(Message::StateChunk(replication_link::message::StateChunk {
        transfer: 0,
        offset: 0,
        total: 0,
        data: Vec::new(),
    }));
    let mut b = backup(log).with_failover();
    run(&mut b, &SCRIPT, 0).unwrap();
    assert_eq!(
        b.take_went_live().map(|w| w.why),
        Some(LiveReason::EndOfLog)
    );
}
