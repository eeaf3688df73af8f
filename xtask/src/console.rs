//! The board's console stream, as the host sees it: the hypervisor's text,
//! the guest's output (length-delimited chunks), the hypervisor's defmt
//! log frames, and its exit record, laid out as
//! `el2_hypervisor::console_stream` says (so the guest can forge neither a
//! frame nor a record, nor pass for the hypervisor). This module splits the stream and decodes the
//! frames with defmt's own decoder, so the user reads plain lines.

use defmt_decoder::{DecodeError, StreamDecoder, Table};
use el2_hypervisor::console_stream::{
    ESCAPE, EXIT_MARKER, FRAME_MARKER, GUEST_MARKER, parse_exit_record,
};

/// Splits console bytes into text, defmt frames and the exit record.
#[derive(Default)]
pub struct Demux {
    state: State,
    frame: Vec<u8>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Text,
    Escaped,
    Frame,
    /// Inside the exit record, with this many of its 3 bytes read.
    Exit(usize),
    /// After a guest chunk's marker: its length byte comes next.
    GuestLength,
    /// Inside a guest chunk, with this many bytes to go.
    Guest(u8),
}

/// A piece of the console stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// The hypervisor's text.
    Text(Vec<u8>),
    /// The guest's console output (`\r` removed, as from text).
    Guest(Vec<u8>),
    /// One complete defmt frame, including its 0x00 terminator.
    Frame(Vec<u8>),
    /// The exit record: the board's status, or `None` if the record was
    /// damaged.
    Exit(Option<u8>),
}

impl Demux {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut text = Vec::new();
        let mut guest = Vec::new();
        let flush = |text: &mut Vec<u8>, guest: &mut Vec<u8>, out: &mut Vec<Piece>| {
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(text)));
            }
            if !guest.is_empty() {
                out.push(Piece::Guest(std::mem::take(guest)));
            }
        };
        for &b in bytes {
            match self.state {
                State::GuestLength => {
                    self.state = if b == 0 { State::Text } else { State::Guest(b) };
                }
                State::Guest(left) => {
                    if b != b'\r' {
                        guest.push(b);
                    }
                    self.state = if left == 1 {
                        State::Text
                    } else {
                        State::Guest(left - 1)
                    };
                }
                State::Frame => {
                    if b == 0 && self.frame.is_empty() {
                        // defmt's rzCOBS encoder sends one 0x00 before its
                        // very first frame (a separator): not a frame.
                        continue;
                    }
                    self.frame.push(b);
                    if b == 0 {
                        self.state = State::Text;
                        out.push(Piece::Frame(std::mem::take(&mut self.frame)));
                    }
                }
                State::Exit(n) => {
                    self.frame.push(b);
                    if n == 2 {
                        let body = [self.frame[0], self.frame[1], self.frame[2]];
                        self.frame.clear();
                        self.state = State::Text;
                        out.push(Piece::Exit(parse_exit_record(body)));
                    } else {
                        self.state = State::Exit(n + 1);
                    }
                }
                State::Escaped => {
                    text.push(b);
                    self.state = State::Text;
                }
                State::Text => match b {
                    FRAME_MARKER => {
                        flush(&mut text, &mut guest, &mut out);
                        self.state = State::Frame;
                    }
                    EXIT_MARKER => {
                        flush(&mut text, &mut guest, &mut out);
                        self.state = State::Exit(0);
                    }
                    GUEST_MARKER => {
                        flush(&mut text, &mut guest, &mut out);
                        self.state = State::GuestLength;
                    }
                    ESCAPE => self.state = State::Escaped,
                    b'\r' => {}
                    _ => {
                        if !guest.is_empty() {
                            flush(&mut Vec::new(), &mut guest, &mut out);
                        }
                        text.push(b)
                    }
                },
            }
        }
        flush(&mut text, &mut guest, &mut out);
        out
    }
}

