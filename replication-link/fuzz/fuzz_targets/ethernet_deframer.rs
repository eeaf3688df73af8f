//! Ethernet deframer over arbitrary frames: never panics; what it accepts
//! re-frames to the same packet. Each input is tried as a whole frame and
//! behind a valid header, so that the fuzzer also reaches the length and
//! packet checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replication_link::framing::ethernet::{ETH_HEADER, EthernetFraming, MAX_FRAME};
use replication_link::packet::crc32c;
use replication_link::{ETHERTYPE, MAX_PACKET, Message, Packet};

const F: EthernetFraming = EthernetFraming {
    local: [2, 0, 0, 0, 0, 1],
    peer: [2, 0, 0, 0, 0, 2],
};

fn check(frame: &[u8]) {
    if let Ok(packet) = F.decode(frame) {
        if let Ok(p) = Packet::parse(packet) {
            let _: Vec<Message> = p.messages().collect();
        }
        let mut out = [0u8; MAX_FRAME];
        let n = F.encode(packet, &mut out).unwrap();
        let back = EthernetFraming {
            local: F.peer,
            peer: F.local,
        };
        assert_eq!(back.decode(&out[..n]).unwrap(), packet);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut frame = Vec::with_capacity(ETH_HEADER + data.len());
    frame.extend_from_slice(&F.local);
    frame.extend_from_slice(&F.peer);
    frame.extend_from_slice(&ETHERTYPE.to_be_bytes());
    frame.extend_from_slice(data);
    check(&frame);
    // And with a length that matches and a CRC that holds.
    let body = data.get(..data.len().min(MAX_PACKET)).unwrap_or(&[]);
    if body.len() >= 9 {
        let mut packet = body.to_vec();
        let at = packet.len() - 4;
        let crc = crc32c(&packet[..at]);
        packet[at..].copy_from_slice(&crc.to_le_bytes());
        frame.truncate(14);
        frame.extend_from_slice(&(packet.len() as u16).to_le_bytes());
        frame.extend_from_slice(&packet);
        check(&frame);
    }
});
