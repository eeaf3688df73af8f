//! The board's side of record and replay (docs/record-replay.md): the
//! library's replica engine (`el2_hypervisor::replica::engine`) over the
//! link UART, with epochs on the PMU; what the engine decides, this module
//! says on the console and turns into the board's stop.

use super::link_port::LinkPort;
use crate::arch::console::println;
use crate::arch::pmu::EpochCounter;
use crate::arch::power;
use el2_hypervisor::exit::ExitStatus;
use el2_hypervisor::options::Mode;
use el2_hypervisor::replica::digest::PairingConfig;
use el2_hypervisor::replica::engine::{Engine, Lines, LogPort, PeerGone, Role, Stop};
use replication_link::handshake::Refusal;
use replication_link::link::Event;
use replication_link::message::{InputKind, Message, Takeover};

/// The log port of the board: the link (none in free mode) and the
/// messages delivered but not yet consumed.
pub struct BoardLog {
    link: Option<LinkPort>,
    queue: heapless::Deque<Message, 32>,
}

impl BoardLog {
    /// Keeps a delivered message; `PeerGone` for a peer that failed or
    /// restarted (a restarted peer lost what it had: it is not ours).
    fn on_event(queue: &mut heapless::Deque<Message, 32>, e: Event) -> Result<(), PeerGone> {
        match e {
            Event::Delivered(m) => {
                // Callers poll only while the queue has room (one event
                // per poll), so this push never fails.
                let _ = queue.push_back(m);
                Ok(())
            }
            Event::PeerFailed | Event::PeerRestarted(_) => Err(PeerGone),
            _ => Ok(()),
        }
    }

    /// Lets acknowledgements and heartbeats flow.
    fn service(&mut self) -> Result<(), PeerGone> {
        if let Some(port) = self.link.as_mut() {
            // One event per poll: stop while the queue is full, so that no
            // delivered (and so acknowledged) message is ever dropped.
            while !self.queue.is_full()
                && let Some(e) = port.poll()
            {
                Self::on_event(&mut self.queue, e)?;
            }
        }
        Ok(())
    }
}

impl LogPort for BoardLog {
    fn send(&mut self, msg: Message) -> Result<(), PeerGone> {
        match self.link.as_mut() {
            Some(port) => {
                let queue = &mut self.queue;
                port.send(msg, |e| Self::on_event(queue, e))
            }
            None => Ok(()),
        }
    }

    fn next(&mut self) -> Result<Message, PeerGone> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            let Some(port) = self.link.as_mut() else {
                // No link: the log ended before it began.
                return Ok(Message::Takeover(Takeover { epoch: 0, count: 0 }));
            };
            if let Some(e) = port.poll() {
                Self::on_event(&mut self.queue, e)?;
            }
        }
    }
}

/// Epochs and the log on this board.
pub struct Epochs {
    pub mode: Mode,
    pub counter: EpochCounter,
    pub engine: Engine<BoardLog>,
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
        let role = match mode {
            Mode::Free => Role::Solo,
            Mode::Record | Mode::Primary => Role::Primary,
            Mode::Replay | Mode::Backup => Role::Backup,
        };
        Self {
            mode,
            counter: EpochCounter::new(length),
            engine: Engine::new(
                role,
                BoardLog {
                    link,
                    queue: heapless::Deque::new(),
                },
            ),
        }
    }

    /// A backup still consuming its log.
    pub fn replaying(&self) -> bool {
        self.engine.replaying()
    }

    /// Waits until the link is paired (or refused: then the board stops).
    pub fn establish(&mut self) {
        let log = self.engine.port();
        let Some(port) = log.link.as_mut() else {
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
                    let _ = log.queue.push_back(m);
                }
                _ => {}
            }
        }
    }

    /// Lets acknowledgements and heartbeats flow.
    pub fn service_link(&mut self) {
        if let Err(e) = self.engine.port().service() {
            self.stopped(e.into());
        }
    }

    /// Before the guest's output leaves the board for good (power-off):
    /// every log message acknowledged.
    pub fn flush(&mut self) {
        if self.engine.role() != Role::Primary {
            return;
        }
        while self
            .engine
            .port()
            .link
            .as_ref()
            .is_some_and(|p| !p.link.all_acked())
        {
            self.service_link();
        }
    }

    /// The engine cannot go on: say why, and stop the board.
    fn stopped(&self, s: Stop) -> ! {
        match s {
            Stop::Diverged(d) => {
                println!("replay: {d}");
                println!("replay: stopped: the replayed guest is not the recorded one");
                power::stop(ExitStatus::Divergence)
            }
            Stop::PeerGone => {
                println!(
                    "hypervisor: link: the peer is gone (epoch {})",
                    self.engine.epoch()
                );
                power::stop(ExitStatus::PeerGone)
            }
        }
    }

    fn say_if_live(&mut self) {
        if let Some(live) = self.engine.take_went_live() {
            println!(
                "replay: end of log at epoch {} count {}; going live",
                live.at.epoch, live.at.count
            );
        }
    }

    /// An environment input the guest observes: `computed` is what this
    /// board would give it; returns what the guest gets (`Engine::input`).
    pub fn input(&mut self, kind: InputKind, detail: u8, source: u64, computed: u64) -> u64 {
        let count = self.counter.elapsed();
        match self.engine.input(count, kind, detail, source, computed) {
            Ok(v) => {
                self.say_if_live();
                v
            }
            Err(s) => self.stopped(s),
        }
    }

    /// The inputs observed in the current epoch, hashed.
    pub fn inputs_digest(&self) -> u64 {
        self.engine.inputs_digest()
    }

    /// An epoch boundary (`Engine::boundary`); the next epoch's counter
    /// starts.
    pub fn boundary(&mut self, count: u64, pc: u64, fingerprint: u64, levels: &[u32]) -> Lines {
        match self.engine.boundary(count, pc, fingerprint, levels) {
            Ok(lines) => {
                self.say_if_live();
                self.counter.start();
                lines
            }
            Err(s) => self.stopped(s),
        }
    }
}
