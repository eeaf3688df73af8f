//! The model guest: a seeded program of environment accesses, console
//! output and WFIs, whose state hash depends on every value it observes.

use super::rng::Rng;
use replication_link::message::InputKind;
use std::vec::Vec;

/// One step of the program, with its cost in guest instructions.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// An environment access (kind, source).
    Input(InputKind, u64),
    /// One byte to the console, computed from the state.
    Output,
    /// The guest idles: the epoch ends here.
    Wfi,
}

/// The program.
pub struct Program {
    pub ops: Vec<(Op, u64)>,
}

/// Sources for each kind of input (a counter register, MMIO registers, a
/// firmware call).
const COUNTER: u64 = 0xdf02;
const MMIO: [u64; 3] = [0x0900_0018, 0x0800_0000, 0x080a_0014];
const FIRMWARE: u64 = 0x8400_0000;

impl Program {
    pub fn generate(rng: &mut Rng, len: u64) -> Self {
        let ops = (0..len)
            .map(|_| {
                let op = match rng.range(0, 20) {
                    0..=6 => Op::Input(InputKind::CounterRead, COUNTER),
                    7..=11 => Op::Input(
                        InputKind::MmioRead,
                        MMIO[rng.range(0, MMIO.len() as u64) as usize],
                    ),
                    12 => Op::Input(InputKind::FirmwareResult, FIRMWARE),
                    13..=17 => Op::Output,
                    _ => Op::Wfi,
                };
                (op, rng.range(1, 120))
            })
            .collect();
        Self { ops }
    }

    pub fn inputs(&self) -> usize {
        self.ops
            .iter()
            .filter(|(op, _)| matches!(op, Op::Input(..)))
            .count()
    }
}

/// The guest's state: a hash of everything it observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guest {
    pub hash: u64,
    /// The last counter value it read.
    last_time: Option<u64>,
    /// A counter read that went backwards: (before, after).
    pub time_went_back: Option<(u64, u64)>,
}

impl Guest {
    pub fn observe(&mut self, kind: InputKind, value: u64) {
        self.hash = (self.hash ^ value ^ ((kind as u64) << 56))
            .rotate_left(13)
            .wrapping_mul(0x0000_0100_0000_01b3);
        if kind == InputKind::CounterRead {
            if let Some(last) = self.last_time
                && value < last
                && self.time_went_back.is_none()
            {
                self.time_went_back = Some((last, value));
            }
            self.last_time = Some(value);
        }
    }

    pub fn output(&self) -> u8 {
        (self.hash >> 24) as u8
    }
}
