//! The host end of the replication link (docs/record-replay.md): a
//! [`replication_link::Link`] over a Unix socket that QEMU connects the
//! board's second PL011 to, the recorder (`cargo xtask record`) that stores
//! what a recording board sends, and the feeder (`cargo xtask replay`) that
//! sends a stored log to a replaying board.
//!
//! The board's link clock is QEMU's virtual time (`-icount`), ours is
//! [`Instant`]: the two never need to agree, since each side only times its
//! own retransmissions and silences ([`RECORD_REPLAY`] is lenient).

use crate::image::Image;
use crate::paths;
use crate::qemu::{self, Vars};
use crate::recording::{Log, LogWriter, Summary, guest_lines};
use crate::runner::{self, BoardRun, Outcome};
use anyhow::{Context, Result, anyhow, bail};
use replication_link::{
    Config, Event, Hello, Link, LinkState, MAX_PACKET, Message, Packet, PacketTransport, Received,
    Refusal, Role, SendError, Stats, StreamTransport, Takeover, Timeouts, TransportError,
};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Link timing for record and replay, the same on both ends: the board's
/// clock is icount virtual time and the host can be slow (a loaded CI
/// machine, QEMU translating a new kernel path), so failure detection is
/// lenient and is not what these runs test.
pub const RECORD_REPLAY: Config = Config {
    heartbeat_interval_us: 100_000,
    retransmit_after_us: 200_000,
    hello_interval_us: 100_000,
    timeouts: Timeouts {
        suspect_after_us: 30_000_000,
        fail_after_us: 60_000_000,
    },
    batch_limit: 512,
};

/// How long the host loops sleep when the socket had nothing for them.
const IDLE: Duration = Duration::from_micros(200);

/// A Unix stream socket as a non-blocking `embedded-io` byte stream.
///
/// Reads go through a buffer that is filled whenever the socket has bytes,
/// including while a write waits for room: the board blocks while its UART
/// writes to us, so a host that stopped reading while its own write waits
/// could deadlock the pair.
pub struct SocketIo {
    stream: UnixStream,
    rx: VecDeque<u8>,
    eof: bool,
    activity: bool,
}

impl SocketIo {
    /// Wraps `stream` and puts it in non-blocking mode.
    ///
    /// # Errors
    /// The socket refuses non-blocking mode.
    pub fn new(stream: UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream,
            rx: VecDeque::new(),
            eof: false,
            activity: false,
        })
    }

    /// Whether bytes arrived since the last call.
    pub fn take_activity(&mut self) -> bool {
        std::mem::take(&mut self.activity)
    }

    /// Whether the peer closed the stream (the bytes before it may still be
    /// buffered).
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads what the socket has without blocking (at most 64 KiB a call).
    fn fill(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            if self.eof {
                break;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.rx.extend(&buf[..n]);
                    self.activity = true;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) =>
                {
                    self.eof = true
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl embedded_io::ErrorType for SocketIo {
    type Error = io::Error;
}

impl embedded_io::Read for SocketIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.rx.is_empty() {
                let n = buf.len().min(self.rx.len());
                for (dst, src) in buf.iter_mut().zip(self.rx.drain(..n)) {
                    *dst = src;
                }
                return Ok(n);
            }
            if self.eof {
                return Ok(0);
            }
            self.fill()?;
            if self.rx.is_empty() && !self.eof {
                std::thread::sleep(IDLE);
            }
        }
    }
}

impl embedded_io::ReadReady for SocketIo {
    fn read_ready(&mut self) -> io::Result<bool> {
        if self.rx.is_empty() {
            self.fill()?;
        }
        Ok(!self.rx.is_empty() || self.eof)
    }
}

