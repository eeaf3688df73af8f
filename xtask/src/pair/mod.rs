//! `cargo xtask pair`: two QEMU boards, a primary and a backup, joined
//! board to board (virtio-net over `-netdev stream`, or their second
//! PL011s over a chardev socket; no host program in the path), running one
//! guest replicated; kills on request; one merged guest console, each
//! board's own console kept, and a closing report (docs/pair.md).
//!
//! | module | job |
//! | --- | --- |
//! | [`kill`] | `--kill WHO@WHEN`, a seeded random epoch |
//! | [`board`] | one QEMU board: start, pid file, SIGKILL |
//! | [`watch`] | one board's console: demux, transcript, its `pair:` lines |
//! | [`merge`] | the guest console as the outside world saw it |
//! | [`report`] | the live status line and the closing report |

pub mod board;
pub mod kill;
pub mod merge;
pub mod report;
pub mod watch;

use crate::board_options::BoardOptions;
use crate::console::table_from_elf;
use crate::cpu_time::CpuSamples;
use crate::paths;
use crate::qemu::{self, Vars};
use anyhow::{Context, Result};
use board::{Board, Chunk};
use kill::{KillSpec, Trigger, Who};
use merge::Merged;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};
use watch::{Seen, Watch};

/// Which link joins the boards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LinkKind {
    /// A virtio-net NIC on each board, `-netdev stream` between them.
    Ethernet,
    /// The boards' link UARTs (virt: the second PL011s; raspi4b: the
    /// mini-UARTs), a chardev socket between them.
    Serial,
}

impl LinkKind {
    /// The QEMU config of a pair's board on `board` over this link.
    ///
    /// # Errors
    /// A link the board does not have (raspi4b has no Ethernet).
    pub fn config(self, board: crate::board::Board) -> Result<&'static str> {
        board.config(match self {
            LinkKind::Ethernet => crate::board::Use::PairEthernet,
            LinkKind::Serial => crate::board::Use::PairSerial,
        })
    }
    pub fn option(self) -> &'static str {
        match self {
            LinkKind::Ethernet => "ethernet",
            LinkKind::Serial => "serial",
        }
    }
}

/// What differs on the backup, to see a mismatched pair refused.
#[derive(Clone, Debug, Default)]
pub struct BackupOverrides {
    pub seed: Option<u64>,
    pub epoch: Option<u64>,
    /// More words for the backup's command line (`tandem.selftest=...`
    /// with a test-hooks image, for the divergence scenario).
    pub board_options: String,
}

/// Everything a pair run needs.
pub struct PairOptions<'a> {
    /// The boards' machine, guest, epoch, seed, timeout and echo (the
    /// backup's may differ: `backup`).
    pub board: BoardOptions<'a>,
    pub link: LinkKind,
    pub kills: Vec<KillSpec>,
    /// Board options: failure detection.
    pub heartbeat_ms: Option<u64>,
    pub fail_ms: Option<u64>,
    /// More words for both boards' command lines (`tandem.ack=...` from
    /// `cargo xtask bench pair`).
    pub board_options: String,
    pub backup: BackupOverrides,
    /// Where the consoles and pid files go (`target/tandem/pair`).
    pub dir: PathBuf,
}

/// How a pair run went.
pub struct PairOutcome {
    /// What each board's console said (primary first).
    pub seen: [Seen; 2],
    pub merged: Merged,
    /// The kills that happened: who, the trigger, when (since the start).
    pub kills: Vec<(Who, Trigger, Duration)>,
    /// How each QEMU ended, in words.
    pub exits: [String; 2],
    pub killed: [bool; 2],
    /// Each QEMU's peak resident memory, KiB (sampled while it ran).
    pub peak_rss_kib: [u64; 2],
    /// Each QEMU's CPU time, sampled as its console arrived (times since
    /// `start`).
    pub cpu: [CpuSamples; 2],
    pub timed_out: bool,
    pub wall: Duration,
    /// When the first board started.
    pub start: Instant,
    pub link: LinkKind,
    pub epoch: u64,
}

impl PairOutcome {
    /// The guest time of the primary's last status line (µs), if it said
    /// one: where its guest had got to, as the backup's takeover is set
    /// beside.
    pub fn primary_last_guest_us(&self) -> Option<u64> {
        self.seen[Who::Primary.index()]
            .status
            .map(|(s, _)| s.guest_us)
    }

    /// The board that ran the guest to its end (powered off, status 0).
    pub fn finisher(&self) -> Option<Who> {
        let done = |w: Who| self.seen[w.index()].status() == Some(0) && !self.killed[w.index()];
        let took_over = self.seen[Who::Backup.index()].takeover.is_some();
        if took_over && done(Who::Backup) {
            Some(Who::Backup)
        } else if !took_over && done(Who::Primary) {
            Some(Who::Primary)
        } else {
            None
        }
    }

