//! Encode + decode throughput and bytes on the wire, for both framings.
//! `cargo bench -p replication-link` (plain harness, about 10 s).

use std::hint::black_box;
use std::time::{Duration, Instant};

use replication_link::framing::ethernet::MAX_FRAME;
use replication_link::framing::stream::{MAX_STREAM_FRAME, StreamDeframer, encode_frame};
use replication_link::mem::FramePipe;
use replication_link::packet::PACKET_OVERHEAD;
use replication_link::*;

const RUN: Duration = Duration::from_millis(700);

fn log_entry(i: u64) -> Message {
    Message::LogEntry(LogEntry {
        epoch: i >> 10,
        count: i * 37,
        kind: InputKind::CounterRead,
        detail: 0,
        source: 0x5F02,
        value: i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    })
}

fn epoch_end(i: u64) -> Message {
    Message::EpochEnd(EpochEnd {
        epoch: i,
        count: 1_000_000,
        pc: 0xFFFF_8000_0810_0000 + i * 4,
        fingerprint: i.wrapping_mul(0xD6E8_FEB8_6659_FD93),
        time: i << 10,
        interrupts: heapless::Vec::from_slice(&[27, 33]).unwrap(),
    })
}

/// Runs `f` (which handles `per_call` messages of `bytes` payload bytes)
/// for about [`RUN`]; prints messages/s and MB/s.
fn measure(name: &str, per_call: usize, bytes: usize, mut f: impl FnMut(u64)) {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < RUN {
        for _ in 0..64 {
            f(calls);
            calls += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let msgs = calls as f64 * per_call as f64 / secs;
    let mb = calls as f64 * bytes as f64 / secs / 1e6;
    println!("{name:<44} {:>8.2} M msg/s {:>9.1} MB/s", msgs / 1e6, mb);
}

fn overhead(name: &str, payload: usize, wire: usize, count: usize) {
    let pct = 100.0 * (wire - payload) as f64 / payload as f64;
    println!(
        "{name:<44} {:>7.1} B/msg on the wire ({} B payload), overhead {pct:>5.1} %",
        wire as f64 / count as f64,
        payload / count,
    );
}

/// A packet of as many copies of `make` as fit `limit` bytes.
fn batch(make: fn(u64) -> Message, limit: usize) -> (Vec<Message>, usize) {
    let mut msgs = Vec::new();
    let mut size = PACKET_OVERHEAD;
    loop {
        let m = make(msgs.len() as u64);
        if size + m.wire_size() > limit {
            break;
        }
        size += m.wire_size();
        msgs.push(m);
    }
    let payload = msgs.iter().map(Message::wire_size).sum();
    (msgs, payload)
}

fn stream_roundtrip(msgs: &[Message], packet: &mut [u8], frame: &mut [u8], seq: u32) -> usize {
    let n = Packet::encode(seq, msgs, packet).unwrap();
    let f = encode_frame(&packet[..n], frame).unwrap();
    let mut d = StreamDeframer::new();
    let (_, got) = d.feed(&frame[..f]);
    let p = Packet::parse(got.unwrap().unwrap()).unwrap();
    let mut k = 0;
    for m in p.messages() {
        black_box(m);
        k += 1;
    }
    assert_eq!(k, msgs.len());
    f
}

fn ethernet_roundtrip(msgs: &[Message], packet: &mut [u8], frame: &mut [u8], seq: u32) -> usize {
    let eth = EthernetFraming {
        local: [2, 0, 0, 0, 0, 1],
        peer: [2, 0, 0, 0, 0, 1],
    };
    let n = Packet::encode(seq, msgs, packet).unwrap();
    let f = eth.encode(&packet[..n], frame).unwrap();
    let p = Packet::parse(eth.decode(&frame[..f]).unwrap()).unwrap();
    let mut k = 0;
    for m in p.messages() {
        black_box(m);
        k += 1;
    }
    assert_eq!(k, msgs.len());
    f
}

fn main() {
    let mut buf = [0u8; MAX_MESSAGE];
    let mut packet = [0u8; MAX_PACKET];
    let mut frame = [0u8; MAX_STREAM_FRAME + MAX_FRAME];

    println!("-- messages alone (encode + decode)");
    for (name, make) in [
        ("LogEntry", log_entry as fn(u64) -> Message),
        ("EpochEnd (2 IRQs)", epoch_end),
    ] {
        let size = make(0).wire_size();
        measure(name, 1, size, |i| {
            let n = make(i).encode(&mut buf).unwrap();
            black_box(Message::decode_exact(black_box(&buf[..n])).unwrap());
        });
    }

    println!("-- stream framing (packet + CRC-32C + COBS + 0x00, encode + deframe + decode)");
    for (name, make) in [
        ("LogEntry", log_entry as fn(u64) -> Message),
        ("EpochEnd (2 IRQs)", epoch_end),
    ] {
        for limit in [0, 256, MAX_PACKET] {
            let (msgs, payload) = if limit == 0 {
                let m = make(1);
                (vec![m.clone()], m.wire_size())
            } else {
                batch(make, limit)
            };
            let wire = stream_roundtrip(&msgs, &mut packet, &mut frame, 0);
            let label = format!("{name}, {} per packet", msgs.len());
            measure(&label, msgs.len(), payload, |i| {
                stream_roundtrip(black_box(&msgs), &mut packet, &mut frame, i as u32);
            });
            overhead(&label, payload, wire, msgs.len());
        }
    }

    println!("-- Ethernet framing (packet + CRC-32C in one frame, encode + decode)");
    for (name, make) in [
        ("LogEntry", log_entry as fn(u64) -> Message),
        ("EpochEnd (2 IRQs)", epoch_end),
    ] {
        for limit in [0, MAX_PACKET] {
            let (msgs, payload) = if limit == 0 {
                let m = make(1);
                (vec![m.clone()], m.wire_size())
            } else {
                batch(make, limit)
            };
            let wire = ethernet_roundtrip(&msgs, &mut packet, &mut frame, 0);
            let label = format!("{name}, {} per frame", msgs.len());
            measure(&label, msgs.len(), payload, |i| {
                ethernet_roundtrip(black_box(&msgs), &mut packet, &mut frame, i as u32);
            });
            overhead(&label, payload, wire, msgs.len());
            // Preamble + SFD 8, FCS 4, inter-frame gap 12.
            overhead(
                "  same, counting FCS/preamble/gap",
                payload,
                wire + 24,
                msgs.len(),
            );
        }
    }

    println!("-- two links over an in-memory Ethernet pipe (handshake, acks, window 64)");
    let pipe: FramePipe<64> = FramePipe::new();
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
    let hello = |role| Hello::new(role, 1, [1; 32], [2; 32], [3; 32]);
    let mut p: Box<Link> = Box::new(Link::new(hello(Role::Primary), Config::DEFAULT));
    let mut q: Box<Link> = Box::new(Link::new(hello(Role::Backup), Config::DEFAULT));
    let (mut sent, mut got, mut now) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < RUN * 2 {
        while p.send(log_entry(sent)).is_ok() {
            sent += 1;
        }
        while p.poll(now, &mut ta).unwrap().is_some() {}
        while let Some(e) = q.poll(now, &mut tb).unwrap() {
            if let Event::Delivered(m) = e {
                assert_eq!(m, log_entry(got));
                got += 1;
            }
        }
        now += 10;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>8.2} M msg/s {:>9.1} MB/s ({} frames)",
        "LogEntry, Link to Link, in order, acked",
        got as f64 / secs / 1e6,
        got as f64 * LogEntry::WIRE_SIZE as f64 / secs / 1e6,
        p.stats().packets_sent
    );
}