impl embedded_io::Write for SocketIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.stream.write(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.fill()?;
                    std::thread::sleep(IDLE);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The packet transport over a [`SocketIo`].
pub type SocketTransport = StreamTransport<SocketIo>;

/// A transport over `stream` (made non-blocking).
///
/// # Errors
/// The socket refuses non-blocking mode.
pub fn socket_transport(stream: UnixStream) -> io::Result<SocketTransport> {
    Ok(StreamTransport::new(SocketIo::new(stream)?))
}

/// Whether a transport error means the peer went away (QEMU exited).
fn is_closed(e: &TransportError<io::Error>) -> bool {
    match e {
        TransportError::Closed => true,
        TransportError::Io(e) => matches!(
            e.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::NotConnected
        ),
        _ => false,
    }
}

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
fn session() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(48)
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

/// The recorder over an accepted connection: waits for the board's Hello,
/// adopts its digests (role `Recorder`), stores every delivered message in
/// `log` until the board closes the link (QEMU exited) or `give_up` says
/// the board is gone.
///
/// # Errors
/// No Hello, the log cannot be written, or a socket error.
pub fn record_over(stream: UnixStream, log: &Path, give_up: &dyn Fn() -> bool) -> Result<Recorded> {
    let mut transport = socket_transport(stream)?;
    let mut board = wait_for_hello(&mut transport, give_up)?;
    board.seen_peer = false;
    let mut writer = LogWriter::create(log, &board)?;
    let ours = Hello::new(
        Role::Recorder,
        session(),
        board.build,
        board.guest_image,
        board.config,
    );
    let mut link = HostLink::new(ours, transport);
    let mut end = LinkEnd::default();
    loop {
        match link.poll() {
            Ok(Some(Event::Delivered(m))) => writer.append(&m)?,
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
                    break;
                }
                if idle {
                    std::thread::sleep(IDLE);
                }
            }
            Err(e) if is_closed(&e) => break,
            Err(e) => {
                writer.finish()?;
                bail!("link socket: {e}");
            }
        }
    }
    let (messages, bytes) = (writer.messages(), writer.bytes());
    writer.finish()?;
    Ok(Recorded {
        board,
        messages,
        bytes,
        end,
        stats: link.link().stats(),
    })
}

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

/// The feeder over an accepted connection: introduces itself with the
/// stored Hello's digests (role `Replayer`), sends every stored message in
/// order, then `Takeover { epoch: last + 1 }`, and keeps the link up until
/// the board closes it or `give_up` says it is gone.
///
/// # Errors
/// A socket error.
pub fn replay_over(stream: UnixStream, log: &Log, give_up: &dyn Fn() -> bool) -> Result<Fed> {
    let transport = socket_transport(stream)?;
    let ours = Hello::new(
        Role::Replayer,
        session(),
        log.hello.build,
        log.hello.guest_image,
        log.hello.config,
    );
    let mut link = HostLink::new(ours, transport);
    let takeover = Message::Takeover(Takeover {
        epoch: log.last_epoch() + 1,
        count: 0,
    });
    let total = log.messages.len() as u32;
    let mut fed = Fed::default();
    let mut takeover_seq = None;
    loop {
        // Queue what the window takes; the rest waits for acknowledgements.
        let mut closed = false;
        while fed.sent < log.messages.len() && !closed {
            match link.send(log.messages[fed.sent].clone()) {
                Ok(_) => fed.sent += 1,
                Err(SendError::WindowFull) => break,
                Err(_) => closed = true,
            }
        }
        if fed.sent == log.messages.len()
            && takeover_seq.is_none()
            && !closed
            && let Ok(seq) = link.send(takeover.clone())
        {
            takeover_seq = Some(seq);
            fed.takeover_sent = true;
        }
        match link.poll() {
            Ok(Some(Event::Delivered(_))) => fed.received += 1,
            Ok(Some(ev)) => {
                fed.end.note(&ev);
            }
            Ok(None) => {
                let stopped = !matches!(
                    link.link().state(),
                    LinkState::Handshaking | LinkState::Established
                );
                let idle = link.idle();
                if (stopped || idle) && give_up() {
                    break;
                }
                if idle {
                    std::thread::sleep(IDLE);
                }
            }
            Err(e) if is_closed(&e) => break,
            Err(e) => bail!("link socket: {e}"),
        }
        fed.acked = link.link().acked().0.min(total) as usize;
        fed.takeover_acked = takeover_seq.is_some_and(|s| link.link().is_acked(s));
    }
    fed.stats = link.link().stats();
    Ok(fed)
}

/// One record or replay board run.
pub struct BoardOptions<'a> {
    /// The hypervisor image (`image::build(ImageKind::VIRT)`).
    pub image: &'a Image,
    /// The guest bundle.
    pub bundle: &'a Path,
    /// Guest instructions per epoch (`tandem.epoch`).
    pub epoch: u64,
    /// Board RAM, QEMU `-m` syntax.
    pub memory: String,
    /// QEMU `-cpu` (model and properties).
    pub cpu: String,
    /// QEMU `-seed` and `tandem.seed`.
    pub seed: u64,
    /// Kill QEMU after this long.
    pub timeout: Duration,
    /// Echo the board's console to stdout.
    pub echo: bool,
}

