//! A fake board for the session's tests: a clock that the test moves (and
//! that moves a little on every read, so that waiting loops end), a timer
//! whose wait jumps the clock to the deadline, a console that records
//! what was said and emitted in order, an epoch counter the test sets,
//! and a link transport with the peer's whole `Link` inside it, run each
//! time this board receives, so that one thread plays both ends.

use crate::hw::{Console, EpochCounter, Hw, ReplicaHw};
use crate::replica::digest;
use crate::replica::link_timing;
use crate::replica::session::LinkPort;
use core::cell::{Cell, RefCell};
use replication_link::link::{Config, Event, Link};
use replication_link::message::{Hello, Message, Role};
use replication_link::transport::{PacketTransport, Received};
use replication_link::{MAX_PACKET, TransportError};
use std::collections::VecDeque;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec::Vec;

/// What the board's console got, in order, with the board's time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Line { at_us: u64, text: String },
    Guest(Vec<u8>),
}

/// Microseconds each clock read moves the clock on.
const TICK_US: u64 = 1;

/// The clock, the timer and the console, shared by the board's clones.
#[derive(Default)]
pub struct State {
    now_us: Cell<u64>,
    armed: Cell<Option<u64>>,
    /// Waits for an interrupt (each a pause of the board).
    pub wfis: Cell<u64>,
    pub out: RefCell<Vec<Out>>,
}

impl State {
    pub fn now(&self) -> u64 {
        self.now_us.get()
    }

    pub fn advance(&self, us: u64) {
        self.now_us.set(self.now_us.get() + us);
    }

    /// Everything the guest emitted, in one piece.
    pub fn guest(&self) -> Vec<u8> {
        self.out
            .borrow()
            .iter()
            .filter_map(|o| match o {
                Out::Guest(b) => Some(b.clone()),
                Out::Line { .. } => None,
            })
            .flatten()
            .collect()
    }

    /// The lines said, with their times.
    pub fn lines(&self) -> Vec<(u64, String)> {
        self.out
            .borrow()
            .iter()
            .filter_map(|o| match o {
                Out::Line { at_us, text } => Some((*at_us, text.clone())),
                Out::Guest(_) => None,
            })
            .collect()
    }

    /// Where in the console's order the first line starting with `prefix`
    /// is.
    pub fn position_of_line(&self, prefix: &str) -> Option<usize> {
        self.out
            .borrow()
            .iter()
            .position(|o| matches!(o, Out::Line { text, .. } if text.starts_with(prefix)))
    }

    /// Where the first guest output is.
    pub fn position_of_guest(&self) -> Option<usize> {
        self.out
            .borrow()
            .iter()
            .position(|o| matches!(o, Out::Guest(_)))
    }
}

/// The board: its clock in µs at 1 MHz (a tick is a microsecond).
#[derive(Clone, Default)]
pub struct FakeBoard(pub Rc<State>);

impl Hw for FakeBoard {
    fn read_lr(&self, _: usize) -> u64 {
        0
    }
    fn write_lr(&mut self, _: usize, _: u64) {}
    fn set_underflow(&mut self, _: bool) {}
    fn counter(&self) -> u64 {
        let now = self.0.now();
        self.0.advance(TICK_US);
        now
    }
    fn frequency(&self) -> u64 {
        1_000_000
    }
    fn arm_timer(&mut self, deadline: Option<u64>) {
        self.0.armed.set(deadline);
    }
    fn read_ram(&self, _: crate::mem::TouchedSpan, out: &mut [u64]) {
        // The session never reads guest RAM (the fingerprint is the VM's).
        out.fill(0);
    }
    fn wait_for_interrupt(&mut self) {
        self.0.wfis.set(self.0.wfis.get() + 1);
        // The armed timer fires: the clock is at its deadline.
        if let Some(d) = self.0.armed.get()
            && d > self.0.now()
        {
            self.0.now_us.set(d);
        }
    }
}

impl Console for FakeBoard {
    fn write_guest(&mut self, bytes: &[u8]) {
        self.0.out.borrow_mut().push(Out::Guest(bytes.to_vec()));
    }
    fn line(&mut self, line: core::fmt::Arguments<'_>) {
        let at_us = self.0.now();
        self.0.out.borrow_mut().push(Out::Line {
            at_us,
            text: line.to_string(),
        });
    }
}

impl ReplicaHw for FakeBoard {
    type Counter = FakeCounter;
    type Transport = PeerEnd;
}