    /// Wall time from a kill of the primary to the backup's takeover line.
    pub fn detection_wall(&self) -> Option<Duration> {
        let (_, _, killed) = self.kills.iter().find(|(w, _, _)| *w == Who::Primary)?;
        let (_, at) = self.seen[Who::Backup.index()].takeover?;
        at.duration_since(self.start).checked_sub(*killed)
    }
}

/// The default directory of a pair's files.
pub fn default_dir() -> PathBuf {
    paths::out_dir().join("pair")
}

/// Runs a pair to its end.
///
/// # Errors
/// A board cannot be started, or the files cannot be written. How the
/// boards ended is in the outcome, not an error.
pub fn run(o: &PairOptions<'_>) -> Result<PairOutcome> {
    std::fs::create_dir_all(&o.dir).with_context(|| format!("creating {}", o.dir.display()))?;
    let sock = crate::linkhost::socket::socket_path();
    remove_sockets(&sock);
    let elf = std::fs::read(&o.board.image.elf).ok();
    let table = elf.as_deref().and_then(table_from_elf);
    let mut merged = Merged::new(o.board.echo);

    let (tx, rx) = mpsc::channel::<Chunk>();
    let start = Instant::now();
    let config = o.link.config(o.board.board)?;
    let primary = Board::start(
        Who::Primary,
        config,
        &vars_for(o, Who::Primary, &sock)?,
        o.dir.join("primary.pid"),
        tx.clone(),
        start,
    )?;
    // The primary starts first (on serial it listens; the backup connects).
    wait_for_socket(&primary_socket(o.link, &sock), Duration::from_secs(10));
    let backup = Board::start(
        Who::Backup,
        config,
        &vars_for(o, Who::Backup, &sock)?,
        o.dir.join("backup.pid"),
        tx,
        start,
    )?;
    let mut boards = [primary, backup];
    let transcript = |who: Who| o.dir.join(format!("{who}.console.txt"));
    let mut watches = [
        Watch::new(
            Who::Primary,
            table.as_ref(),
            &boards[0].command_line,
            Some(&transcript(Who::Primary)),
        ),
        Watch::new(
            Who::Backup,
            table.as_ref(),
            &boards[1].command_line,
            Some(&transcript(Who::Backup)),
        ),
    ];
    let mut triggers: Vec<(Who, Trigger)> = o
        .kills
        .iter()
        .map(|k| {
            let t = kill::resolve(*k, o.board.seed, o.board.epoch);
            if k.when == kill::When::Random {
                crate::util::step(&format!(
                    "--kill {k} with seed {}: the {} dies at epoch {}",
                    o.board.seed,
                    k.who,
                    match t {
                        Trigger::Epoch(e) => e,
                        Trigger::After(_) => 0,
                    }
                ));
            }
            (k.who, t)
        })
        .collect();
    let mut kills = Vec::new();
    let mut status = report::StatusLine::new(o.board.echo);
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => {
                let w = &mut watches[chunk.who.index()];
                for ev in w.push(&chunk.bytes, chunk.at) {
                    merged.on(chunk.who, ev, &status);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        triggers.retain(|&(who, t)| {
            let due = match t {
                Trigger::Epoch(n) => watches[who.index()]
                    .seen
                    .status
                    .is_some_and(|(s, _)| s.epoch >= n),
                Trigger::After(d) => start.elapsed() >= d,
            };
            let board = &mut boards[who.index()];
            if board.poll_exit() {
                crate::util::step(&format!("the {who} ended before its kill ({t}) was due"));
                return false;
            }
            if due {
                board.kill();
                kills.push((who, t, start.elapsed()));
                merged.note(&format!("[pair] killed the {who} (SIGKILL, {t})"), &status);
            }
            !due
        });
        for b in boards.iter_mut() {
            b.poll_exit();
        }
        status.update([&watches[0].seen, &watches[1].seen]);
        if start.elapsed() > o.board.timeout {
            timed_out = true;
            for b in boards.iter_mut() {
                b.kill();
            }
        }
    }
    status.finish();
    let mut exits = [String::new(), String::new()];
    let mut killed = [false, false];
    let mut stderr = [String::new(), String::new()];
    let mut peak_rss_kib = [0, 0];
    let mut cpu = [CpuSamples::default(), CpuSamples::default()];
    for b in boards.iter_mut() {
        let i = b.who.index();
        peak_rss_kib[i] = b.peak_rss_kib;
        (stderr[i], cpu[i]) = b.finish();
        exits[i] = b.describe_exit();
        killed[i] = b.was_killed();
    }
    let [wp, wb] = watches;
    let seen = [wp.close(&stderr[0]), wb.close(&stderr[1])];
    merged.flush(&status);
    std::fs::write(o.dir.join("merged.console.txt"), merged.text())?;
    remove_sockets(&sock);
    Ok(PairOutcome {
        seen,
        merged,
        kills,
        exits,
        killed,
        peak_rss_kib,
        cpu,
        timed_out,
        wall: start.elapsed(),
        start,
        link: o.link,
        epoch: o.board.epoch,
    })
}

/// One board's QEMU variables.
fn vars_for(o: &PairOptions<'_>, who: Who, sock: &Path) -> Result<Vars> {
    let mut v = o.board.link_vars(sock)?;
    let listens = who == Who::Primary;
    let [primary_end, backup_end] = datagram_ends(sock);
    let (ours, theirs) = if listens {
        (primary_end, backup_end)
    } else {
        (backup_end, primary_end)
    };
    v.insert("NET_LOCAL".into(), ours.display().to_string());
    v.insert("NET_REMOTE".into(), theirs.display().to_string());
    v.insert(
        "CHAR_ROLE".into(),
        if listens {
            "server=on,wait=on"
        } else {
            "reconnect-ms=200"
        }
        .into(),
    );
    v.insert(
        "MAC".into(),
        format!("52:54:00:7a:00:{:02x}", who.index() + 1),
    );
    let (seed, epoch) = match who {
        Who::Primary => (o.board.seed, o.board.epoch),
        Who::Backup => (
            o.backup.seed.unwrap_or(o.board.seed),
            o.backup.epoch.unwrap_or(o.board.epoch),
        ),
    };
    let mut opts = crate::board_options::pair_words(
        &o.board.replica_options(who.name(), epoch),
        o.link.option(),
    );
    if let Some(h) = o.heartbeat_ms {
        opts.push_str(&format!(" tandem.heartbeat-ms={h}"));
    }
    if let Some(f) = o.fail_ms {
        opts.push_str(&format!(" tandem.fail-ms={f}"));
    }
    if !o.board_options.is_empty() {
        opts.push(' ');
        opts.push_str(&o.board_options);
    }
    if who == Who::Backup && !o.backup.board_options.is_empty() {
        opts.push(' ');
        opts.push_str(&o.backup.board_options);
    }
    qemu::set_board_cmdline(&mut v, seed, &opts);
    Ok(v)
}

/// The two Unix datagram sockets of an Ethernet pair's `-netdev dgram`
/// (primary's, backup's), beside `sock`: each board binds its own and sends
/// to the other's. A datagram link has no connection that a dying peer can
/// take down with it: QEMU 10.0.2's `-netdev stream` client crashed the
/// surviving backup (SIGSEGV in `object_get_class`) in some 1 of 5
/// primary kills (docs/status.md).
fn datagram_ends(sock: &Path) -> [PathBuf; 2] {
    let stem = sock.with_extension("");
    [Who::Primary, Who::Backup].map(|who| {
        let mut name = stem.as_os_str().to_owned();
        name.push(format!(".{who}.sock"));
        PathBuf::from(name)
    })
}

/// The socket whose appearance says the primary's QEMU is up: the chardev
/// socket it listens on (serial), or the datagram socket it bound (Ethernet).
fn primary_socket(link: LinkKind, sock: &Path) -> PathBuf {
    match link {
        LinkKind::Ethernet => datagram_ends(sock)[Who::Primary.index()].clone(),
        LinkKind::Serial => sock.to_path_buf(),
    }
}

fn remove_sockets(sock: &Path) {
    let _ = std::fs::remove_file(sock);
    for end in datagram_ends(sock) {
        let _ = std::fs::remove_file(end);
    }
}

fn wait_for_socket(sock: &Path, limit: Duration) {
    let start = Instant::now();
    while !sock.exists() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_board_binds_its_own_datagram_socket_beside_the_pairs() {
        let sock = Path::new("/tmp/x/link-7-0.sock");
        let [p, b] = datagram_ends(sock);
        assert_eq!(p, Path::new("/tmp/x/link-7-0.primary.sock"));
        assert_eq!(b, Path::new("/tmp/x/link-7-0.backup.sock"));
        assert_eq!(primary_socket(LinkKind::Ethernet, sock), p);
        assert_eq!(primary_socket(LinkKind::Serial, sock), sock);
        // socket_path() keeps the pair's socket under 100 bytes; both ends
        // then fit sun_path's 108 with the NUL.
        let long = PathBuf::from(format!("/{}/link-1-0.sock", "d".repeat(83)));
        assert!(long.as_os_str().len() < 100);
        for end in datagram_ends(&long) {
            assert!(end.as_os_str().len() < 108, "{}", end.display());
        }
    }
}