/// `path` with `suffix` appended to its file name (`a.log` → `a.log.console.txt`).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A fresh socket path under `target/tandem/` (or the temp dir when that
/// path is too long for a Unix socket).
fn socket_path() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "link-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let p = paths::out_dir().join(&name);
    // sun_path holds 108 bytes with the NUL; QEMU's option parser also
    // needs the path free of commas.
    if p.as_os_str().len() < 100 && !p.to_string_lossy().contains(',') {
        p
    } else {
        std::env::temp_dir().join(name)
    }
}

/// Removes the socket file when dropped.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts a board in `mode` with its link UART on a socket we listen on,
/// runs `host` on the accepted connection (with a closure that says
/// whether QEMU has exited), and waits for QEMU. Returns QEMU's outcome and
/// the host's result, separately, so that the caller can explain one with
/// the other.
///
/// # Errors
/// The socket cannot be made, or QEMU cannot be started.
pub fn with_board<T: Send>(
    mode: &str,
    o: &BoardOptions<'_>,
    transcript: PathBuf,
    host: impl FnOnce(UnixStream, &dyn Fn() -> bool) -> Result<T> + Send,
) -> Result<(Outcome, Result<T>)> {
    let sock = socket_path();
    if let Some(dir) = sock.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&sock);
    let listener =
        UnixListener::bind(&sock).with_context(|| format!("listening on {}", sock.display()))?;
    let _cleanup = SocketFile(sock.clone());
    listener.set_nonblocking(true)?;

    let mut vars = Vars::new();
    vars.insert("IMAGE".into(), o.image.bin.display().to_string());
    vars.insert("GIC".into(), "3".into());
    vars.insert("CPU".into(), o.cpu.clone());
    vars.insert("MEM".into(), o.memory.clone());
    qemu::set_board_cmdline(
        &mut vars,
        o.seed,
        &format!("tandem.mode={mode} tandem.epoch={}", o.epoch),
    );
    vars.insert("BUNDLE".into(), o.bundle.display().to_string());
    vars.insert("LINK_SOCK".into(), sock.display().to_string());
    let run = BoardRun {
        config: "virt-link",
        vars,
        elf: Some(&o.image.elf),
        timeout: o.timeout,
        echo: o.echo,
        interactive: false,
        transcript,
        extra_args: vec![],
    };
    std::thread::scope(|s| {
        let board = s.spawn(|| runner::run(&run));
        let done = || board.is_finished();
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break Ok(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if done() {
                        break Err(anyhow!("QEMU did not connect to the link socket"));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => break Err(anyhow!(e).context("accepting the board's link connection")),
            }
        };
        let host_result = match stream {
            Ok(stream) => {
                // The accepted socket must not inherit the listener's mode
                // by accident; SocketIo sets what it needs.
                host(stream, &done)
            }
            Err(e) => Err(e),
        };
        let outcome = board
            .join()
            .map_err(|_| anyhow!("the QEMU runner thread panicked"))??;
        Ok((outcome, host_result))
    })
}

/// How the board's run ended, in words.
pub fn describe_outcome(out: &Outcome) -> String {
    out.describe()
}

/// Whether the board stopped by itself with status 0 (its exit record
/// says so: a QEMU terminated by a signal exits 0 without one).
pub fn finished(out: &Outcome) -> bool {
    out.exit_code == Some(0)
}

/// A refusal in words: for a configuration, which lanes differ (the
/// configuration digest's layout is `el2_hypervisor::replica::digest`'s).
pub fn describe_refusal(r: &Refusal) -> String {
    match r {
        Refusal::Configuration { ours, theirs } => {
            use el2_hypervisor::replica::digest::PairingConfig;
            PairingConfig::from_digest(ours)
                .differences(&PairingConfig::from_digest(theirs))
                .to_string()
        }
        other => other.to_string(),
    }
}

/// The host link's counters, in words.
pub fn describe_stats(s: &Stats) -> String {
    format!(
        "{} packets sent, {} received, {} retransmission timeouts, {} duplicates, {} gaps, {} rejected",
        s.packets_sent, s.packets_received, s.retransmissions, s.duplicates, s.gaps, s.rejected
    )
}

/// The board's own lines about the link, the replay and failures (for
/// error messages). A line the board printed while the guest was in the
/// middle of one is found inside it and cut from its start.
pub fn board_report(console: &str) -> Vec<&str> {
    const STARTS: [&str; 5] = [
        "replay:",
        "record:",
        "hypervisor: link:",
        "hypervisor: bad",
        "hypervisor: recorded",
    ];
    console
        .lines()
        .map(str::trim_end)
        .filter_map(|l| {
            let at = STARTS.iter().filter_map(|p| l.find(p)).min();
            match at {
                Some(i) => Some(&l[i..]),
                None if l.contains("PANIC") || l.contains("panicked") => Some(l),
                None => None,
            }
        })
        .collect()
}

