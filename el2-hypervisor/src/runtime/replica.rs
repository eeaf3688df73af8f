//! The board's side of record and replay (docs/record-replay.md): epochs
//! on the PMU, every environment input logged (record) or taken from the
//! log and checked (replay), boundaries with fingerprints.

use super::link_port::LinkPort;
use crate::arch::console::println;
use crate::arch::pmu::EpochCounter;
use crate::arch::power;
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::options::Mode;
use el2_hypervisor::replica::digest::PairingConfig;
use el2_hypervisor::replica::fingerprint::Fingerprint;
use el2_hypervisor::replica::replay::{self, Divergence, Expect};
use replication_link::handshake::Refusal;
use replication_link::link::Event;
use replication_link::message::{EpochEnd, InputKind, LogEntry, MAX_INTERRUPTS, Message, Takeover};

/// Epochs and the log.
pub struct Epochs {
    pub mode: Mode,
    pub counter: EpochCounter,
    pub epoch: u64,
    link: Option<LinkPort>,
    /// Replay: messages received and not yet consumed.
    queue: heapless::Deque<Message, 32>,
    /// Replay: the log ended (Takeover received); the board runs on alone.
    pub live: bool,
    /// Log entries sent or consumed, for the closing summary.
    pub entries: u64,
    /// Hash of every input the guest observed in this epoch (kind, source,
    /// count, value). It is part of the boundary fingerprint, so a log
    /// whose values were changed after recording fails at the boundary of
    /// the epoch that holds the change, even when the guest's state
    /// happens to absorb the difference.
    inputs: Fingerprint,
}

/// Why a boundary happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundaryReason {
    /// The epoch counter overflowed: `length` instructions ran.
    Overflow,
    /// The guest executed WFI.
    Wfi,
}

impl Epochs {
    pub fn new(mode: Mode, length: u64, link: Option<LinkPort>) -> Self {
        Self {
            mode,
            counter: EpochCounter::new(length),
            epoch: 0,
            link,
            queue: heapless::Deque::new(),
            live: false,
            entries: 0,
            inputs: Fingerprint::new(),
        }
    }

    fn recording(&self) -> bool {
        self.mode == Mode::Record
    }

    fn replaying(&self) -> bool {
        self.mode == Mode::Replay && !self.live
    }

    /// Waits until the link is paired (or refused: then the board stops).
    pub fn establish(&mut self) {
        let Some(port) = self.link.as_mut() else {
            return;
        };
        println!("hypervisor: link: waiting for the peer");
        loop {
            match port.poll() {
                Some(Event::Established(peer)) => {
                    println!(
                        "hypervisor: link: paired with a {:?} (session {:#x})",
                        peer.role, peer.session
                    );
                    return;
                }
                Some(Event::Refused(Refusal::Configuration { ours, theirs })) => {
                    let (ours, theirs) = (
                        PairingConfig::from_digest(&ours),
                        PairingConfig::from_digest(&theirs),
                    );
                    println!(
                        "hypervisor: link: pairing refused: {}",
                        ours.differences(&theirs)
                    );
                    power::stop(ExitStatus::BadConfiguration);
                }
                Some(Event::Refused(r)) => {
                    println!("hypervisor: link: pairing refused: {r}");
                    power::stop(ExitStatus::BadConfiguration);
                }
                Some(Event::Delivered(m)) => {
                    let _ = self.queue.push_back(m);
                }
                _ => {}
            }
        }
    }

    fn on_event(queue: &mut heapless::Deque<Message, 32>, e: Event) {
        match e {
            Event::Delivered(m) => {
                // Callers poll only while the queue has room (one event
                // per poll), so this push never fails.
                let _ = queue.push_back(m);
            }
            Event::PeerFailed | Event::PeerRestarted(_) => {
                println!("hypervisor: link: the peer is gone");
                power::stop(ExitStatus::Divergence);
            }
            _ => {}
        }
    }

    fn send(&mut self, msg: Message) {
        if let Some(port) = self.link.as_mut() {
            let queue = &mut self.queue;
            port.send(msg, |e| Self::on_event(queue, e));
        }
    }