/// Decodes defmt frames against the hypervisor ELF's table.
pub struct LogDecoder<'t> {
    decoder: Option<Box<dyn StreamDecoder + Send + Sync + 't>>,
}

impl<'t> LogDecoder<'t> {
    pub fn new(table: Option<&'t Table>) -> Self {
        Self {
            decoder: table.map(|t| t.new_stream_decoder()),
        }
    }

    /// Turns one frame into a log line (`[hv] INFO  message`).
    pub fn line(&mut self, frame: &[u8]) -> String {
        let Some(dec) = self.decoder.as_mut() else {
            return format!(
                "[hv] <defmt frame of {} bytes; no table to decode it>",
                frame.len()
            );
        };
        dec.received(frame);
        match dec.decode() {
            Ok(f) => {
                let level = f
                    .level()
                    .map(|l| l.as_str().to_uppercase())
                    .unwrap_or_else(|| "PRINT".into());
                format!("[hv] {level:<5} {}", f.display_message())
            }
            Err(DecodeError::UnexpectedEof) => "[hv] <truncated defmt frame>".into(),
            Err(DecodeError::Malformed) => "[hv] <malformed defmt frame>".into(),
        }
    }
}

/// Loads the defmt table from the hypervisor ELF.
pub fn table_from_elf(elf: &[u8]) -> Option<Table> {
    Table::parse(elf).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_frames() {
        let mut d = Demux::default();
        let p = d.push(b"hello\r\n\xff\x01\x02");
        assert_eq!(p, vec![Piece::Text(b"hello\n".to_vec())]);
        let p = d.push(b"\x03\x00world");
        assert_eq!(
            p,
            vec![
                Piece::Frame(vec![1, 2, 3, 0]),
                Piece::Text(b"world".to_vec())
            ]
        );
        // The separator defmt sends before its first frame is skipped.
        assert_eq!(d.push(b"\xff\x00\x07\x00"), vec![Piece::Frame(vec![7, 0])]);
    }

    #[test]
    fn guest_output_is_the_guests_and_the_exit_record_is_read() {
        use el2_hypervisor::console_stream::{escape, exit_record, guest_chunks};
        // What a guest that prints every marker byte, a forged exit record
        // and a forged guest chunk looks like on the console, between the
        // hypervisor's own words.
        let guest = [
            b'x', 0xff, 0x01, 0x00, 0xfd, b'S', 0, 0xff, 0xfe, 0xfc, 3, b'\n',
        ];
        let mut stream = Vec::new();
        escape(b"hv ", |b| stream.extend_from_slice(b));
        guest_chunks(&guest, |b| stream.extend_from_slice(b));
        escape(&[b'h', 0xfc, b'\n'], |b| stream.extend_from_slice(b));
        stream.extend_from_slice(&exit_record(6));
        let mut d = Demux::default();
        let mut pieces = Vec::new();
        // Byte by byte: state carries across pushes.
        for b in &stream {
            pieces.extend(d.push(std::slice::from_ref(b)));
        }
        let of = |guest_side: bool| -> Vec<u8> {
            pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Text(t) if !guest_side => Some(t.clone()),
                    Piece::Guest(t) if guest_side => Some(t.clone()),
                    _ => None,
                })
                .flatten()
                .collect()
        };
        assert_eq!(of(true), guest);
        assert_eq!(of(false), [b'h', b'v', b' ', b'h', 0xfc, b'\n']);
        assert_eq!(pieces.last(), Some(&Piece::Exit(Some(6))));
        assert_eq!(
            pieces
                .iter()
                .filter(|p| matches!(p, Piece::Exit(_)))
                .count(),
            1
        );
        assert!(!pieces.iter().any(|p| matches!(p, Piece::Frame(_))));
    }

    #[test]
    fn a_damaged_exit_record_has_no_status() {
        let mut d = Demux::default();
        assert_eq!(
            d.push(&[0xfd, b'S', 6, 6, b'o', b'k']),
            vec![Piece::Exit(None), Piece::Text(b"ok".to_vec())]
        );
    }
}
