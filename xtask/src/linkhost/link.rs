//! The host's [`Link`]: its timing, its clock, the Hello it introduces
//! itself with, and the wait for the board's Hello.
//!
//! The board's link clock is QEMU's virtual time (`-icount`), ours is
//! [`Instant`]: the two never need to agree, since each side only times its
//! own retransmissions and silences ([`RECORD_REPLAY`] is lenient).

use super::socket::{IDLE, SocketTransport, is_closed};
use anyhow::{Result, bail};
use replication_link::{
    Config, Event, Hello, Link, MAX_PACKET, Message, Packet, PacketTransport, Received, Role,
    SendError, TransportError,
};
use std::io;
use std::time::Instant;

/// Link timing for record and replay: the board's, from the one place
/// both ends take it.
pub use el2_hypervisor::replica::link_timing::RECORD_REPLAY;

/// A [`Link`] run on the host: its clock is microseconds since it was made.
pub struct HostLink {
    link: Box<Link>,
    transport: SocketTransport,
    start: Instant,
}

impl HostLink {
    /// A link introducing itself with `hello`, with [`RECORD_REPLAY`] timing.
    pub fn new(hello: Hello, transport: SocketTransport) -> Self {
        Self::with_config(hello, transport, RECORD_REPLAY)
    }

    /// The same with other timing (tests).
    pub fn with_config(hello: Hello, transport: SocketTransport, config: Config) -> Self {
        Self {
            link: Box::new(Link::new(hello, config)),
            transport,
            start: Instant::now(),
        }
    }

    /// Microseconds since the link was made.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Runs the link once (see [`Link::poll`]).
    ///
    /// # Errors
    /// The socket's errors; [`TransportError::Closed`] when the peer closed it.
    pub fn poll(&mut self) -> Result<Option<Event>, TransportError<io::Error>> {
        let now = self.now_us();
        self.link.poll(now, &mut self.transport)
    }

    /// Queues a sequenced message (see [`Link::send`]).
    ///
    /// # Errors
    /// As [`Link::send`].
    pub fn send(&mut self, msg: Message) -> Result<replication_link::Seq, SendError> {
        self.link.send(msg)
    }

    /// The link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Whether the socket has been quiet since the last call (sleep then).
    pub fn idle(&mut self) -> bool {
        !self.transport.inner_mut().take_activity()
    }
}

/// A session number that differs from run to run.
fn session_number() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(48)
}

/// The host's Hello as `role` in a fresh session, with the digests of
/// `digests` (the board's own Hello, or the one stored in a log): the host
/// runs no hypervisor, so it adopts the board's build, guest and
/// configuration rather than having its own.
pub(super) fn host_hello(role: Role, digests: &Hello) -> Hello {
    Hello::new(
        role,
        session_number(),
        digests.build,
        digests.guest_image,
        digests.config,
    )
}

/// Reads packets until one carries a Hello (the board repeats its Hello
/// until answered, so none is lost by reading it here rather than in a
/// [`Link`]). `give_up` is asked whenever nothing is waiting.
///
/// # Errors
/// The stream closes, or `give_up` says so, before a Hello came.
pub fn wait_for_hello(t: &mut SocketTransport, give_up: &dyn Fn() -> bool) -> Result<Hello> {
    let mut buf = [0u8; MAX_PACKET];
    loop {
        match t.recv_packet(&mut buf) {
            Ok(Received::Packet(n)) => {
                let hello = Packet::parse(&buf[..n]).ok().and_then(|p| {
                    p.messages().find_map(|m| match m {
                        Message::Hello(h) => Some(h),
                        _ => None,
                    })
                });
                if let Some(h) = hello {
                    return Ok(h);
                }
            }
            Ok(Received::Rejected(_)) => {}
            Ok(Received::Nothing) => {
                if give_up() {
                    bail!("the board never said Hello on the link");
                }
                std::thread::sleep(IDLE);
            }
            Err(e) if is_closed(&e) => bail!("the board closed the link before saying Hello"),
            Err(e) => bail!("link socket: {e}"),
        }
    }
}
