//! Starting a record or replay board: QEMU's `virt-link` configuration
//! with the board's link UART on a Unix socket the host listens on, the
//! host's end run on the accepted connection, and the wait for QEMU.

use super::socket::{SocketFile, socket_path};
use crate::board_options::BoardOptions;
use crate::qemu;
use crate::runner::{self, BoardRun, Outcome};
use anyhow::{Context, Result, anyhow};
use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

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

    let mut vars = o.link_vars(&sock)?;
    qemu::set_board_cmdline(&mut vars, o.seed, &o.replica_options(mode, o.epoch));
    let run = BoardRun {
        config: o.board.config(crate::board::Use::Link)?,
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
