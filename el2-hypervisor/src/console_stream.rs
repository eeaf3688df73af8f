//! The board's console stream: what goes out on the console UART, and the
//! one place that says how the host tells the hypervisor's words from the
//! guest's.
//!
//! The console carries four things, and the guest controls one of them:
//!
//! | bytes | what |
//! | --- | --- |
//! | `0xFF` frame `0x00` | a defmt log frame of the hypervisor (rzCOBS, ends with `0x00`) |
//! | `0xFD 'S' s !s` | the hypervisor's exit record: the board stops with status `s` ([`crate::exit::ExitStatus`]) |
//! | `0xFC n b1 .. bn` | `n` (1 to 255) bytes of the guest's console output, as the guest wrote them ([`guest_chunks`]) |
//! | `0xFE b` | one byte `b` (`0xFC` to `0xFF`) of the hypervisor's text, escaped |
//! | any other byte | the hypervisor's own text |
//!
//! The guest's bytes travel length-delimited, so whatever they hold they
//! end where the length says: a guest cannot start a frame or an exit
//! record, so it cannot forge a log line or the board's exit status, and
//! the host can tell the guest's console (what a pair shows the user as
//! the guest's output) from the hypervisor's words about it. The
//! hypervisor's text goes through [`escape`]. Under QEMU the exit record is how the exit
//! status reaches the host: PSCI `SYSTEM_OFF` always makes QEMU exit 0, and
//! semihosting, the other way out, is a door into the host that the guest
//! could use too (docs/design.md, "Exit status").

/// Starts a defmt frame.
pub const FRAME_MARKER: u8 = 0xff;
/// The next byte is text, whatever its value.
pub const ESCAPE: u8 = 0xfe;
/// Starts the exit record.
pub const EXIT_MARKER: u8 = 0xfd;
/// The exit record's second byte.
pub const EXIT_TAG: u8 = b'S';
/// Starts a chunk of guest output: a length byte, then that many bytes.
pub const GUEST_MARKER: u8 = 0xfc;

/// Whether a byte of the hypervisor's text must be escaped.
pub const fn needs_escape(byte: u8) -> bool {
    byte >= GUEST_MARKER
}

/// Writes the guest's output as chunks of at most 255 bytes, each
/// `GUEST_MARKER, n`, then the `n` bytes unchanged.
pub fn guest_chunks(bytes: &[u8], mut out: impl FnMut(&[u8])) {
    for chunk in bytes.chunks(usize::from(u8::MAX)) {
        // `chunks(255)` makes every chunk 1..=255 bytes long.
        out(&[GUEST_MARKER, chunk.len() as u8]);
        out(chunk);
    }
}

/// Writes text bytes, escaping the ones that mean something else.
pub fn escape(bytes: &[u8], mut out: impl FnMut(&[u8])) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let plain = rest
            .iter()
            .position(|&b| needs_escape(b))
            .unwrap_or(rest.len());
        if plain > 0 {
            out(&rest[..plain]);
        }
        if let Some(&b) = rest.get(plain) {
            out(&[ESCAPE, b]);
            rest = &rest[plain + 1..];
        } else {
            rest = &[];
        }
    }
}

/// The exit record for `status`.
pub const fn exit_record(status: u8) -> [u8; 4] {
    [EXIT_MARKER, EXIT_TAG, status, !status]
}

/// Reads the status out of the three bytes after [`EXIT_MARKER`]; `None`
/// if they are not a well-formed record.
pub const fn parse_exit_record(body: [u8; 3]) -> Option<u8> {
    if body[0] == EXIT_TAG && body[1] == !body[2] {
        Some(body[1])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(bytes: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        escape(bytes, |b| v.extend_from_slice(b));
        v
    }

    #[test]
    fn plain_text_passes_unchanged() {
        assert_eq!(escaped(b"hello\n"), b"hello\n");
    }

    #[test]
    fn marker_bytes_are_escaped() {
        assert_eq!(
            escaped(&[b'a', 0xff, 0x00, 0xfd, b'S', 0, 0xff, 0xfe, 0xfc, 0xfb]),
            [
                b'a', ESCAPE, 0xff, 0x00, ESCAPE, 0xfd, b'S', 0, ESCAPE, 0xff, ESCAPE, 0xfe,
                ESCAPE, 0xfc, 0xfb
            ]
        );
    }

    #[test]
    fn no_escaped_stream_holds_an_unescaped_marker() {
        // Every byte value, alone and in a run: after escaping, each marker
        // byte is preceded by an escape that is not itself escaped.
        let all: Vec<u8> = (0..=255).collect();
        let out = escaped(&all);
        let mut i = 0;
        while i < out.len() {
            if out[i] == ESCAPE {
                assert!(needs_escape(out[i + 1]));
                i += 2;
            } else {
                assert!(!needs_escape(out[i]), "bare {:#x} at {i}", out[i]);
                i += 1;
            }
        }
    }

    #[test]
    fn guest_output_is_length_delimited() {
        let mut v = Vec::new();
        let bytes: Vec<u8> = (0..600u32).map(|i| (i % 256) as u8).collect();
        guest_chunks(&bytes, |b| v.extend_from_slice(b));
        // 255 + 255 + 90, each behind its two-byte header.
        assert_eq!(v.len(), 600 + 3 * 2);
        assert_eq!(&v[..2], &[GUEST_MARKER, 255]);
        assert_eq!(&v[257..259], &[GUEST_MARKER, 255]);
        assert_eq!(&v[514..516], &[GUEST_MARKER, 90]);
        let mut back = Vec::new();
        back.extend_from_slice(&v[2..257]);
        back.extend_from_slice(&v[259..514]);
        back.extend_from_slice(&v[516..]);
        assert_eq!(back, bytes);
        let mut none = Vec::new();
        guest_chunks(&[], |b| none.extend_from_slice(b));
        assert!(none.is_empty());
    }

    #[test]
    fn exit_record_round_trips_and_rejects_damage() {
        for s in 0..=255u8 {
            let r = exit_record(s);
            assert_eq!(r[0], EXIT_MARKER);
            assert_eq!(parse_exit_record([r[1], r[2], r[3]]), Some(s));
        }
        assert_eq!(parse_exit_record([b'S', 6, 6]), None);
        assert_eq!(parse_exit_record([b'T', 6, !6]), None);
    }
}
