//! Two links over a faulty simulated medium: every message arrives exactly
//! once and in order, or the peer is declared failed; never a wrong one.

use std::vec::Vec;

use proptest::prelude::*;

use super::sim::{Faults, SimEnd, pair};
use crate::*;

pub fn hello(role: Role, session: u64) -> Hello {
    Hello::new(role, session, [0x11; 32], [0x22; 32], [0x33; 32])
}

/// Small timeouts so that simulations are short; the failure timeout is
/// long against the fault rates (a false failure needs ~40 ms of loss).
pub const CONFIG: Config = Config {
    heartbeat_interval_us: 2_000,
    retransmit_after_us: 4_000,
    hello_interval_us: 5_000,
    timeouts: Timeouts {
        suspect_after_us: 15_000,
        fail_after_us: 60_000,
    },
    batch_limit: MAX_PACKET,
    ack_delay_us: 0,
    window_bytes: crate::DEFAULT_WINDOW_BYTES,
};

#[derive(Copy, Clone, Debug)]
pub enum Medium {
    Ethernet,
    Stream,
}

pub struct Outcome {
    pub delivered: Vec<Message>,
    pub backup_saw_failure: bool,
    pub primary_saw_failure: bool,
    pub all_acked: bool,
    pub primary_established: bool,
    pub backup_established: bool,
    pub end_us: u64,
    pub stats: (Stats, Stats),
}

#[allow(clippy::large_enum_variant, reason = "test helper")]
enum Transport {
    Eth(EthernetTransport<SimEnd>),
    Stream(StreamTransport<SimEnd>),
}

impl Transport {
    fn new(medium: Medium, end: SimEnd, local: u8, peer: u8) -> Self {
        match medium {
            Medium::Ethernet => Self::Eth(EthernetTransport::new(
                end,
                EthernetFraming {
                    local: [2, 0, 0, 0, 0, local],
                    peer: [2, 0, 0, 0, 0, peer],
                },
            )),
            Medium::Stream => Self::Stream(StreamTransport::new(end)),
        }
    }

    fn poll<const W: usize>(&mut self, link: &mut Link<W>, now: u64) -> Option<Event> {
        match self {
            Self::Eth(t) => link.poll(now, t).unwrap(),
            Self::Stream(t) => link.poll(now, t).unwrap(),
        }
    }
}

/// How the medium behaves in one run.
#[derive(Copy, Clone, Debug)]
pub struct Scenario {
    pub medium: Medium,
    /// Faults from primary to backup, and back.
    pub ab: Faults,
    pub ba: Faults,
    pub seed: u64,
    /// Both directions go dead at this time.
    pub cut_at: Option<u64>,
    pub limit_us: u64,
    pub batch_limit: usize,
}