/// A finished recording.
#[derive(Debug)]
pub struct RecordReport {
    pub outcome: Outcome,
    pub recorded: Recorded,
    /// What the log holds (read back from the file).
    pub summary: Summary,
    /// The console transcript (`FILE.console.txt`).
    pub console: PathBuf,
    /// Lines the guest printed.
    pub guest_lines: usize,
}

/// `cargo xtask record`: runs a recording board and stores its log in `log`
/// and its console in `log` + `.console.txt`.
///
/// # Errors
/// QEMU cannot start or fails, the board never pairs or stops with a
/// non-zero status, or the log cannot be written; the message says which,
/// with the board's own lines about it.
pub fn record(log: &Path, o: &BoardOptions<'_>) -> Result<RecordReport> {
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Fail before QEMU starts if the log cannot be written.
    std::fs::File::create(log).with_context(|| format!("creating the log {}", log.display()))?;
    let console = beside(log, ".console.txt");
    let (outcome, host) = with_board("record", o, console.clone(), |stream, done| {
        record_over(stream, log, done)
    })?;
    let context = || {
        let mut s = format!(
            "{}; console kept in {}",
            describe_outcome(&outcome),
            console.display()
        );
        for l in board_report(&outcome.console) {
            s.push_str("\n  board: ");
            s.push_str(l);
        }
        s
    };
    let recorded = host.with_context(context)?;
    if let Some(p) = recorded.end.problem() {
        bail!("{p}; {}", context());
    }
    if !finished(&outcome) {
        bail!("the recording failed: {}", context());
    }
    let summary = Log::read(log)?.summary();
    let guest_lines = guest_lines(&outcome.console).len();
    Ok(RecordReport {
        outcome,
        recorded,
        summary,
        console,
        guest_lines,
    })
}

/// A finished replay (whatever the board's verdict).
#[derive(Debug)]
pub struct ReplayReport {
    pub outcome: Outcome,
    pub fed: Fed,
    /// Messages in the log.
    pub messages: usize,
    /// The console transcript (`FILE.replay.console.txt`).
    pub console: PathBuf,
}

impl ReplayReport {
    /// QEMU's exit status (`None` if killed).
    pub fn status(&self) -> Option<i32> {
        self.outcome.exit_code
    }
}

/// `cargo xtask replay`: reads the log at `log`, runs a replaying board and
/// feeds it the log; the console goes to `log` + `.replay.console.txt`.
/// The board's verdict is in [`ReplayReport::status`]: 0 replay finished,
/// 6 divergence, 4 refused pairing.
///
/// # Errors
/// The log does not parse, QEMU cannot start or times out, or the socket
/// fails.
pub fn replay(log_path: &Path, o: &BoardOptions<'_>) -> Result<ReplayReport> {
    let log = Log::read(log_path)?;
    let console = beside(log_path, ".replay.console.txt");
    let (outcome, fed) = with_board("replay", o, console.clone(), |stream, done| {
        replay_over(stream, &log, done)
    })?;
    let fed = fed.with_context(|| {
        format!(
            "{}; console kept in {}",
            describe_outcome(&outcome),
            console.display()
        )
    })?;
    if outcome.timed_out {
        bail!(
            "the replay timed out after {:.0} s (fed {} of {} messages, {} acknowledged); console kept in {}",
            outcome.wall.as_secs_f64(),
            fed.sent,
            log.messages.len(),
            fed.acked,
            console.display()
        );
    }
    Ok(ReplayReport {
        outcome,
        fed,
        messages: log.messages.len(),
        console,
    })
}

/// `cargo xtask record --log FILE`: records, then prints the summary.
///
/// # Errors
/// As [`record`].
pub fn record_command(log: &Path, o: &BoardOptions<'_>) -> Result<()> {
    crate::util::step(&format!(
        "recording: epochs of {} guest instructions; log {}, console {}",
        o.epoch,
        log.display(),
        beside(log, ".console.txt").display()
    ));
    let r = record(log, o)?;
    println!(
        "record: {} ({:.1} s)",
        log.display(),
        r.outcome.wall.as_secs_f64()
    );
    println!("{}", r.summary);
    println!(
        "guest console: {} lines, kept in {}",
        r.guest_lines,
        r.console.display()
    );
    println!("link: {}", describe_stats(&r.recorded.stats));
    Ok(())
}

