//! The Unix-socket transport under the host link: a non-blocking
//! `embedded-io` byte stream over a [`UnixStream`], the packet transport
//! on top of it, and the socket file QEMU connects the link UART to.

use crate::paths;
use replication_link::{StreamTransport, TransportError};
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long the host loops sleep when the socket had nothing for them.
pub(super) const IDLE: Duration = Duration::from_micros(200);

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
pub(super) fn is_closed(e: &TransportError<io::Error>) -> bool {
    match e {
        TransportError::Closed => true,
        TransportError::Io(e) => matches!(
            e.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::NotConnected
        ),
        _ => false,
    }
}

/// A fresh socket path under `target/tandem/` (or the temp dir when that
/// path is too long for a Unix socket).
pub(crate) fn socket_path() -> PathBuf {
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
pub(super) struct SocketFile(pub(super) PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