/// Runs a primary sending `msgs` to a backup until everything is
/// delivered and acknowledged, a failure is declared, or `limit_us`.
pub fn run(msgs: &[Message], sc: Scenario) -> Outcome {
    let Scenario {
        medium,
        ab,
        ba,
        seed,
        cut_at,
        limit_us,
        batch_limit,
    } = sc;
    let config = Config {
        batch_limit,
        // Half the runs with delayed acks (the serial pair's setting,
        // scaled): delivery must not depend on it.
        ack_delay_us: if seed % 2 == 1 { 1_500 } else { 0 },
        ..CONFIG
    };
    let (a, b, clock) = pair(ab, ba, seed);
    if let Some(t) = cut_at {
        a.tx.borrow_mut().cut_at = Some(t);
        b.tx.borrow_mut().cut_at = Some(t);
    }
    let mut ta = Transport::new(medium, a, 1, 2);
    let mut tb = Transport::new(medium, b, 2, 1);
    let mut primary: Link<16> = Link::new(hello(Role::Primary, 7), config);
    let mut backup: Link<16> = Link::new(hello(Role::Backup, 9), config);
    let mut next = 0;
    let mut out = Outcome {
        delivered: Vec::new(),
        backup_saw_failure: false,
        primary_saw_failure: false,
        all_acked: false,
        primary_established: false,
        backup_established: false,
        end_us: 0,
        stats: Default::default(),
    };
    let mut now = 0;
    while now < limit_us {
        clock.set(now);
        while next < msgs.len() && primary.send(msgs[next].clone()).is_ok() {
            next += 1;
        }
        while let Some(ev) = ta.poll(&mut primary, now) {
            match ev {
                Event::Established(peer) => {
                    assert_eq!(peer.role, Role::Backup);
                    out.primary_established = true;
                }
                Event::PeerFailed => out.primary_saw_failure = true,
                other => panic!("primary got {other:?}"),
            }
        }
        while let Some(ev) = tb.poll(&mut backup, now) {
            match ev {
                Event::Established(peer) => {
                    assert_eq!(peer.role, Role::Primary);
                    out.backup_established = true;
                }
                Event::Delivered(m) => {
                    // Checked as it arrives: the first wrong message fails.
                    assert_eq!(
                        Some(&m),
                        msgs.get(out.delivered.len()),
                        "message {} delivered wrong",
                        out.delivered.len()
                    );
                    out.delivered.push(m);
                }
                Event::PeerFailed => out.backup_saw_failure = true,
                other => panic!("backup got {other:?}"),
            }
        }
        out.all_acked = next == msgs.len() && primary.all_acked();
        if (out.all_acked && out.delivered.len() == msgs.len())
            || (out.backup_saw_failure && out.primary_saw_failure)
        {
            break;
        }
        now += 250;
    }
    out.end_us = now;
    out.stats = (primary.stats(), backup.stats());
    out
}

fn sequenced_message() -> impl Strategy<Value = Message> {
    let log = (
        any::<u64>(),
        any::<u64>(),
        1u8..=6,
        any::<u8>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(epoch, count, kind, detail, source, value)| {
            let kind = match kind {
                1 => InputKind::CounterRead,
                2 => InputKind::TimerRegRead,
                3 => InputKind::MmioRead,
                4 => InputKind::FirmwareResult,
                5 => InputKind::SysRegRead,
                _ => InputKind::TimeAdvance,
            };
            Message::LogEntry(LogEntry {
                epoch,
                count,
                kind,
                detail,
                source,
                value,
            })
        });
    let end = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(any::<u32>(), 0..=MAX_INTERRUPTS),
    )
        .prop_map(|(epoch, count, pc, fingerprint, time, irqs)| {
            Message::EpochEnd(EpochEnd {
                epoch,
                count,
                pc,
                fingerprint,
                time,
                interrupts: heapless::Vec::from_slice(&irqs).unwrap(),
            })
        });
    let take = (any::<u64>(), any::<u64>())
        .prop_map(|(epoch, count)| Message::Takeover(Takeover { epoch, count }));
    let chunk = (
        any::<u32>(),
        0u64..1 << 40,
        proptest::collection::vec(any::<u8>(), 0..=STATE_CHUNK_MAX),
    )
        .prop_map(|(transfer, offset, data)| {
            Message::StateChunk(StateChunk {
                transfer,
                offset,
                total: offset + data.len() as u64 + 7,
                data: heapless::Vec::from_slice(&data).unwrap(),
            })
        });
    let released = any::<u64>().prop_map(|output| Message::Released(Released { output }));
    prop_oneof![6 => log, 2 => end, 1 => take, 1 => chunk, 1 => released]
}

fn faults(reorder: bool) -> impl Strategy<Value = Faults> {
    (
        0u32..=200,
        0u32..=100,
        0u32..=100,
        0u32..=100,
        0u32..=50,
        0u64..=3_000,
    )
        .prop_map(
            move |(drop, corrupt, duplicate, garbage, truncate, max_delay_us)| Faults {
                drop,
                corrupt,
                duplicate,
                garbage,
                truncate,
                max_delay_us,
                reorder,
            },
        )
}

/// One message per packet, a few, or full packets.
fn batch_limit() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), Just(200), Just(MAX_PACKET)]
}

