//! The recorder (`cargo xtask record`): stores in a log what a recording
//! board sends over the link.

use super::link::{HostLink, host_hello, wait_for_hello};
use super::session::{self, LinkEnd, Session};
use super::socket::socket_transport;
use crate::recording::LogWriter;
use anyhow::Result;
use replication_link::{Hello, Message, Role, Stats};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// What the recorder stored.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The recording board's Hello (as stored in the log).
    pub board: Hello,
    /// Messages appended to the log.
    pub messages: u64,
    /// The log file's size.
    pub bytes: u64,
    pub end: LinkEnd,
    /// The host link's counters at the end.
    pub stats: Stats,
}

/// The recorder's part of the poll loop: every delivered message goes to
/// the log.
struct Recorder {
    writer: LogWriter,
    /// Stop (and drop the connection, as a killed recorder's socket
    /// closes) once this many messages are stored.
    vanish_after: Option<u64>,
}

impl Session for Recorder {
    fn delivered(&mut self, msg: Message) -> Result<()> {
        self.writer.append(&msg)
    }

    fn finished(&self) -> bool {
        self.vanish_after
            .is_some_and(|n| self.writer.messages() >= n)
    }
}

/// The recorder over an accepted connection: waits for the board's Hello,
/// adopts its digests (role `Recorder`), stores every delivered message in
/// `log` until the board closes the link (QEMU exited) or `give_up` says
/// the board is gone.
///
/// # Errors
/// No Hello, the log cannot be written, or a socket error.
pub fn record_over(
    stream: UnixStream,
    log: &Path,
    vanish_after: Option<u64>,
    give_up: &dyn Fn() -> bool,
) -> Result<Recorded> {
    let mut transport = socket_transport(stream)?;
    let mut board = wait_for_hello(&mut transport, give_up)?;
    board.seen_peer = false;
    let mut recorder = Recorder {
        writer: LogWriter::create(log, &board)?,
        vanish_after,
    };
    let mut link = HostLink::new(host_hello(Role::Recorder, &board), transport);
    // A failed append returns here; a failed socket only after the log
    // holds what came before it.
    let ended = session::run(&mut link, &mut recorder, give_up)?;
    let writer = recorder.writer;
    let (messages, bytes) = (writer.messages(), writer.bytes());
    writer.finish()?;
    ended.socket_result()?;
    Ok(Recorded {
        board,
        messages,
        bytes,
        end: ended.end,
        stats: link.link().stats(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Board, board_hello, messages};
    use super::*;
    use crate::recording::Log;
    use replication_link::Event;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn records_what_an_in_process_primary_sends() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        let sent = messages(5);
        let dir = std::env::temp_dir().join(format!("tandem-linkhost-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rec.log");
        let board_done = AtomicBool::new(false);
        let recorded = std::thread::scope(|s| {
            let to_send = sent.clone();
            let board_done = &board_done;
            s.spawn(move || {
                let mut b = Board::new(Role::Primary, board_end);
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut next = 0;
                let mut paired = false;
                // The output rule: send all, wait until all are acked, stop.
                while !(paired && next == to_send.len() && b.link.link().all_acked()) {
                    assert!(Instant::now() < deadline, "board: timed out");
                    while next < to_send.len() && b.link.send(to_send[next].clone()).is_ok() {
                        next += 1;
                    }
                    while let Some(ev) = b.poll() {
                        match ev {
                            Event::Established(h) => {
                                assert_eq!(h.role, Role::Recorder);
                                paired = true;
                            }
                            other => panic!("board: unexpected {other:?}"),
                        }
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
                board_done.store(true, Ordering::SeqCst);
                // Dropping the link closes the socket: QEMU exiting.
            });
            record_over(host_end, &path, None, &|| board_done.load(Ordering::SeqCst)).unwrap()
        });
        assert!(recorded.end.problem().is_none(), "{:?}", recorded.end);
        assert_eq!(recorded.end.peer.as_ref().unwrap().role, Role::Primary);
        assert_eq!(recorded.messages, sent.len() as u64);
        let log = Log::read(&path).unwrap();
        assert_eq!(log.hello, board_hello(Role::Primary));
        assert_eq!(log.messages, sent);
        assert_eq!(recorded.bytes, std::fs::metadata(&path).unwrap().len());
        let s = log.summary();
        assert_eq!(
            (s.epochs, s.boundaries, s.entries["counter-read"]),
            (6, 5, 50)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_hello_before_the_board_closes_is_a_clear_error() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        drop(board_end);
        let dir =
            std::env::temp_dir().join(format!("tandem-linkhost-nohello-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = record_over(host_end, &dir.join("x.log"), None, &|| false).unwrap_err();
        assert!(e.to_string().contains("before saying Hello"), "{e}");
        let (host_end, _board_end) = UnixStream::pair().unwrap();
        let e = record_over(host_end, &dir.join("x.log"), None, &|| true).unwrap_err();
        assert!(e.to_string().contains("never said Hello"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