/// `cargo xtask replay --log FILE`: replays, prints the board's verdict,
/// and compares the guest's console with the recorded one when
/// `FILE.console.txt` exists.
///
/// # Errors
/// As [`replay`]; also a divergence (status 6), a refused pairing
/// (status 4), any other failure, or guest consoles that differ.
pub fn replay_command(log: &Path, o: &BoardOptions<'_>) -> Result<()> {
    crate::util::step(&format!(
        "replaying {}: epochs of {} guest instructions; console {}",
        log.display(),
        o.epoch,
        beside(log, ".replay.console.txt").display()
    ));
    let r = replay(log, o)?;
    println!(
        "replay: fed {} of {} messages{} ({} acknowledged) in {:.1} s; {}",
        r.fed.sent,
        r.messages,
        if r.fed.takeover_sent {
            " and the Takeover"
        } else {
            ""
        },
        r.fed.acked,
        r.outcome.wall.as_secs_f64(),
        describe_outcome(&r.outcome)
    );
    println!("link: {}", describe_stats(&r.fed.stats));
    for l in board_report(&r.outcome.console) {
        println!("  board: {l}");
    }
    match r.status() {
        Some(0) => {}
        Some(6) => bail!(
            "the replay diverged from the recording (board status 6); console kept in {}",
            r.console.display()
        ),
        Some(4) => bail!(
            "the replaying board refused the log{} (board status 4): replay with the recording's --epoch, --memory, --cpu, --seed and guest options and the same hypervisor build; console kept in {}",
            r.fed
                .end
                .refused
                .map(|x| format!(": {}", describe_refusal(&x)))
                .unwrap_or_default(),
            r.console.display()
        ),
        _ => bail!(
            "the replay failed: {}; console kept in {}",
            describe_outcome(&r.outcome),
            r.console.display()
        ),
    }
    let recorded = beside(log, ".console.txt");
    match std::fs::read_to_string(&recorded) {
        Ok(text) => {
            crate::recording::compare_consoles(&text, &r.outcome.console).map_err(|d| {
                anyhow!(
                    "the replayed guest console differs from {}: {d}",
                    recorded.display()
                )
            })?;
            println!(
                "guest console identical to the recording ({} lines)",
                guest_lines(&text).len()
            );
        }
        Err(_) => println!(
            "no {} to compare the guest console with",
            recorded.display()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_link::{EpochEnd, InputKind, LogEntry};

    /// Faster timing for the in-process tests (the protocol is the same).
    const FAST: Config = Config {
        heartbeat_interval_us: 5_000,
        retransmit_after_us: 20_000,
        hello_interval_us: 10_000,
        timeouts: Timeouts {
            suspect_after_us: 2_000_000,
            fail_after_us: 5_000_000,
        },
        batch_limit: 512,
    };

    fn board_hello(role: Role) -> Hello {
        Hello::new(role, 0xB0A2D, [7; 32], [8; 32], [9; 32])
    }

    /// A log the size of a few epochs: every kind, interrupts, and more
    /// messages than the send window so that flow control is exercised.
    fn messages(epochs: u64) -> Vec<Message> {
        let mut out = Vec::new();
        for epoch in 0..epochs {
            for i in 0..30 {
                out.push(Message::LogEntry(LogEntry {
                    epoch,
                    count: i * 1000 + epoch,
                    kind: [
                        InputKind::CounterRead,
                        InputKind::TimerRegRead,
                        InputKind::MmioRead,
                    ][(i % 3) as usize],
                    detail: if i % 3 == 2 { 4 } else { 0 },
                    source: 0x5F02 + i,
                    value: epoch << 32 | i,
                }));
            }
            out.push(Message::EpochEnd(EpochEnd {
                epoch,
                count: 100_000,
                pc: 0xffff_8000_0810_0000 + epoch * 4,
                fingerprint: epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                interrupts: [27u32, 33].as_slice().try_into().unwrap(),
            }));
        }
        out.push(Message::LogEntry(LogEntry {
            epoch: epochs,
            count: 12,
            kind: InputKind::FirmwareResult,
            detail: 0,
            source: 0x8400_0008,
            value: 0,
        }));
        out
    }

    /// A board in-process: a `Link` with the board's clock, over its end of
    /// the socket pair. Runs until `done` returns true, then closes.
    struct Board {
        link: HostLink,
    }

    impl Board {
        fn new(role: Role, stream: UnixStream) -> Self {
            Self {
                link: HostLink::with_config(
                    board_hello(role),
                    socket_transport(stream).unwrap(),
                    FAST,
                ),
            }
        }

        fn poll(&mut self) -> Option<Event> {
            match self.link.poll() {
                Ok(ev) => ev,
                Err(e) => panic!("board link: {e}"),
            }
        }
    }

    #[test]
    fn records_what_an_in_process_primary_sends() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        let sent = messages(5);
        let dir = std::env::temp_dir().join(format!("tandem-linkhost-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rec.log");
        let board_done = std::sync::atomic::AtomicBool::new(false);
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
            record_over(host_end, &path, &|| board_done.load(Ordering::SeqCst)).unwrap()
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
    fn feeds_a_log_to_an_in_process_backup() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        let log = Log {
            hello: board_hello(Role::Primary),
            messages: messages(6),
        };
        assert!(log.messages.len() > 64 * 2);
        let board_done = std::sync::atomic::AtomicBool::new(false);
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
            let fed = replay_over(host_end, &log, &|| board_done.load(Ordering::SeqCst)).unwrap();
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
    fn a_mismatched_board_is_refused_and_the_feeder_says_why() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        let mut stored = board_hello(Role::Primary);
        stored.config[0] ^= 1;
        let log = Log {
            hello: stored,
            messages: messages(1),
        };
        let board_done = std::sync::atomic::AtomicBool::new(false);
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
            replay_over(host_end, &log, &|| board_done.load(Ordering::SeqCst)).unwrap()
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

    #[test]
    fn no_hello_before_the_board_closes_is_a_clear_error() {
        let (host_end, board_end) = UnixStream::pair().unwrap();
        drop(board_end);
        let dir =
            std::env::temp_dir().join(format!("tandem-linkhost-nohello-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = record_over(host_end, &dir.join("x.log"), &|| false).unwrap_err();
        assert!(e.to_string().contains("before saying Hello"), "{e}");
        let (host_end, _board_end) = UnixStream::pair().unwrap();
        let e = record_over(host_end, &dir.join("x.log"), &|| true).unwrap_err();
        assert!(e.to_string().contains("never said Hello"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn socket_io_writes_while_the_peer_writes_too() {
        // Both ends write far more than a socket buffer holds before either
        // reads: SocketIo must keep reading while it waits to write.
        use embedded_io::{Read as _, ReadReady as _, Write as _};
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (SocketIo::new(a).unwrap(), SocketIo::new(b).unwrap());
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let t = std::thread::spawn({
            let data = data.clone();
            move || {
                b.write_all(&data).unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                while got.len() < data.len() {
                    if b.read_ready().unwrap() {
                        let n = b.read(&mut buf).unwrap();
                        got.extend_from_slice(&buf[..n]);
                    }
                }
                got
            }
        });
        a.write_all(&data).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while got.len() < data.len() {
            let n = a.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
        assert_eq!(t.join().unwrap(), data);
        drop(a);
    }

    #[test]
    fn board_report_finds_lines_inside_guest_lines() {
        let console = "[    0.000000] efi: x\n[    0.000000]replay: divergence at epoch 19 count 5\n\
            hypervisor: link: paired with a Replayer\nreplay: stopped\nguest replay: no\n";
        assert_eq!(
            board_report(console),
            [
                "replay: divergence at epoch 19 count 5",
                "hypervisor: link: paired with a Replayer",
                "replay: stopped",
                "replay: no",
            ]
        );
    }

    #[test]
    fn only_the_exit_record_says_the_board_finished() {
        let mut out = Outcome {
            exit_code: Some(0),
            qemu_exit: Some(0),
            record: Some(Some(0)),
            timed_out: false,
            console: "hypervisor: the guest powered off\n".into(),
            wall: Duration::ZERO,
            lines: vec![],
        };
        assert!(finished(&out));
        assert_eq!(
            describe_outcome(&out),
            "the board stopped with status 0 (finished)"
        );
        // QEMU terminated by a signal exits 0, but the board wrote no record.
        out.exit_code = None;
        out.record = None;
        assert!(!finished(&out));
        assert!(describe_outcome(&out).contains("without the board's exit record"));
    }

    #[test]
    fn paths_beside_the_log() {
        assert_eq!(
            beside(Path::new("/tmp/a.log"), ".console.txt"),
            Path::new("/tmp/a.log.console.txt")
        );
        let p = socket_path();
        assert!(p.as_os_str().len() < 108);
    }
}
