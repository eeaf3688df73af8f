//! Bounded random-input test for every decoder, run by plain `cargo test`:
//! random buffers and mutations of valid encodings (with the CRC resealed
//! half of the time so that mutations reach the message decoders). No
//! decoder may panic, and whatever one accepts must re-encode consistently.

use std::vec::Vec;

use super::sim::Rng;
use crate::framing::{cobs, ethernet::MAX_FRAME, stream};
use crate::packet::{PACKET_OVERHEAD, crc32c};
use crate::transport::{PacketTransport, Received};
use crate::*;

const ITERATIONS: usize = 100_000;

fn sample_messages(rng: &mut Rng) -> Vec<Message> {
    let mut v = Vec::new();
    v.push(Message::Hello(super::links::hello(
        Role::Backup,
        rng.next_u64(),
    )));
    v.push(Message::LogEntry(LogEntry {
        epoch: rng.next_u64(),
        count: rng.next_u64(),
        kind: InputKind::FirmwareResult,
        detail: 1,
        source: 0x8400_0000,
        value: rng.next_u64(),
    }));
    let n = rng.below(17) as usize;
    v.push(Message::EpochEnd(EpochEnd {
        epoch: rng.next_u64(),
        count: rng.next_u64(),
        pc: rng.next_u64(),
        fingerprint: rng.next_u64(),
        time: rng.next_u64(),
        interrupts: (0..n).map(|i| i as u32 * 7).collect(),
    }));
    v.push(Message::Ack(Ack {
        up_to: rng.next_u64() as u32,
    }));
    v.push(Message::Heartbeat(Heartbeat {
        time_us: rng.next_u64(),
        epoch: 1,
    }));
    v.push(Message::Takeover(Takeover { epoch: 2, count: 3 }));
    v.push(Message::Released(Released {
        output: rng.next_u64(),
    }));
    let len = rng.below(64) as usize;
    v.push(Message::StateChunk(StateChunk {
        transfer: 1,
        offset: 0,
        total: 4096,
        data: (0..len).map(|i| i as u8).collect(),
    }));
    v
}

/// A valid encoding of some layer, chosen at random.
fn valid_buffer(rng: &mut Rng) -> Vec<u8> {
    let msgs = sample_messages(rng);
    let pick = rng.below(msgs.len() as u64) as usize;
    let mut buf = vec![0u8; MAX_FRAME + 64];
    match rng.below(4) {
        0 => {
            let n = msgs[pick].encode(&mut buf).unwrap();
            buf.truncate(n);
        }
        1 | 2 => {
            let k = 1 + rng.below(msgs.len() as u64) as usize;
            let n = Packet::encode(rng.next_u64() as u32, &msgs[..k], &mut buf).unwrap();
            buf.truncate(n);
            if rng.below(2) == 0 {
                let mut f = vec![0u8; stream::MAX_STREAM_FRAME];
                let m = stream::encode_frame(&buf, &mut f).unwrap();
                f.truncate(m);
                buf = f;
            }
        }
        _ => {
            let mut p = vec![0u8; MAX_PACKET];
            let n = Packet::encode(9, &msgs[pick..=pick], &mut p).unwrap();
            let m = framing().encode(&p[..n], &mut buf).unwrap();
            buf.truncate(m);
        }
    }
    buf
}

fn framing() -> EthernetFraming {
    EthernetFraming {
        local: [2, 0, 0, 0, 0, 1],
        peer: [2, 0, 0, 0, 0, 1],
    }
}

fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !buf.is_empty() => {
                let i = rng.below(buf.len() as u64) as usize;
                buf[i] ^= 1 << rng.below(8);
            }
            1 if !buf.is_empty() => {
                let i = rng.below(buf.len() as u64) as usize;
                buf[i] = [0, 0xFF, 1, 0x7F, 16, 17][rng.below(6) as usize];
            }
            2 => {
                let keep = rng.below(buf.len() as u64 + 1) as usize;
                buf.truncate(keep);
            }
            3 => {
                for _ in 0..rng.below(16) {
                    buf.push(rng.next_u64() as u8);
                }
            }
            4 if buf.len() > 2 => {
                let i = rng.below(buf.len() as u64 - 1) as usize;
                buf.insert(i, rng.next_u64() as u8);
            }
            _ => {}
        }
    }
}

/// Recomputes the trailing CRC-32C, as if the packet had been made so.
fn reseal(buf: &mut [u8]) {
    if buf.len() >= PACKET_OVERHEAD {
        let at = buf.len() - 4;
        let crc = crc32c(&buf[..at]);
        buf[at..].copy_from_slice(&crc.to_le_bytes());
    }
}

fn check_message(buf: &[u8]) {
    if let Ok((m, n)) = Message::decode(buf) {
        assert!(n <= buf.len());
        assert_eq!(m.wire_size(), n);
        let mut out = vec![0u8; n];
        assert_eq!(m.encode(&mut out), Ok(n));
        assert_eq!(out, &buf[..n]);
    }
}

fn check_packet(buf: &[u8]) {
    if let Ok(p) = Packet::parse(buf) {
        let msgs: Vec<Message> = p.messages().collect();
        assert_eq!(msgs.len(), usize::from(p.count()));
        let mut out = vec![0u8; MAX_PACKET];
        let n = Packet::encode(p.seq(), &msgs, &mut out).unwrap();
        assert_eq!(&out[..n], buf);
    }
}

