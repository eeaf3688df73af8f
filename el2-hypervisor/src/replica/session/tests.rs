//! The board's replica session over a fake board (`tests/fakes.rs`): the
//! output rule on the console, a lost backup, a takeover, the last flush,
//! status lines and a refused pairing, each with the peer's real `Link`.

mod fakes;

use super::*;
use crate::hw::Hw;
use crate::replica::pair_lines::{BackupLost, STATUS_EVERY_US};
use fakes::{FakeBoard, FakeCounter, Peer, TIMING};
use replication_link::message::{Role as LinkRole, Takeover as TakeoverMessage};
use std::cell::RefCell;
use std::format;
use std::rc::Rc;
use std::vec::Vec;

const PAIR: PairTiming = PairTiming {
    heartbeat_ms: 20,
    fail_ms: 2_000,
};

/// A session in `mode` over a fake board, paired with its peer.
fn paired(mode: Mode) -> (Epochs<FakeBoard>, FakeBoard, Rc<RefCell<Peer>>) {
    let board = FakeBoard::default();
    let role = match mode {
        Mode::Backup | Mode::Replay => LinkRole::Backup,
        _ => LinkRole::Primary,
    };
    let (port, peer) = fakes::link(role, 7, &board.0);
    let mut ep = Epochs::new(
        mode,
        FakeCounter::default(),
        board.clone(),
        Some(port),
        PAIR,
    );
    assert_eq!(ep.establish(), Ok(()));
    (ep, board, peer)
}

/// A counter read the guest makes (a primary logs it: one message).
fn read_counter(ep: &mut Epochs<FakeBoard>) -> Result<u64, Stop> {
    ep.input(InputKind::CounterRead, 0, 0x5f02, 1234)
}

/// Services the link `n` times, `step_us` of board time apart.
fn service(ep: &mut Epochs<FakeBoard>, board: &FakeBoard, n: usize, step_us: u64) {
    for _ in 0..n {
        assert_eq!(ep.service_link(), Ok(()));
        board.0.advance(step_us);
    }
}

/// Lets the peer's failure be detected: beyond the timeout, unheard.
fn let_peer_die(board: &FakeBoard, peer: &Rc<RefCell<Peer>>) {
    peer.borrow_mut().alive = false;
    board.0.advance(TIMING.timeouts.fail_after_us + 1_000);
}

#[test]
fn held_output_is_released_only_once_its_log_messages_are_acked() {
    let (mut ep, board, peer) = paired(Mode::Primary);
    // The backup does not answer for a while: the log entry goes out,
    // its acknowledgement does not come back.
    peer.borrow_mut().deaf_for = 1_000_000;
    assert_eq!(read_counter(&mut ep), Ok(1234));
    ep.guest_output(b"after the read").unwrap();
    service(&mut ep, &board, 50, 1_000);
    assert_eq!(
        board.0.guest(),
        b"",
        "released before its log entry was acked"
    );
    assert_eq!(ep.engine.port_ref().acked(), 0);

    // The backup answers: the entry is acked, the output leaves.
    peer.borrow_mut().deaf_for = 0;
    service(&mut ep, &board, 50, 1_000);
    assert_eq!(peer.borrow().delivered.len(), 1);
    assert_eq!(ep.engine.port_ref().acked(), 1);
    assert_eq!(board.0.guest(), b"after the read");
}

#[test]
fn a_lost_backup_releases_the_hold_and_output_goes_direct() {
    let (mut ep, board, peer) = paired(Mode::Primary);
    peer.borrow_mut().deaf_for = 1_000_000;
    read_counter(&mut ep).unwrap();
    ep.guest_output(b"held").unwrap();
    assert_eq!(board.0.guest(), b"");

    let_peer_die(&board, &peer);
    assert_eq!(ep.service_link(), Ok(()), "a pair's primary runs on alone");
    let lost = format!("{}", BackupLost { epoch: 0 });
    let lines = board.0.lines();
    assert!(
        lines.iter().any(|(_, l)| *l == lost),
        "no `{lost}` in {lines:?}"
    );
    assert!(
        board.0.position_of_line(&lost).unwrap() < board.0.position_of_guest().unwrap(),
        "the line comes before the output it lets out"
    );
    assert_eq!(board.0.guest(), b"held");

    // From now on output is not held: nothing acknowledges it any more.
    ep.guest_output(b", then direct").unwrap();
    assert_eq!(board.0.guest(), b"held, then direct");
    // The figures of the hold it had stay for the summary.
    assert_eq!(ep.summary().released, 4);
    assert_eq!(ep.summary().hold_capacity, HOLD_BYTES as u64);
}

