//! A simulated medium between two links, with a deterministic PRNG: drops,
//! corrupts, duplicates, reorders and delays frames (Ethernet) or chunks of
//! bytes (stream), and can be cut.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::vec::Vec;

use crate::mem::MemError;
use crate::transport::FrameDevice;

/// SplitMix64: small, deterministic, good enough for fault injection.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

/// Fault rates (per mille) and delays (microseconds).
#[derive(Copy, Clone, Debug, Default)]
pub struct Faults {
    pub drop: u32,
    pub corrupt: u32,
    pub duplicate: u32,
    /// Garbage bytes inserted before a chunk (stream only).
    pub garbage: u32,
    /// Part of a chunk lost (stream only).
    pub truncate: u32,
    pub max_delay_us: u64,
    /// Whether delays may reorder (frames); a stream keeps order.
    pub reorder: bool,
}

/// One direction of the medium.
pub struct Wire {
    faults: Faults,
    rng: Rng,
    /// (deliver at, arrival order, bytes)
    queue: Vec<(u64, u64, Vec<u8>)>,
    order: u64,
    last_at: u64,
    /// From this time on, everything sent is lost.
    pub cut_at: Option<u64>,
    pub sent: u64,
    pub delivered: u64,
}

impl Wire {
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self {
            faults,
            rng: Rng(seed),
            queue: Vec::new(),
            order: 0,
            last_at: 0,
            cut_at: None,
            sent: 0,
            delivered: 0,
        }
    }

    fn corrupt(&mut self, data: &mut [u8]) {
        if data.is_empty() {
            return;
        }
        // One to three bit flips: CRC-32C catches all of them.
        for _ in 0..=self.rng.below(3) {
            let bit = self.rng.below(data.len() as u64 * 8) as usize;
            data[bit / 8] ^= 1 << (bit % 8);
        }
    }

    fn enqueue(&mut self, now: u64, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let delay = if self.faults.max_delay_us == 0 {
            0
        } else {
            self.rng.below(self.faults.max_delay_us + 1)
        };
        let mut at = now + delay;
        if !self.faults.reorder {
            at = at.max(self.last_at);
            self.last_at = at;
        }
        self.order += 1;
        self.queue.push((at, self.order, data));
    }

    /// Puts a frame or chunk on the wire at `now`, with faults.
    pub fn send(&mut self, now: u64, data: &[u8], stream: bool) {
        self.sent += 1;
        if self.cut_at.is_some_and(|t| now >= t) || self.rng.chance(self.faults.drop) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut bytes = Vec::new();
            if stream && self.rng.chance(self.faults.garbage) {
                for _ in 0..=self.rng.below(8) {
                    bytes.push(self.rng.next_u64() as u8);
                }
            }
            bytes.extend_from_slice(data);
            if stream && self.rng.chance(self.faults.truncate) {
                let keep = self.rng.below(bytes.len() as u64) as usize;
                bytes.truncate(keep);
            }
            if self.rng.chance(self.faults.corrupt) {
                self.corrupt(&mut bytes);
            }
            self.enqueue(now, bytes);
        }
    }

    /// Index of the next deliverable item at `now`.
    fn ready(&self, now: u64) -> Option<usize> {
        self.queue
            .iter()
            .enumerate()
            .filter(|(_, (at, _, _))| *at <= now)
            .min_by_key(|(_, (at, order, _))| (*at, *order))
            .map(|(i, _)| i)
    }

    pub fn take(&mut self, now: u64) -> Option<Vec<u8>> {
        let i = self.ready(now)?;
        self.delivered += 1;
        Some(self.queue.remove(i).2)
    }

    /// Reads up to `buf.len()` bytes of the next deliverable chunk.
    pub fn read(&mut self, now: u64, buf: &mut [u8]) -> usize {
        let Some(i) = self.ready(now) else { return 0 };
        let chunk = &mut self.queue[i].2;
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.drain(..n);
        if chunk.is_empty() {
            self.queue.remove(i);
        }
        n
    }

    pub fn has_ready(&self, now: u64) -> bool {
        self.ready(now).is_some()
    }
}

/// One end of the medium: sends on `tx`, receives from `rx`.
pub struct SimEnd {
    pub tx: Rc<RefCell<Wire>>,
    pub rx: Rc<RefCell<Wire>>,
    pub now: Rc<Cell<u64>>,
}

/// Two ends sharing a clock.
pub fn pair(ab: Faults, ba: Faults, seed: u64) -> (SimEnd, SimEnd, Rc<Cell<u64>>) {
    let now = Rc::new(Cell::new(0));
    let w_ab = Rc::new(RefCell::new(Wire::new(ab, seed ^ 0xA5A5)));
    let w_ba = Rc::new(RefCell::new(Wire::new(ba, seed ^ 0x5A5A_0000)));
    let a = SimEnd {
        tx: w_ab.clone(),
        rx: w_ba.clone(),
        now: now.clone(),
    };
    let b = SimEnd {
        tx: w_ba,
        rx: w_ab,
        now: now.clone(),
    };
    (a, b, now)
}

impl FrameDevice for SimEnd {
    type Error = MemError;

    fn send_frame(&mut self, frame: &[u8]) -> Result<(), MemError> {
        self.tx.borrow_mut().send(self.now.get(), frame, false);
        Ok(())
    }

    fn recv_frame(&mut self, buf: &mut [u8]) -> Result<Option<usize>, MemError> {
        let Some(frame) = self.rx.borrow_mut().take(self.now.get()) else {
            return Ok(None);
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok(Some(n))
    }
}

impl embedded_io::ErrorType for SimEnd {
    type Error = MemError;
}

impl embedded_io::Read for SimEnd {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, MemError> {
        match self.rx.borrow_mut().read(self.now.get(), buf) {
            0 if !buf.is_empty() => Err(MemError::Empty),
            n => Ok(n),
        }
    }
}

impl embedded_io::ReadReady for SimEnd {
    fn read_ready(&mut self) -> Result<bool, MemError> {
        Ok(self.rx.borrow().has_ready(self.now.get()))
    }
}

impl embedded_io::Write for SimEnd {
    fn write(&mut self, buf: &[u8]) -> Result<usize, MemError> {
        self.tx.borrow_mut().send(self.now.get(), buf, true);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), MemError> {
        Ok(())
    }
}