fn check_stream(buf: &[u8]) {
    let mut d = stream::StreamDeframer::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let (used, got) = d.feed(rest);
        assert!(used >= 1 && used <= rest.len());
        rest = &rest[used..];
        if let Some(Ok(packet)) = got {
            let packet = packet.to_vec();
            check_packet(&packet);
            if packet.len() <= MAX_PACKET {
                let mut f = vec![0u8; stream::MAX_STREAM_FRAME];
                let n = stream::encode_frame(&packet, &mut f).unwrap();
                let mut d2 = stream::StreamDeframer::new();
                let (u, again) = d2.feed(&f[..n]);
                assert_eq!(u, n);
                assert_eq!(again.unwrap().unwrap(), &packet[..]);
            }
        }
    }
}

fn check_ethernet(buf: &[u8]) {
    let f = framing();
    if let Ok(packet) = f.decode(buf) {
        check_packet(packet);
        let mut out = vec![0u8; MAX_FRAME];
        let n = f.encode(packet, &mut out).unwrap();
        assert_eq!(f.decode(&out[..n]).unwrap(), packet);
        assert_eq!(&out[16..16 + packet.len()], &buf[16..16 + packet.len()]);
    }
}

fn check_cobs(buf: &[u8]) {
    let mut copy = buf.to_vec();
    if let Ok(n) = cobs::decode_in_place(&mut copy) {
        let decoded = &copy[..n];
        let mut enc = vec![0u8; cobs::max_encoded_len(n)];
        let m = cobs::encode(decoded, &mut enc).unwrap();
        let mut again = enc[..m].to_vec();
        let k = cobs::decode_in_place(&mut again).unwrap();
        assert_eq!(&again[..k], decoded);
    }
}

#[test]
fn every_decoder_survives_random_and_mutated_input() {
    let mut rng = Rng(0x7A4D_E11A);
    let mut accepted = [0usize; 3];
    for i in 0..ITERATIONS {
        let mut buf = if i % 4 == 0 {
            let len = if rng.below(16) == 0 {
                rng.below(1600)
            } else {
                rng.below(64)
            };
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            let mut b = valid_buffer(&mut rng);
            mutate(&mut rng, &mut b);
            b
        };
        if rng.below(2) == 0 {
            reseal(&mut buf);
        }
        check_message(&buf);
        check_packet(&buf);
        check_stream(&buf);
        check_ethernet(&buf);
        check_cobs(&buf);
        accepted[0] += usize::from(Message::decode(&buf).is_ok());
        accepted[1] += usize::from(Packet::parse(&buf).is_ok());
        accepted[2] += usize::from(framing().decode(&buf).is_ok());
    }
    println!("accepted (message, packet, ethernet): {accepted:?} of {ITERATIONS}");
    // The mutations must reach past the first checks often enough to matter.
    assert!(
        accepted.iter().all(|&n| n > ITERATIONS / 50),
        "{accepted:?}"
    );
}

/// A transport that hands the link whatever packets the test queued.
struct Feed(std::collections::VecDeque<Vec<u8>>);

impl PacketTransport for Feed {
    type Error = ();

    fn send_packet(&mut self, _: &[u8]) -> Result<(), TransportError<()>> {
        Ok(())
    }

    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<()>> {
        Ok(match self.0.pop_front() {
            None => Received::Nothing,
            Some(p) => {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                Received::Packet(n)
            }
        })
    }
}

#[test]
fn a_link_survives_resealed_garbage() {
    let mut rng = Rng(99);
    let new_link = |feed: &mut Feed| {
        let mut link: Link<4> =
            Link::new(super::links::hello(Role::Backup, 1), super::links::CONFIG);
        let mut p = vec![0u8; MAX_PACKET];
        let hello = Message::Hello(super::links::hello(Role::Primary, 5));
        let n = Packet::encode(0, &[hello], &mut p).unwrap();
        feed.0.push_front(p[..n].to_vec());
        assert!(matches!(
            link.poll(0, feed),
            Ok(Some(Event::Established(_)))
        ));
        link
    };
    let mut feed = Feed(Default::default());
    let mut link = new_link(&mut feed);
    let (mut delivered, mut relinks) = (0, 0);
    for i in 0..20_000u64 {
        let mut b = if i % 4 == 0 {
            // In sequence, so that some of it is delivered.
            let msgs = sample_messages(&mut rng);
            let mut p = vec![0u8; MAX_PACKET];
            let n = Packet::encode(link.next_expected().0, &msgs[1..], &mut p).unwrap();
            p.truncate(n);
            p
        } else {
            valid_buffer(&mut rng)
        };
        mutate(&mut rng, &mut b);
        reseal(&mut b);
        b.truncate(MAX_PACKET);
        feed.0.push_back(b);
        while let Some(e) = link.poll(i, &mut feed).unwrap() {
            delivered += usize::from(matches!(e, Event::Delivered(_)));
        }
        if !link.is_established() {
            // A random Hello from "another session" ends the link, as it
            // should; start again.
            relinks += 1;
            link = new_link(&mut feed);
        }
    }
    println!(
        "delivered {delivered}, relinks {relinks}, stats {:?}",
        link.stats()
    );
    assert!(delivered > 0);
}