    /// The next logged message (replay), polling the link until one comes.
    fn next_logged(&mut self) -> Message {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return m;
            }
            let Some(port) = self.link.as_mut() else {
                return Message::Takeover(Takeover {
                    epoch: self.epoch,
                    count: 0,
                });
            };
            if let Some(e) = port.poll() {
                Self::on_event(&mut self.queue, e);
            }
        }
    }

    /// Lets acknowledgements and heartbeats flow.
    pub fn service_link(&mut self) {
        if let Some(port) = self.link.as_mut() {
            // One event per poll: stop while the queue is full, so that no
            // delivered (and so acknowledged) message is ever dropped.
            while !self.queue.is_full()
                && let Some(e) = port.poll()
            {
                Self::on_event(&mut self.queue, e);
            }
        }
    }

    /// Before the guest's output leaves the board for good (power-off):
    /// every log message acknowledged.
    pub fn flush(&mut self) {
        if !self.recording() {
            return;
        }
        while self.link.as_ref().is_some_and(|p| !p.link.all_acked()) {
            self.service_link();
        }
    }

    fn diverged(&self, d: Divergence) -> ! {
        println!("replay: {d}");
        println!("replay: stopped: the replayed guest is not the recorded one");
        power::stop(ExitStatus::Divergence)
    }

    fn went_live(&mut self, at_count: u64) {
        self.live = true;
        println!(
            "replay: end of log at epoch {} count {}; going live",
            self.epoch, at_count
        );
    }

    /// An environment input the guest observes: `computed` is what this
    /// board would give it. Record logs it; replay returns the logged value
    /// after checking the access is the logged one.
    pub fn input(&mut self, kind: InputKind, detail: u8, source: u64, computed: u64) -> u64 {
        let count = self.counter.elapsed();
        let value = self.input_value(kind, detail, source, computed, count);
        self.inputs.words(&[kind as u64, source, count, value]);
        value
    }

    /// The inputs observed in the current epoch, hashed.
    pub fn inputs_digest(&self) -> u64 {
        self.inputs.finish()
    }

    fn input_value(
        &mut self,
        kind: InputKind,
        detail: u8,
        source: u64,
        computed: u64,
        count: u64,
    ) -> u64 {
        if self.recording() {
            self.entries += 1;
            self.send(Message::LogEntry(LogEntry {
                epoch: self.epoch,
                count,
                kind,
                detail,
                source,
                value: computed,
            }));
            computed
        } else if self.replaying() {
            let got = Expect {
                epoch: self.epoch,
                count,
                kind,
                detail,
                source,
            };
            match self.next_logged() {
                Message::LogEntry(e) => {
                    self.entries += 1;
                    match replay::check_input(&e, got) {
                        Ok(v) => v,
                        Err(d) => self.diverged(d),
                    }
                }
                Message::EpochEnd(end) => self.diverged(Divergence::InputInsteadOfBoundary {
                    at: replay::At {
                        epoch: self.epoch,
                        count,
                    },
                    got,
                    logged_end: replay::At {
                        epoch: end.epoch,
                        count: end.count,
                    },
                }),
                _ => {
                    self.went_live(count);
                    computed
                }
            }
        } else {
            computed
        }
    }

    /// An epoch boundary. `levels` are the lines this board would raise;
    /// returns the lines to raise (replay: the logged ones).
    pub fn boundary(
        &mut self,
        count: u64,
        pc: u64,
        fingerprint: u64,
        levels: &[u32],
    ) -> heapless::Vec<u32, MAX_INTERRUPTS> {
        let mut out: heapless::Vec<u32, MAX_INTERRUPTS> =
            levels.iter().copied().take(MAX_INTERRUPTS).collect();
        if self.recording() {
            let end = EpochEnd {
                epoch: self.epoch,
                count,
                pc,
                fingerprint,
                interrupts: out.clone(),
            };
            self.send(Message::EpochEnd(end));
        } else if self.replaying() {
            match self.next_logged() {
                Message::EpochEnd(end) => {
                    if let Err(d) = replay::check_boundary(&end, self.epoch, count, pc, fingerprint)
                    {
                        self.diverged(d);
                    }
                    out = end.interrupts;
                }
                Message::LogEntry(e) => self.diverged(Divergence::BoundaryInsteadOfInput {
                    at: replay::At {
                        epoch: self.epoch,
                        count,
                    },
                    expected: Expect::of(&e),
                }),
                _ => self.went_live(count),
            }
        }
        self.epoch += 1;
        self.inputs = Fingerprint::new();
        self.counter.start();
        out
    }
}
