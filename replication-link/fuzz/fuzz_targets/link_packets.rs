//! A link fed arbitrary packets (CRC fixed up so they reach the messages):
//! never panics, whatever it is sent. The input is split into packets at
//! 0xFF bytes.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use replication_link::packet::crc32c;
use replication_link::{
    Config, Hello, Link, MAX_PACKET, Message, Packet, PacketTransport, Received, Role,
    TransportError,
};

struct Feed(VecDeque<Vec<u8>>);

impl PacketTransport for Feed {
    type Error = ();
    fn send_packet(&mut self, p: &[u8]) -> Result<(), TransportError<()>> {
        assert!(Packet::parse(p).is_ok(), "the link sent a bad packet");
        Ok(())
    }
    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<()>> {
        Ok(match self.0.pop_front() {
            None => Received::Nothing,
            Some(p) => {
                buf[..p.len()].copy_from_slice(&p);
                Received::Packet(p.len())
            }
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let hello = |role| Hello::new(role, 1, [1; 32], [2; 32], [3; 32]);
    let mut link: Box<Link<8>> = Box::new(Link::new(hello(Role::Backup), Config::DEFAULT));
    let mut feed = Feed(VecDeque::new());
    let mut p = [0u8; 256];
    let n = Packet::encode(0, &[Message::Hello(hello(Role::Primary))], &mut p).unwrap();
    feed.0.push_back(p[..n].to_vec());
    for chunk in data.split(|&b| b == 0xFF).filter(|c| !c.is_empty()) {
        let mut packet = chunk.to_vec();
        packet.truncate(MAX_PACKET);
        if packet.len() >= 9 {
            let at = packet.len() - 4;
            let crc = crc32c(&packet[..at]);
            packet[at..].copy_from_slice(&crc.to_le_bytes());
        }
        feed.0.push_back(packet);
    }
    let mut now = 0;
    while !feed.0.is_empty() {
        while link.poll(now, &mut feed).unwrap().is_some() {}
        now += 1_000;
        let _ = link.send(Message::Takeover(replication_link::Takeover {
            epoch: now,
            count: 0,
        }));
    }
});
