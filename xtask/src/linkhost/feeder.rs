//! The feeder (`cargo xtask replay`): sends a stored log, then the
//! closing `Takeover`, to a replaying board over the link; or, to test a
//! board whose peer dies, only the log's first messages, and then it is
//! gone ([`Vanish`]).

use super::link::{HostLink, host_hello};
use super::session::{self, LinkEnd, Session};
use super::socket::socket_transport;
use crate::recording::Log;
use anyhow::Result;
use replication_link::{Message, Role, SendError, Seq, Stats, Takeover};
use std::os::unix::net::UnixStream;

/// What the feeder sent.
#[derive(Clone, Debug, Default)]
pub struct Fed {
    /// Stored messages handed to the link.
    pub sent: usize,
    /// Stored messages the board acknowledged.
    pub acked: usize,
    /// The closing `Takeover` was queued / acknowledged.
    pub takeover_sent: bool,
    pub takeover_acked: bool,
    /// Sequenced messages the board sent us (none expected).
    pub received: usize,
    pub end: LinkEnd,
    /// The host link's counters at the end.
    pub stats: Stats,
}

/// When the feeder stops: at the end of the log (it sends the
/// `Takeover` and stays until the board is done), or, as a host program
/// that dies part way, once the board has acknowledged this many of the
/// log's messages (it sends no more and closes its socket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vanish {
    Never,
    AfterAcked(usize),
}

/// The feeder's part of the poll loop: keeps the send window full from the
/// log, then queues the `Takeover`, and tracks what the board acknowledged.
struct Feeder<'a> {
    log: &'a Log,
    /// Messages of the log it sends at most (all of them, unless it
    /// vanishes; then no `Takeover` either).
    limit: usize,
    vanish: Vanish,
    takeover: Message,
    /// Messages in the log, as the link counts sequence numbers.
    total: u32,
    takeover_seq: Option<Seq>,
    fed: Fed,
}

impl Session for Feeder<'_> {
    fn before_poll(&mut self, link: &mut HostLink) {
        let (log, fed) = (self.log, &mut self.fed);
        // Queue what the window takes; the rest waits for acknowledgements.
        let mut closed = false;
        while fed.sent < self.limit && !closed {
            match link.send(log.messages[fed.sent].clone()) {
                Ok(_) => fed.sent += 1,
                Err(SendError::WindowFull) => break,
                Err(_) => closed = true,
            }
        }
        if fed.sent == log.messages.len()
            && self.vanish == Vanish::Never
            && self.takeover_seq.is_none()
            && !closed
            && let Ok(seq) = link.send(self.takeover.clone())
        {
            self.takeover_seq = Some(seq);
            fed.takeover_sent = true;
        }
    }

    fn delivered(&mut self, _msg: Message) -> Result<()> {
        self.fed.received += 1;
        Ok(())
    }

    fn after_poll(&mut self, link: &HostLink) {
        self.fed.acked = link.link().acked().0.min(self.total) as usize;
        self.fed.takeover_acked = self.takeover_seq.is_some_and(|s| link.link().is_acked(s));
    }

    fn finished(&self) -> bool {
        matches!(self.vanish, Vanish::AfterAcked(_)) && self.fed.acked >= self.limit
    }
}

