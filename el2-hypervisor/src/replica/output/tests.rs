//! The primary's hold and the backup's buffer, byte for byte.

use super::*;
use alloc::vec::Vec;

/// Collects what a release or a takeover emits.
fn sink(into: &mut Vec<u8>) -> impl FnMut(&[u8]) + '_ {
    |b| into.extend_from_slice(b)
}

#[test]
fn nothing_leaves_before_its_ack_and_everything_leaves_in_order() {
    let mut h: OutputHold<64, 8> = OutputHold::new();
    h.push(b"ab", 1, 0).unwrap();
    h.push(b"c", 1, 5).unwrap(); // same `sent`: the same segment
    h.push(b"de", 3, 10).unwrap();
    h.push(b"f", 4, 10).unwrap();
    let mut out = Vec::new();
    assert_eq!(h.release(0, 20, sink(&mut out)), 0, "nothing acked");
    assert!(out.is_empty());
    assert_eq!(h.release(2, 20, sink(&mut out)), 3);
    assert_eq!(out, b"abc");
    assert_eq!(h.release(3, 30, sink(&mut out)), 2);
    assert_eq!(h.release(3, 30, sink(&mut out)), 0, "f waits for 4");
    assert_eq!((h.held(), h.released_total()), (1, 5));
    assert_eq!(h.release(9, 40, sink(&mut out)), 1);
    assert_eq!(out, b"abcdef");
    assert_eq!((h.held(), h.released_total()), (0, 6));
}

#[test]
fn a_push_that_does_not_fit_stores_nothing() {
    let mut h: OutputHold<4, 2> = OutputHold::new();
    let mut out = Vec::new();
    h.push(b"abc", 0, 0).unwrap();
    assert_eq!(h.push(b"de", 0, 0), Err(HoldFull), "bytes");
    assert_eq!(h.held(), 3, "all or nothing");
    h.push(b"d", 1, 0).unwrap();
    assert_eq!(h.push(b"", 2, 0), Ok(()), "nothing to hold");
    h.release(0, 1, sink(&mut out));
    h.push(b"e", 1, 1).unwrap(); // merges into the segment of "d"
    h.push(b"f", 2, 1).unwrap();
    assert_eq!(h.push(b"g", 3, 1), Err(HoldFull), "segments");
    assert_eq!(h.push(b"gh", 2, 1), Err(HoldFull), "bytes, merging");
    assert_eq!(
        h.push(b"fghij", 9, 1),
        Err(HoldFull),
        "longer than the hold"
    );
    h.release(1, 2, sink(&mut out));
    h.push(b"g", 3, 2).unwrap();
    h.release_all(3, sink(&mut out));
    assert_eq!(out, b"abcdefg");
    let s = h.stats();
    assert_eq!((s.capacity, s.segment_capacity), (4, 2));
    assert_eq!((s.held, s.max_held, s.released), (0, 4, 7));
    // Two waits: "de" refused once, then "g", "gh", "fghij" refused in a
    // row (one wait, retried) until "g" went in.
    assert_eq!(s.full_waits, 2);
}

#[test]
fn the_ring_wraps_without_losing_order() {
    let mut h: OutputHold<5, 4> = OutputHold::new();
    let mut out = Vec::new();
    for (i, chunk) in [&b"abc"[..], b"de", b"fgh", b"ij", b"klm"]
        .iter()
        .enumerate()
    {
        h.push(chunk, i as u64, 0).unwrap();
        h.release(i as u64, 0, sink(&mut out));
    }
    assert_eq!(out, b"abcdefghijklm");
}

#[test]
fn percentiles_of_a_known_distribution() {
    // 100 one-byte segments held 1, 2, ... 100 µs.
    let mut h: OutputHold<128, 128> = OutputHold::new();
    for i in 0..100u64 {
        h.push(b"x", i, 1_000 - (i + 1)).unwrap();
    }
    h.release(100, 1_000, |_| {});
    let s = h.stats();
    // The true p50 is 50 µs, p99 99 µs: reported at most a quarter above.
    assert!((50..=62).contains(&s.p50_us), "p50 {}", s.p50_us);
    assert!((99..=100).contains(&s.p99_us), "p99 {}", s.p99_us);
    assert_eq!(s.max_us, 100);
    // Weighted per byte: one 100-byte segment outweighs 10 short ones.
    let mut h: OutputHold<256, 16> = OutputHold::new();
    for i in 0..10 {
        h.push(b"y", i, 0).unwrap();
    }
    h.release(9, 2, |_| {});
    h.push(&[0; 100], 10, 0).unwrap();
    h.release(10, 3_000, |_| {});
    let s = h.stats();
    assert_eq!(s.max_us, 3_000);
    assert!((3_000..=3_750).contains(&s.p50_us), "p50 {}", s.p50_us);
    assert_eq!(s.p99_us, s.p50_us);
}

#[test]
fn the_backup_keeps_only_what_the_primary_may_not_have_released() {
    let mut b: BackupOutput<16> = BackupOutput::new();
    b.push(b"hello ");
    b.mark(3);
    assert_eq!((b.kept(), b.position()), (3, 6));
    b.mark(2); // lower: ignored
    assert_eq!((b.kept(), b.released_mark()), (3, 3));
    b.push(b"world");
    let mut out = Vec::new();
    assert_eq!(b.take_unreleased(sink(&mut out)), 8);
    assert_eq!(out, b"lo world", "exactly the unreleased suffix");
    assert_eq!(b.kept(), 0);
    assert_eq!(b.lost(), 0);
}

#[test]
fn a_lagging_backup_keeps_nothing_until_it_catches_up() {
    let mut b: BackupOutput<8> = BackupOutput::new();
    b.mark(10); // the primary is 10 bytes out, the backup's guest at 0
    b.push(b"0123456");
    assert_eq!(b.kept(), 0);
    b.push(b"789ab");
    assert_eq!(b.kept(), 2);
    let mut out = Vec::new();
    b.take_unreleased(sink(&mut out));
    assert_eq!(out, b"ab");
    // A mark that arrives exactly at the position keeps nothing either.
    let mut b: BackupOutput<8> = BackupOutput::new();
    b.push(b"abc");
    b.mark(3);
    assert_eq!(b.take_unreleased(|_| panic!("nothing to emit")), 0);
}

#[test]
fn overflow_evicts_the_oldest_and_counts_it() {
    let mut b: BackupOutput<4> = BackupOutput::new();
    b.push(b"abc");
    b.push(b"de");
    assert_eq!((b.kept(), b.lost()), (4, 1));
    b.push(b"fghijk"); // longer than the buffer
    assert_eq!((b.kept(), b.lost(), b.max_kept()), (4, 7, 4));
    let mut out = Vec::new();
    b.take_unreleased(sink(&mut out));
    assert_eq!(out, b"hijk");
    assert_eq!(b.position(), 11);
}

#[test]
fn marks_and_pushes_across_the_ring_edge() {
    let mut b: BackupOutput<6> = BackupOutput::new(); // 3 behind + 3 at once
    for chunk in [&b"abc"[..], b"de", b"fg", b"hij", b"k"] {
        b.push(chunk);
        b.mark(b.position() - 3); // the primary is 3 bytes behind
    }
    let mut out = Vec::new();
    b.take_unreleased(sink(&mut out));
    assert_eq!(out, b"ijk");
    assert_eq!(b.lost(), 0);
}