/// An epoch counter the test sets.
#[derive(Default)]
pub struct FakeCounter {
    pub elapsed: Cell<u64>,
    pub starts: Cell<u64>,
    /// Where the epoch in progress ends (0: the full length).
    pub end: Cell<u64>,
}

impl EpochCounter for FakeCounter {
    fn length(&self) -> u64 {
        // 10 µs of guest time at the fake's 1 MHz counter.
        10_000_000
    }
    fn start(&mut self) {
        self.elapsed.set(0);
        self.end.set(0);
        self.starts.set(self.starts.get() + 1);
    }
    fn end(&self) -> u64 {
        match self.end.get() {
            0 => self.length(),
            e => e,
        }
    }
    fn end_at(&mut self, count: u64) {
        self.end.set(count);
    }
    fn elapsed(&self) -> u64 {
        self.elapsed.get()
    }
    fn overflowed(&self) -> bool {
        false
    }
    fn clear_overflow(&self) {}
}

/// The other board: its link, the packets between the two, what it was
/// delivered, and whether it runs at all.
pub struct Peer {
    pub link: Link,
    to_peer: VecDeque<Vec<u8>>,
    to_us: VecDeque<Vec<u8>>,
    pub delivered: Vec<Message>,
    /// A dead peer is never run again (it neither acks nor heartbeats).
    pub alive: bool,
    /// Receives by this board during which the peer is not run (it
    /// answers late).
    pub deaf_for: u64,
    state: Rc<State>,
}

/// The peer's end of the packet queues.
struct Side<'a> {
    rx: &'a mut VecDeque<Vec<u8>>,
    tx: &'a mut VecDeque<Vec<u8>>,
}

impl PacketTransport for Side<'_> {
    type Error = ();
    fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError<()>> {
        self.tx.push_back(packet.to_vec());
        Ok(())
    }
    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<()>> {
        Ok(match self.rx.pop_front() {
            Some(p) => {
                buf[..p.len()].copy_from_slice(&p);
                Received::Packet(p.len())
            }
            None => Received::Nothing,
        })
    }
}

impl Peer {
    /// Runs the peer's link until it has nothing more to do.
    pub fn run(&mut self) {
        if !self.alive {
            return;
        }
        if self.deaf_for > 0 {
            self.deaf_for -= 1;
            return;
        }
        let now = self.state.now();
        let mut side = Side {
            rx: &mut self.to_peer,
            tx: &mut self.to_us,
        };
        while let Ok(Some(e)) = self.link.poll(now, &mut side) {
            if let Event::Delivered(m) = e {
                self.delivered.push(m);
            }
        }
    }
}

/// This board's transport: to and from the peer.
pub struct PeerEnd(pub Rc<RefCell<Peer>>);

impl PacketTransport for PeerEnd {
    type Error = ();
    fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError<()>> {
        if packet.len() > MAX_PACKET {
            return Err(TransportError::TooLarge);
        }
        self.0.borrow_mut().to_peer.push_back(packet.to_vec());
        Ok(())
    }
    fn recv_packet(&mut self, buf: &mut [u8]) -> Result<Received, TransportError<()>> {
        let mut peer = self.0.borrow_mut();
        peer.run();
        Ok(match peer.to_us.pop_front() {
            Some(p) => {
                buf[..p.len()].copy_from_slice(&p);
                Received::Packet(p.len())
            }
            None => Received::Nothing,
        })
    }
}

/// The pair's link timing of the tests: heartbeats every 20 ms, a peer
/// dead after 2 s unheard.
pub const TIMING: Config = link_timing::pair(20, 2_000, false);

fn hello(role: Role, session: u64, config: u64) -> Hello {
    Hello::new(
        role,
        session,
        digest::digest(1),
        digest::digest(2),
        digest::digest(config),
    )
}

/// This board's link port (as `role`) and its peer (the other role,
/// with configuration `peer_config`; 7 is ours).
pub fn link(
    role: Role,
    peer_config: u64,
    state: &Rc<State>,
) -> (LinkPort<PeerEnd>, Rc<RefCell<Peer>>) {
    let other = match role {
        Role::Primary => Role::Backup,
        _ => Role::Primary,
    };
    let peer = Rc::new(RefCell::new(Peer {
        link: Link::new(hello(other, 0xbb, peer_config), TIMING),
        to_peer: VecDeque::new(),
        to_us: VecDeque::new(),
        delivered: Vec::new(),
        alive: true,
        deaf_for: 0,
        state: state.clone(),
    }));
    let port = LinkPort::new(PeerEnd(peer.clone()), hello(role, 0xaa, 7), TIMING);
    (port, peer)
}
