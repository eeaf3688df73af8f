//! Message and packet decoders: never panic; what they accept re-encodes
//! to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replication_link::{MAX_MESSAGE, MAX_PACKET, Message, Packet};

fuzz_target!(|data: &[u8]| {
    if let Ok((msg, n)) = Message::decode(data) {
        let mut out = [0u8; MAX_MESSAGE];
        assert_eq!(msg.encode(&mut out), Ok(n));
        assert_eq!(&out[..n], &data[..n]);
    }
    if let Ok(p) = Packet::parse(data) {
        let msgs: Vec<Message> = p.messages().collect();
        assert_eq!(msgs.len(), usize::from(p.count()));
        let mut out = [0u8; MAX_PACKET];
        let n = Packet::encode(p.seq(), &msgs, &mut out).unwrap();
        assert_eq!(&out[..n], data);
    }
    // Past the CRC: the same bytes with a correct CRC, so that the fuzzer
    // reaches the message decoders inside packets.
    if data.len() >= 9 && data.len() <= MAX_PACKET {
        let mut sealed = data.to_vec();
        let at = sealed.len() - 4;
        let crc = replication_link::packet::crc32c(&sealed[..at]);
        sealed[at..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(p) = Packet::parse(&sealed) {
            let msgs: Vec<Message> = p.messages().collect();
            let mut out = [0u8; MAX_PACKET];
            let n = Packet::encode(p.seq(), &msgs, &mut out).unwrap();
            assert_eq!(&out[..n], &sealed[..]);
        }
    }
});