#[test]
fn a_takeover_says_so_before_the_output_it_kept() {
    let (mut ep, board, peer) = paired(Mode::Backup);
    // The primary's log: one counter read, then it dies.
    peer.borrow_mut()
        .link
        .send(Message::LogEntry(replication_link::message::LogEntry {
            epoch: 0,
            count: 5,
            kind: InputKind::CounterRead,
            detail: 0,
            source: 0x5f02,
            value: 777,
        }))
        .unwrap();
    ep.counter.elapsed.set(5);
    assert_eq!(read_counter(&mut ep), Ok(777), "the logged value");
    ep.guest_output(b"kept").unwrap();
    assert_eq!(
        board.0.guest(),
        b"",
        "a backup emits nothing while the primary lives"
    );

    peer.borrow_mut().alive = false;
    ep.counter.elapsed.set(9);
    // The next input finds the log ended: the backup goes live there.
    assert!(read_counter(&mut ep).is_ok());
    let at = board
        .0
        .position_of_line("pair: takeover epoch=0 count=9 ")
        .unwrap_or_else(|| panic!("no takeover line in {:?}", board.0.lines()));
    assert!(at < board.0.position_of_guest().unwrap());
    assert_eq!(board.0.guest(), b"kept");
    let lines = board.0.lines();
    let line = lines
        .iter()
        .map(|(_, l)| l)
        .find(|l| l.starts_with("pair: takeover"))
        .unwrap();
    assert!(line.ends_with(" released=4"), "{line}");
    assert!(ep.engine.live());
    // Live now: output goes straight out.
    ep.guest_output(b"!").unwrap();
    assert_eq!(board.0.guest(), b"kept!");
}

#[test]
fn a_primary_flush_waits_for_every_ack_then_sends_the_last_released() {
    let (mut ep, board, peer) = paired(Mode::Primary);
    read_counter(&mut ep).unwrap();
    ep.guest_output(b"bye\n").unwrap();
    // The backup answers only after a while: flush must wait for it.
    peer.borrow_mut().deaf_for = 200;
    assert_eq!(ep.flush(), Ok(()));
    assert!(ep.engine.port_ref().link.as_ref().unwrap().link.all_acked());
    assert_eq!(board.0.guest(), b"bye\n");
    let delivered = peer.borrow().delivered.clone();
    assert!(
        matches!(delivered.last(), Some(Message::Released(r)) if r.output == 4),
        "the backup's last message: {delivered:?}"
    );
}

#[test]
fn status_lines_come_at_most_every_status_interval() {
    let (mut ep, board, _peer) = paired(Mode::Primary);
    // Boundaries every 3 ms of board time, for 0.3 s.
    for e in 0..100u64 {
        ep.counter.elapsed.set(1_000);
        ep.boundary(1_000, 0x4000_0000 + e, e, &[], 0).unwrap();
        board.0.advance(3_000);
    }
    let times: Vec<u64> = board
        .0
        .lines()
        .into_iter()
        .filter(|(_, l)| l.starts_with("pair: status "))
        .map(|(t, _)| t)
        .collect();
    // 0.3 s at one per 20 ms (rounded up to a boundary, 3 ms apart).
    assert!(times.len() >= 10, "{times:?}");
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= STATUS_EVERY_US, "{times:?}");
    }
    assert_eq!(
        ep.counter.starts.get(),
        100,
        "each boundary starts the next epoch"
    );
}

