//! Link scenarios over the in-memory pipes: handshake outcomes, restarts,
//! heartbeats and failure timing, send errors, the output rule.

use crate::mem::{BytePipe, FramePipe};
use crate::transport::PacketTransport;
use crate::*;

use super::links::{CONFIG, hello};

type Events = std::vec::Vec<Event>;

/// Polls both links at `now` until both are quiet; returns their events.
fn step<A: PacketTransport, B: PacketTransport, const W: usize>(
    now: u64,
    (p, tp): (&mut Link<W>, &mut A),
    (b, tb): (&mut Link<W>, &mut B),
) -> (Events, Events) {
    let (mut ep, mut eb) = (Events::new(), Events::new());
    for _ in 0..4 {
        while let Some(e) = p.poll(now, tp).unwrap() {
            ep.push(e);
        }
        while let Some(e) = b.poll(now, tb).unwrap() {
            eb.push(e);
        }
    }
    (ep, eb)
}

fn refused_both_ways(ours: Hello, theirs: Hello, want_ours: Refusal, want_theirs: Refusal) {
    let pipe: BytePipe<4096> = BytePipe::new();
    let (a, b) = pipe.ends();
    let (mut ta, mut tb) = (StreamTransport::new(a), StreamTransport::new(b));
    let mut p: Link<4> = Link::new(ours, CONFIG);
    let mut q: Link<4> = Link::new(theirs, CONFIG);
    let (mut ep, mut eq) = (Events::new(), Events::new());
    for now in (0..50_000).step_by(1000) {
        let (a, b) = step(now, (&mut p, &mut ta), (&mut q, &mut tb));
        ep.extend(a);
        eq.extend(b);
    }
    assert_eq!(ep, [Event::Refused(want_ours)]);
    assert_eq!(eq, [Event::Refused(want_theirs)]);
    assert_eq!(p.state(), LinkState::Refused(want_ours));
    let entry = Message::Takeover(Takeover { epoch: 0, count: 0 });
    assert_eq!(p.send(entry), Err(SendError::Closed));
}

#[test]
fn mismatched_boards_are_refused_on_both_consoles() {
    let p = hello(Role::Primary, 1);
    let mut b = hello(Role::Backup, 2);
    b.guest_image[3] = 0;
    refused_both_ways(p.clone(), b, Refusal::GuestImage, Refusal::GuestImage);
    let mut b = hello(Role::Backup, 2);
    b.build[0] = 0;
    refused_both_ways(p.clone(), b, Refusal::Build, Refusal::Build);
    let mut b = hello(Role::Backup, 2);
    b.config[31] = 0;
    let (ours, theirs) = (p.config, b.config);
    refused_both_ways(
        p.clone(),
        b,
        Refusal::Configuration { ours, theirs },
        Refusal::Configuration {
            ours: theirs,
            theirs: ours,
        },
    );
    let mut b = hello(Role::Backup, 2);
    b.version = PROTOCOL_VERSION - 1; // a peer whose epoch ends carry no time
    refused_both_ways(
        p.clone(),
        b,
        Refusal::ProtocolVersion {
            ours: PROTOCOL_VERSION,
            theirs: PROTOCOL_VERSION - 1,
        },
        Refusal::ProtocolVersion {
            ours: PROTOCOL_VERSION - 1,
            theirs: PROTOCOL_VERSION,
        },
    );
    refused_both_ways(
        p,
        hello(Role::Primary, 2),
        Refusal::Roles {
            ours: Role::Primary,
            theirs: Role::Primary,
        },
        Refusal::Roles {
            ours: Role::Primary,
            theirs: Role::Primary,
        },
    );
}

#[test]
fn ethernet_pipe_delivers_and_the_output_rule_waits_for_the_ack() {
    let pipe: FramePipe<8> = FramePipe::new();
    let (a, b) = pipe.ends();
    let fa = EthernetFraming {
        local: [2, 0, 0, 0, 0, 1],
        peer: [2, 0, 0, 0, 0, 2],
    };
    let fb = EthernetFraming {
        local: fa.peer,
        peer: fa.local,
    };
    let (mut ta, mut tb) = (EthernetTransport::new(a, fa), EthernetTransport::new(b, fb));
    let mut p: Link<8> = Link::new(hello(Role::Primary, 1), CONFIG);
    let mut b: Link<8> = Link::new(hello(Role::Backup, 2), CONFIG);
    let (ep, eb) = step(0, (&mut p, &mut ta), (&mut b, &mut tb));
    assert!(matches!(ep[..], [Event::Established(ref h)] if h.role == Role::Backup));
    assert!(matches!(eb[..], [Event::Established(ref h)] if h.role == Role::Primary));

    let e = Message::EpochEnd(EpochEnd {
        epoch: 3,
        count: 10,
        pc: 0x8000,
        fingerprint: 77,
        time: 88,
        interrupts: heapless::Vec::from_slice(&[30]).unwrap(),
    });
    let seq = p.send(e.clone()).unwrap();
    assert_eq!(seq, Seq(0));
    assert!(!p.is_acked(seq));
    // The primary transmits; the backup has not polled yet: not acked.
    assert_eq!(p.poll(100, &mut ta).unwrap(), None);
    assert!(!p.is_acked(seq));
    assert_eq!(b.poll(100, &mut tb).unwrap(), Some(Event::Delivered(e)));
    assert_eq!(b.poll(100, &mut tb).unwrap(), None); // sends the ack
    assert_eq!(p.poll(200, &mut ta).unwrap(), None);
    assert!(p.is_acked(seq));
    assert!(p.all_acked());
    assert_eq!(b.next_expected(), Seq(1));
}

