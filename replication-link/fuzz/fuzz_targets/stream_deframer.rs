//! Stream deframer (COBS + delimiter) over arbitrary bytes: never panics,
//! always makes progress, and every frame it accepts re-frames to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replication_link::MAX_PACKET;
use replication_link::framing::stream::{MAX_STREAM_FRAME, StreamDeframer, encode_frame};
use replication_link::{Message, Packet};

fuzz_target!(|data: &[u8]| {
    let mut d = StreamDeframer::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (used, got) = d.feed(rest);
        assert!(used >= 1 && used <= rest.len());
        rest = &rest[used..];
        if let Some(Ok(packet)) = got {
            let packet = packet.to_vec();
            if let Ok(p) = Packet::parse(&packet) {
                let _: Vec<Message> = p.messages().collect();
            }
            if packet.len() <= MAX_PACKET {
                let mut f = [0u8; MAX_STREAM_FRAME];
                let n = encode_frame(&packet, &mut f).unwrap();
                let mut again = StreamDeframer::new();
                let (u, r) = again.feed(&f[..n]);
                assert_eq!(u, n);
                assert_eq!(r.unwrap().unwrap(), &packet[..]);
            }
        }
    }
});