#[test]
fn a_refused_pairing_is_said_and_returned_as_a_bad_configuration() {
    let board = FakeBoard::default();
    let (port, _peer) = fakes::link(LinkRole::Primary, 8, &board.0);
    let mut ep = Epochs::new(
        Mode::Primary,
        FakeCounter::default(),
        board.clone(),
        Some(port),
        PAIR,
    );
    let before = board.0.now();
    assert_eq!(ep.establish(), Err(ExitStatus::BadConfiguration));
    let lines = board.0.lines();
    assert!(
        lines
            .iter()
            .any(|(_, l)| l.starts_with("hypervisor: link: pairing refused: ")),
        "{lines:?}"
    );
    // It lingered, answering the peer's Hellos, before giving up.
    assert!(board.0.now() - before >= REFUSED_LINGER_US);
}

#[test]
fn a_solo_board_has_no_link_to_wait_for_and_emits_directly() {
    let board = FakeBoard::default();
    let mut ep = Epochs::new(
        Mode::Free,
        FakeCounter::default(),
        board.clone(),
        None,
        PAIR,
    );
    assert_eq!(ep.establish(), Ok(()));
    assert_eq!(ep.idle_wake(), None);
    ep.guest_output(b"x").unwrap();
    assert_eq!(board.0.guest(), b"x");
    assert!(board.0.lines().is_empty());
    // With no link, a backup's log ends before it begins.
    let mut log = BoardLog::new(board, None);
    assert_eq!(
        log.next(),
        Ok(Message::Takeover(TakeoverMessage { epoch: 0, count: 0 }))
    );
}

#[test]
fn an_epoch_ends_at_the_next_deadline_and_an_inline_one_goes_on() {
    let (mut ep, _board, _peer) = paired(Mode::Primary);
    // The fake's counter runs at 1 MHz: a tick is 1,000 instructions; the
    // epoch's base is 0, its length 10,000,000 instructions (10,000
    // ticks). A deadline at tick 4,000 ends it at instruction 4,000,000.
    ep.counter.elapsed.set(100_000);
    ep.end_at_deadline(Some(4_000));
    assert_eq!(ep.counter.end(), 4_000_000);
    // A later deadline, one past the epoch's end, or one already reached
    // moves nothing.
    for later in [Some(7_000), Some(50_000), Some(50), None] {
        ep.end_at_deadline(later);
    }
    assert_eq!(ep.counter.end(), 4_000_000);
    // The counter runs out there: inline, the epoch goes on to its end.
    ep.counter.elapsed.set(4_000_000);
    assert!(ep.deadline_inside());
    assert_eq!(ep.counter.end(), 10_000_000);
    assert!(!ep.deadline_inside(), "a full epoch's end is a boundary");
    // With deadlines at epoch ends, that overflow is the boundary.
    ep.deadlines = Deadlines::EpochEnd;
    ep.end_at_deadline(Some(6_000));
    ep.counter.elapsed.set(6_000_000);
    assert!(!ep.deadline_inside());
    assert_eq!(ep.counter.end(), 6_000_000);
}

#[test]
fn with_acks_at_every_epoch_a_boundary_waits_for_the_whole_log() {
    for (ack, waits) in [(AckPolicy::Output, false), (AckPolicy::Epoch, true)] {
        let (mut ep, board, peer) = paired(Mode::Primary);
        ep.ack = ack;
        // The backup answers only after a while.
        peer.borrow_mut().deaf_for = 200;
        ep.counter.elapsed.set(1_000);
        ep.boundary(1_000, 0x4000_0000, 1, &[], 0).unwrap();
        let acked = ep.engine.port_ref().link.as_ref().unwrap().link.all_acked();
        assert_eq!(acked, waits, "{ack:?}");
        drop(board);
    }
}