#[test]
fn send_refuses_control_messages_and_a_full_window() {
    let mut p: Link<2> = Link::new(hello(Role::Primary, 1), CONFIG);
    assert_eq!(
        p.send(Message::Ack(Ack { up_to: 0 })),
        Err(SendError::ControlMessage)
    );
    assert_eq!(
        p.send(Message::Hello(hello(Role::Primary, 1))),
        Err(SendError::ControlMessage)
    );
    let t = Message::Takeover(Takeover { epoch: 1, count: 1 });
    assert_eq!(p.send(t.clone()), Ok(Seq(0)));
    assert_eq!(p.send(t.clone()), Ok(Seq(1)));
    assert_eq!(p.send(t), Err(SendError::WindowFull));
    assert_eq!(p.window_free(), 0);
}

#[test]
fn a_full_window_in_bytes_refuses_too() {
    let t = Message::Takeover(Takeover { epoch: 1, count: 1 });
    let config = Config {
        window_bytes: 2 * t.wire_size(),
        ..CONFIG
    };
    let mut p: Link<8> = Link::new(hello(Role::Primary, 1), config);
    assert_eq!(p.send(t.clone()), Ok(Seq(0)));
    assert_eq!(p.send(t.clone()), Ok(Seq(1)));
    assert_eq!(p.window_bytes(), 2 * t.wire_size());
    // Six message slots free, but no bytes.
    assert_eq!(p.send(t), Err(SendError::WindowFull));
    assert_eq!(p.window_free(), 6);
}

#[test]
fn heartbeats_keep_an_idle_link_alive_and_silence_fails_it() {
    let pipe: BytePipe<4096> = BytePipe::new();
    let (a, b) = pipe.ends();
    let (mut ta, mut tb) = (StreamTransport::new(a), StreamTransport::new(b));
    let mut p: Link<4> = Link::new(hello(Role::Primary, 1), CONFIG);
    let mut b: Link<4> = Link::new(hello(Role::Backup, 2), CONFIG);
    let mut now = 0;
    // Ten idle seconds: nobody fails.
    while now < 10_000_000 {
        let (ep, eb) = step(now, (&mut p, &mut ta), (&mut b, &mut tb));
        assert!(
            ep.iter()
                .chain(&eb)
                .all(|e| matches!(e, Event::Established(_)))
        );
        now += 1_000;
    }
    assert!(p.stats().packets_sent > 1_000, "{:?}", p.stats());
    assert_eq!(b.liveness(now), Liveness::Alive);
    // The primary stops; the backup suspects, then declares it failed.
    let last = now - 1_000;
    let mut failed_at = None;
    while failed_at.is_none() && now < 20_000_000 {
        if let Some(e) = b.poll(now, &mut tb).unwrap() {
            assert_eq!(e, Event::PeerFailed);
            failed_at = Some(now);
        }
        if now - last == CONFIG.timeouts.suspect_after_us + 1_000 {
            // Quiet for longer than `suspect_after_us`, not yet failed.
            assert_eq!(b.liveness(now), Liveness::Suspected);
        }
        now += 1_000;
    }
    let silence = failed_at.unwrap() - last;
    let fail = CONFIG.timeouts.fail_after_us;
    // The last heartbeat came at most one interval before `last`.
    let earliest = fail - CONFIG.heartbeat_interval_us;
    assert!(
        (earliest..=fail + 1_000).contains(&silence),
        "failed after {silence} us"
    );
    assert_eq!(b.state(), LinkState::PeerFailed);
    assert_eq!(b.liveness(now), Liveness::Failed);
    // Final: the primary coming back does not revive it.
    let _ = step(now, (&mut p, &mut ta), (&mut b, &mut tb));
    assert_eq!(b.poll(now + 1, &mut tb).unwrap(), None);
    assert_eq!(b.state(), LinkState::PeerFailed);
}

