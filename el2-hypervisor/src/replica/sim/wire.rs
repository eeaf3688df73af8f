//! The medium between the two boards: packets, one queue per direction,
//! lost, corrupted, duplicated, delayed and (if allowed) reordered by the
//! seeded PRNG, and cut at a chosen time.

use super::rng::Rng;
use core::cell::RefCell;
use replication_link::transport::{PacketTransport, Received};
use replication_link::{MAX_PACKET, TransportError};
use std::rc::Rc;
use std::vec::Vec;

/// Fault rates (per mille) and the largest delay (microseconds).
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub drop: u64,
    pub corrupt: u64,
    pub duplicate: u64,
    pub max_delay_us: u64,
    /// Whether a delay may overtake an earlier packet.
    pub reorder: bool,
}

/// One direction.
struct Direction {
    /// (deliver at, sent order, bytes)
    queue: Vec<(u64, u64, Vec<u8>)>,
    order: u64,
    last_at: u64,
}

/// Both directions, the faults, the clock and the cut.
pub struct Medium {
    faults: Faults,
    rng: Rng,
    dirs: [Direction; 2],
    pub now_us: u64,
    /// From this time on, everything sent is lost.
    pub cut_at_us: Option<u64>,
}

impl Medium {
    pub fn new(faults: Faults, rng: Rng) -> Rc<RefCell<Self>> {
        let dir = || Direction {
            queue: Vec::new(),
            order: 0,
            last_at: 0,
        };
        Rc::new(RefCell::new(Self {
            faults,
            rng,
            dirs: [dir(), dir()],
            now_us: 0,
            cut_at_us: None,
        }))
    }

    fn send(&mut self, dir: usize, packet: &[u8]) {
        if self.cut_at_us.is_some_and(|t| self.now_us >= t) || self.rng.chance(self.faults.drop) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut bytes = packet.to_vec();
            if self.rng.chance(self.faults.corrupt) && !bytes.is_empty() {
                let i = self.rng.range(0, bytes.len() as u64) as usize;
                bytes[i] ^= 1 << self.rng.range(0, 8);
            }
            let delay = self.rng.range(0, self.faults.max_delay_us + 1);
            let d = &mut self.dirs[dir];
            let mut at = self.now_us + delay;
            if !self.faults.reorder {
                at = at.max(d.last_at);
            }
            d.last_at = d.last_at.max(at);
            d.order += 1;
            d.queue.push((at, d.order, bytes));
        }
    }

    fn recv(&mut self, dir: usize, buf: &mut [u8]) -> Received {
        let now = self.now_us;
        let d = &mut self.dirs[dir];
        let next = d
            .queue
            .iter()
            .enumerate()
            .filter(|(_, (at, _, _))| *at <= now)
            .min_by_key(|(_, (at, order, _))| (*at, *order))
            .map(|(i, _)| i);
        match next {
            Some(i) => {
                let (_, _, bytes) = d.queue.remove(i);
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Received::Packet(n)
            }
            None => Received::Nothing,
        }
    }
}

/// One board's end of the medium: it sends on `tx` and receives on `1 - tx`.
pub struct End {
    pub medium: Rc<RefCell<Medium>>,
    pub tx: usize,
}

impl PacketTransport for End {
    type Error = ();

    fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError<()>> {
        if packet.len() > MAX_PACKET {
            return Err(TransportError::TooLarge);
        }
        self.medium.borrow_mut().send(self.tx, packet);
        Ok(())
    }

    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<()>> {
        Ok(self.medium.borrow_mut().recv(1 - self.tx, buf))
    }
}