#[test]
fn a_backup_acknowledges_what_it_takes_at_once() {
    let (mut ep, _board, peer) = paired(Mode::Backup);
    let entry = replication_link::message::LogEntry {
        epoch: 0,
        count: 5,
        kind: InputKind::FirmwareResult,
        detail: 0,
        source: 0x8400_0000,
        value: 7,
    };
    peer.borrow_mut()
        .link
        .send(Message::LogEntry(entry))
        .unwrap();
    ep.counter.elapsed.set(5);
    assert_eq!(
        ep.input(InputKind::FirmwareResult, 0, 0x8400_0000, 1),
        Ok(7)
    );
    // Nothing more from the backup: the primary already has the ack.
    peer.borrow_mut().run();
    assert!(peer.borrow().link.all_acked());
}

#[test]
fn held_output_goes_once_acknowledged_without_waiting_for_a_boundary() {
    let (mut ep, board, _peer) = paired(Mode::Primary);
    read_counter(&mut ep).unwrap();
    board.0.advance(ACK_CHECK_US);
    // Its log entry goes out now; the backup has not answered yet.
    ep.guest_output(b"a").unwrap();
    assert_eq!(
        board.0.guest(),
        b"",
        "its log entry is not acknowledged yet"
    );
    // The next output, a little later, finds the acknowledgement.
    board.0.advance(ACK_CHECK_US);
    ep.guest_output(b"b").unwrap();
    assert_eq!(board.0.guest(), b"ab");
    // An idle primary with output held wakes soon to look for it.
    read_counter(&mut ep).unwrap();
    ep.guest_output(b"c").unwrap();
    let soon = ep.idle_wake().unwrap();
    assert!(soon <= board.counter() + 1_000, "{soon}");
}

#[test]
fn a_recorder_that_stops_acknowledging_is_waited_for_in_pauses_then_gone() {
    let (mut ep, board, peer) = paired(Mode::Record);
    peer.borrow_mut().alive = false;
    let start = board.0.now();
    let mut logged = 0;
    let stopped = loop {
        match read_counter(&mut ep) {
            Ok(_) => logged += 1,
            Err(s) => break s,
        }
        assert!(logged < 100_000, "the send window never filled");
    };
    assert_eq!(stopped, Stop::PeerGone);
    let waited_us = board.0.now() - start;
    assert!(
        waited_us >= TIMING.timeouts.fail_after_us,
        "gone after {waited_us} us of board time"
    );
    // The full window was waited on in pauses of about a millisecond,
    // not by polling at instruction speed.
    let pauses = board.0.wfis.get();
    assert!(
        pauses * 1_000 >= (TIMING.timeouts.fail_after_us - 2 * fakes_spin_us()) / 2,
        "{pauses} pauses in {waited_us} us"
    );
}

fn fakes_spin_us() -> u64 {
    crate::replica::session::link_port::FULL_WINDOW_SPIN_US
}

#[test]
fn the_last_flush_to_a_silent_recorder_pauses_then_says_it_is_gone() {
    let (mut ep, board, peer) = paired(Mode::Record);
    assert_eq!(read_counter(&mut ep), Ok(1234));
    peer.borrow_mut().alive = false;
    let start = board.0.now();
    assert_eq!(ep.flush(), Err(Stop::PeerGone));
    assert!(board.0.now() - start >= TIMING.timeouts.fail_after_us);
    assert!(board.0.wfis.get() >= 500, "{} pauses", board.0.wfis.get());
}

#[test]
fn a_primary_that_waits_for_the_send_window_says_how_often_and_how_long() {
    let (mut ep, board, peer) = paired(Mode::Primary);
    // Fewer messages than the window holds: no wait.
    for _ in 0..20 {
        read_counter(&mut ep).unwrap();
    }
    assert_eq!(ep.summary().window_waits, 0);
    // A backup that answers late: more messages than the window holds
    // are sent while it does not run, so some sends wait for room.
    peer.borrow_mut().deaf_for = 2_000;
    for _ in 0..2 * replication_link::DEFAULT_WINDOW {
        read_counter(&mut ep).unwrap();
    }
    let s = ep.summary();
    assert!(s.window_waits > 0, "{s:?}");
    assert!(s.window_wait_us > 0, "{s:?}");
    assert!(board.0.now() > 0);
}
