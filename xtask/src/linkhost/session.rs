//! The poll loop the recorder and the feeder share: it runs a
//! [`HostLink`] until the board closes the link or is given up on, hands
//! what the board sends to a [`Session`], and notes how the session ended
//! ([`LinkEnd`]).

use super::link::HostLink;
use super::report::describe_refusal;
use super::socket::{IDLE, is_closed};
use anyhow::{Result, bail};
use replication_link::{Event, Hello, LinkState, Message, Refusal, TransportError};
use std::io;

/// How a link session ended.
#[derive(Clone, Debug, Default)]
pub struct LinkEnd {
    /// The peer's Hello, when the handshake succeeded.
    pub peer: Option<Hello>,
    /// Why the handshake failed, if it did.
    pub refused: Option<Refusal>,
    /// The link declared the board failed (silent for `fail_after`).
    pub peer_failed: bool,
    /// The board restarted during the session.
    pub peer_restarted: bool,
}

impl LinkEnd {
    /// Records a link event other than a delivery; returns whether it was one.
    fn note(&mut self, ev: &Event) -> bool {
        match ev {
            Event::Established(h) => self.peer = Some(h.clone()),
            Event::Refused(r) => self.refused = Some(*r),
            Event::PeerFailed => self.peer_failed = true,
            Event::PeerRestarted(_) => self.peer_restarted = true,
            Event::Delivered(_) => return false,
        }
        true
    }

    /// A one-line description of a session that did not pair.
    pub fn problem(&self) -> Option<String> {
        if let Some(r) = self.refused {
            return Some(format!("the pairing was refused: {}", describe_refusal(&r)));
        }
        if self.peer_restarted {
            return Some("the board restarted during the session".into());
        }
        if self.peer_failed {
            return Some("the board fell silent (link failure detector)".into());
        }
        if self.peer.is_none() {
            return Some("the board never completed the handshake".into());
        }
        None
    }
}

/// What one end of a host session does inside [`run`]: the recorder keeps
/// what the board sends, the feeder sends and watches acknowledgements.
pub(super) trait Session {
    /// Before each poll: queue what the board should get next.
    fn before_poll(&mut self, _link: &mut HostLink) {}

    /// A sequenced message the board sent.
    ///
    /// # Errors
    /// The session cannot keep it; [`run`] stops with this error.
    fn delivered(&mut self, msg: Message) -> Result<()>;

    /// After each poll that did not end the session.
    fn after_poll(&mut self, _link: &HostLink) {}

    /// Whether the session ends here, whatever the board does (a feeder
    /// told to vanish part way: its socket then closes, as a dead host
    /// program's would).
    fn finished(&self) -> bool {
        false
    }
}

/// How [`run`] stopped, when the session itself did not fail.
pub(super) struct Ended {
    /// The events other than deliveries.
    pub(super) end: LinkEnd,
    /// The socket failed (rather than closed): kept apart so that the
    /// recorder can flush its log before reporting it.
    socket_error: Option<TransportError<io::Error>>,
}

impl Ended {
    /// The socket failure, if there was one, as an error.
    ///
    /// # Errors
    /// The socket failed.
    pub(super) fn socket_result(&self) -> Result<()> {
        match &self.socket_error {
            Some(e) => bail!("link socket: {e}"),
            None => Ok(()),
        }
    }
}

/// Polls `link` until the board closes it (QEMU exited) or `give_up` says
/// the board is gone, feeding `session`. `give_up` is asked only when the
/// socket was quiet or the link stopped (paired no more), so a board still
/// talking is never cut off.
///
/// # Errors
/// [`Session::delivered`] failed; the socket's own failures are in
/// [`Ended::socket_result`].
pub(super) fn run(
    link: &mut HostLink,
    session: &mut impl Session,
    give_up: &dyn Fn() -> bool,
) -> Result<Ended> {
    let mut end = LinkEnd::default();
    let socket_error = loop {
        session.before_poll(link);
        match link.poll() {
            Ok(Some(Event::Delivered(m))) => session.delivered(m)?,
            Ok(Some(ev)) => {
                end.note(&ev);
            }
            Ok(None) => {
                let stopped = !matches!(
                    link.link().state(),
                    LinkState::Handshaking | LinkState::Established
                );
                let idle = link.idle();
                if (stopped || idle) && give_up() {
                    break None;
                }
                if idle {
                    std::thread::sleep(IDLE);
                }
            }
            Err(e) if is_closed(&e) => break None,
            Err(e) => break Some(e),
        }
        session.after_poll(link);
        if session.finished() {
            break None;
        }
    };
    Ok(Ended { end, socket_error })
}