#[test]
fn a_rebooted_peer_is_reported_and_an_old_hello_is_not() {
    let pipe: BytePipe<4096> = BytePipe::new();
    let (a, b) = pipe.ends();
    let (mut ta, mut tb) = (StreamTransport::new(a), StreamTransport::new(b));
    let mut p: Link<4> = Link::new(hello(Role::Primary, 1), CONFIG);
    let mut b: Link<4> = Link::new(hello(Role::Backup, 2), CONFIG);
    let _ = step(0, (&mut p, &mut ta), (&mut b, &mut tb));
    assert!(p.is_established() && b.is_established());

    // A late duplicate of the backup's first Hello (same session).
    let mut buf = [0u8; 256];
    let n = Packet::encode(0, &[Message::Hello(hello(Role::Backup, 2))], &mut buf).unwrap();
    tb.send_packet(&buf[..n]).unwrap();
    let (ep, _) = step(1_000, (&mut p, &mut ta), (&mut b, &mut tb));
    assert!(ep.is_empty());
    assert!(p.is_established());

    // The backup reboots: a new link with a new session on the same wire.
    let mut b2: Link<4> = Link::new(hello(Role::Backup, 3), CONFIG);
    let (ep, eb) = step(2_000, (&mut p, &mut ta), (&mut b2, &mut tb));
    assert_eq!(ep, [Event::PeerRestarted(hello(Role::Backup, 3))]);
    assert!(eb.is_empty());
    assert_eq!(p.state(), LinkState::PeerRestarted);
    // The primary builds a new link and pairs again.
    let mut p2: Link<4> = Link::new(hello(Role::Primary, 1), CONFIG);
    let (ep, eb) = step(3_000, (&mut p2, &mut ta), (&mut b2, &mut tb));
    assert!(matches!(ep[..], [Event::Established(_)]));
    assert!(matches!(eb[..], [Event::Established(_)]));
}

#[test]
fn messages_queued_before_the_handshake_wait_for_it() {
    let pipe: BytePipe<8192> = BytePipe::new();
    let (a, b) = pipe.ends();
    let (mut ta, mut tb) = (StreamTransport::new(a), StreamTransport::new(b));
    let mut p: Link<4> = Link::new(hello(Role::Primary, 1), CONFIG);
    let mut b: Link<4> = Link::new(hello(Role::Backup, 2), CONFIG);
    let t = Message::Takeover(Takeover { epoch: 5, count: 6 });
    p.send(t.clone()).unwrap();
    // Only the primary runs for a while: nothing but Hellos go out.
    for now in (0..20_000).step_by(1_000) {
        assert_eq!(p.poll(now, &mut ta).unwrap(), None);
    }
    let (_, eb) = step(20_000, (&mut p, &mut ta), (&mut b, &mut tb));
    let (_, eb2) = step(21_000, (&mut p, &mut ta), (&mut b, &mut tb));
    let delivered: Events = eb
        .into_iter()
        .chain(eb2)
        .filter(|e| matches!(e, Event::Delivered(_)))
        .collect();
    assert_eq!(delivered, [Event::Delivered(t)]);
}

#[test]
fn delayed_acks_are_fewer_and_still_complete() {
    // A sender streams 40 messages, one poll each 1 ms; the receiver acks
    // at once, or at most every 10 ms. Both deliver everything and end
    // with everything acknowledged; the delayed one sends far fewer
    // packets of its own.
    let run = |ack_delay_us: u64| {
        let pipe: BytePipe<65536> = BytePipe::new();
        let (a, b) = pipe.ends();
        let (mut ta, mut tb) = (StreamTransport::new(a), StreamTransport::new(b));
        // Heartbeats rare, so that the receiver's packets are its acks.
        let config = Config {
            ack_delay_us,
            heartbeat_interval_us: 100_000,
            timeouts: Timeouts {
                suspect_after_us: 500_000,
                fail_after_us: 1_000_000,
            },
            ..super::links::CONFIG
        };
        let mut p: Link<64> = Link::new(hello(Role::Primary, 1), config);
        let mut q: Link<64> = Link::new(hello(Role::Backup, 2), config);
        let mut got = 0;
        let mut queued = 0;
        for now in (0..200_000).step_by(1_000) {
            if p.is_established() && queued < 40 {
                let m = Message::Takeover(Takeover {
                    epoch: queued,
                    count: 0,
                });
                p.send(m).unwrap();
                queued += 1;
            }
            let (_, eq) = step(now, (&mut p, &mut ta), (&mut q, &mut tb));
            got += eq
                .iter()
                .filter(|e| matches!(e, Event::Delivered(_)))
                .count();
        }
        assert_eq!(got, 40);
        assert!(p.all_acked());
        q.stats().packets_sent
    };
    let prompt = run(0);
    let delayed = run(10_000);
    assert!(
        delayed * 3 < prompt,
        "delayed acks: {delayed} packets, prompt: {prompt}"
    );
}