fn check_complete(out: &Outcome, msgs: &[Message]) {
    assert!(
        !out.backup_saw_failure && !out.primary_saw_failure,
        "false failure at {} us, stats {:?}",
        out.end_us,
        out.stats
    );
    assert_eq!(out.delivered.len(), msgs.len(), "stats {:?}", out.stats);
    assert_eq!(out.delivered, msgs);
    assert!(out.all_acked);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn exactly_once_in_order_over_faulty_ethernet(
        msgs in proptest::collection::vec(sequenced_message(), 1..120),
        ab in faults(true),
        ba in faults(true),
        seed in any::<u64>(),
        batch in batch_limit(),
    ) {
        let sc = Scenario {
            medium: Medium::Ethernet,
            ab,
            ba,
            seed,
            cut_at: None,
            limit_us: 20_000_000,
            batch_limit: batch,
        };
        let out = run(&msgs, sc);
        check_complete(&out, &msgs);
    }

    #[test]
    fn exactly_once_in_order_over_faulty_stream(
        msgs in proptest::collection::vec(sequenced_message(), 1..120),
        ab in faults(false),
        ba in faults(false),
        seed in any::<u64>(),
        batch in batch_limit(),
    ) {
        let sc = Scenario {
            medium: Medium::Stream,
            ab,
            ba,
            seed,
            cut_at: None,
            limit_us: 20_000_000,
            batch_limit: batch,
        };
        let out = run(&msgs, sc);
        check_complete(&out, &msgs);
    }

    #[test]
    fn a_cut_link_gives_a_prefix_and_a_failure(
        msgs in proptest::collection::vec(sequenced_message(), 1..200),
        ab in faults(true),
        cut_at in 0u64..60_000,
        stream in any::<bool>(),
        seed in any::<u64>(),
        batch in batch_limit(),
    ) {
        let medium = if stream { Medium::Stream } else { Medium::Ethernet };
        let ab = Faults { reorder: !stream, ..ab };
        let sc = Scenario {
            medium,
            ab,
            ba: ab,
            seed,
            cut_at: Some(cut_at),
            limit_us: 5_000_000,
            batch_limit: batch,
        };
        let out = run(&msgs, sc);
        // Delivered is a prefix of what was sent (checked message by
        // message in `run`); whatever is missing, each side that had paired
        // knows the peer is gone, unless everything got through before the
        // cut. (Failure detection starts with the pairing: a board waits
        // for its peer to boot for as long as it takes.)
        prop_assert_eq!(&out.delivered[..], &msgs[..out.delivered.len()]);
        let complete = out.all_acked && out.delivered.len() == msgs.len();
        prop_assert!(complete || out.backup_saw_failure || !out.backup_established);
        prop_assert!(complete || out.primary_saw_failure || !out.primary_established);
        prop_assert!(out.delivered.is_empty() || out.backup_established);
    }
}

fn log_entries(n: u64) -> Vec<Message> {
    (0..n)
        .map(|i| {
            Message::LogEntry(LogEntry {
                epoch: i / 10,
                count: i,
                kind: InputKind::MmioRead,
                detail: 4,
                source: 0x0900_0000 + i,
                value: i * 3,
            })
        })
        .collect()
}

const HEAVY: Faults = Faults {
    drop: 200,
    corrupt: 100,
    duplicate: 100,
    garbage: 100,
    truncate: 50,
    max_delay_us: 3_000,
    reorder: true,
};

/// The fault paths are really exercised: rejects, duplicates, gaps and
/// retransmissions all happen, and the result is still exact.
#[test]
fn heavy_faults_exercise_every_recovery_path() {
    for (medium, reorder) in [(Medium::Ethernet, true), (Medium::Stream, false)] {
        let msgs = log_entries(2_000);
        let f = Faults { reorder, ..HEAVY };
        let out = run(
            &msgs,
            Scenario {
                medium,
                ab: f,
                ba: f,
                seed: 42,
                cut_at: None,
                limit_us: 60_000_000,
                batch_limit: 200,
            },
        );
        check_complete(&out, &msgs);
        let (p, b) = out.stats;
        println!("{medium:?}: {} us, primary {p:?}, backup {b:?}", out.end_us);
        assert!(b.rejected > 0 && p.rejected > 0);
        assert!(b.duplicates > 0 && b.gaps > 0);
        assert!(p.retransmissions > 0);
    }
}