/// The feeder over an accepted connection: introduces itself with the
/// stored Hello's digests (role `Replayer`), sends every stored message in
/// order, then `Takeover { epoch: last + 1 }`, and keeps the link up until
/// the board closes it or `give_up` says it is gone; with
/// [`Vanish::AfterAcked`], it stops part way and drops the connection.
///
/// # Errors
/// A socket error.
pub fn replay_over(
    stream: UnixStream,
    log: &Log,
    vanish: Vanish,
    give_up: &dyn Fn() -> bool,
) -> Result<Fed> {
    let transport = socket_transport(stream)?;
    let mut link = HostLink::new(host_hello(Role::Replayer, &log.hello), transport);
    let limit = match vanish {
        Vanish::Never => log.messages.len(),
        Vanish::AfterAcked(n) => n.min(log.messages.len()),
    };
    let mut feeder = Feeder {
        log,
        limit,
        vanish,
        takeover: Message::Takeover(Takeover {
            epoch: log.last_epoch() + 1,
            count: 0,
        }),
        total: log.messages.len() as u32,
        takeover_seq: None,
        fed: Fed::default(),
    };
    let ended = session::run(&mut link, &mut feeder, give_up)?;
    ended.socket_result()?;
    Ok(Fed {
        end: ended.end,
        stats: link.link().stats(),
        ..feeder.fed
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Board, board_hello, messages};
    use super::*;
    use replication_link::{Event, Refusal};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn feeds_a_log_to_an_in_process_backup() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        let log = Log {
            hello: board_hello(Role::Primary),
            messages: messages(6),
        };
        assert!(log.messages.len() > 64 * 2);
        let board_done = AtomicBool::new(false);
        let (fed, got) = std::thread::scope(|s| {
            let board_done = &board_done;
            let board = s.spawn(move || {
                let mut b = Board::new(Role::Backup, board_end);
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut got = Vec::new();
                loop {
                    assert!(Instant::now() < deadline, "board: timed out");
                    match b.poll() {
                        Some(Event::Established(h)) => assert_eq!(h.role, Role::Replayer),
                        Some(Event::Delivered(Message::Takeover(t))) => {
                            got.push(Message::Takeover(t));
                            break;
                        }
                        Some(Event::Delivered(m)) => {
                            got.push(m);
                            // A replaying board consumes slowly.
                            if got.len() % 16 == 0 {
                                std::thread::sleep(Duration::from_millis(2));
                            }
                        }
                        Some(other) => panic!("board: unexpected {other:?}"),
                        None => std::thread::sleep(Duration::from_micros(300)),
                    }
                }
                // Let the last acknowledgement go out, then power off.
                for _ in 0..20 {
                    while b.poll().is_some() {}
                    std::thread::sleep(Duration::from_millis(1));
                }
                board_done.store(true, Ordering::SeqCst);
                got
            });
            let fed = replay_over(host_end, &log, Vanish::Never, &|| {
                board_done.load(Ordering::SeqCst)
            })
            .unwrap();
            (fed, board.join().unwrap())
        });
        let mut want = log.messages.clone();
        want.push(Message::Takeover(Takeover { epoch: 7, count: 0 }));
        assert_eq!(got, want);
        assert!(fed.end.problem().is_none(), "{:?}", fed.end);
        assert_eq!(fed.sent, log.messages.len());
        assert!(fed.takeover_sent);
        assert_eq!(fed.received, 0);
    }

    #[test]
    fn a_vanishing_feeder_stops_part_way_without_a_takeover_and_closes() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        let log = Log {
            hello: board_hello(Role::Primary),
            messages: messages(6),
        };
        let n = 100;
        assert!(log.messages.len() > n + 64);
        let (fed, (got, closed)) = std::thread::scope(|s| {
            let board = s.spawn(move || {
                let mut b = Board::new(Role::Backup, board_end);
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut got = Vec::new();
                loop {
                    assert!(Instant::now() < deadline, "board: the feeder never went");
                    match b.link.poll() {
                        Ok(Some(Event::Delivered(m))) => got.push(m),
                        Ok(Some(Event::Established(_))) => {}
                        Ok(Some(other)) => panic!("board: unexpected {other:?}"),
                        Ok(None) => std::thread::sleep(Duration::from_micros(300)),
                        // The feeder's end closed: it is gone.
                        Err(e) => break (got, e.to_string()),
                    }
                }
            });
            // Never asked to give up: it ends by itself once acked.
            let fed = replay_over(host_end, &log, Vanish::AfterAcked(n), &|| false).unwrap();
            (fed, board.join().unwrap())
        });
        assert_eq!(got.len(), n, "messages the board got");
        assert!(got == log.messages[..n], "not the log's first messages");
        assert_eq!(closed, "link stream closed");
        assert_eq!((fed.sent, fed.acked), (n, n));
        assert!(!fed.takeover_sent);
    }

    #[test]
    fn a_mismatched_board_is_refused_and_the_feeder_says_why() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        let mut stored = board_hello(Role::Primary);
        stored.config[0] ^= 1;
        let log = Log {
            hello: stored,
            messages: messages(1),
        };
        let board_done = AtomicBool::new(false);
        let fed = std::thread::scope(|s| {
            let board_done = &board_done;
            s.spawn(move || {
                let mut b = Board::new(Role::Backup, board_end);
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    assert!(Instant::now() < deadline, "board: timed out");
                    match b.poll() {
                        Some(Event::Refused(r)) => {
                            assert!(matches!(r, Refusal::Configuration { .. }), "{r:?}");
                            break;
                        }
                        Some(other) => panic!("board: unexpected {other:?}"),
                        None => std::thread::sleep(Duration::from_micros(300)),
                    }
                }
                // Answer the peer's Hellos a little so it learns why, then stop.
                for _ in 0..50 {
                    while b.poll().is_some() {}
                    std::thread::sleep(Duration::from_millis(1));
                }
                board_done.store(true, Ordering::SeqCst);
            });
            replay_over(host_end, &log, Vanish::Never, &|| {
                board_done.load(Ordering::SeqCst)
            })
            .unwrap()
        });
        assert!(matches!(
            fed.end.refused,
            Some(Refusal::Configuration { .. })
        ));
        let problem = fed.end.problem().unwrap();
        assert!(
            problem.starts_with("the pairing was refused: "),
            "{problem}"
        );
    }
}
