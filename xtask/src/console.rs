//! The board's console stream, as the host sees it: plain text from the
//! hypervisor and the guest, with the hypervisor's defmt log frames mixed
//! in. A frame starts with 0xFF (see el2-hypervisor's arch logger) and ends
//! with 0x00 (rzCOBS). This module splits the stream and decodes the frames
//! with defmt's own decoder, so the user reads plain lines.

use defmt_decoder::{DecodeError, StreamDecoder, Table};

const FRAME_MARKER: u8 = 0xff;

/// Splits console bytes into text and defmt frames.
#[derive(Default)]
pub struct Demux {
    in_frame: bool,
    frame: Vec<u8>,
}

/// A piece of the console stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u8>),
    /// One complete defmt frame, including its 0x00 terminator.
    Frame(Vec<u8>),
}

impl Demux {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut text = Vec::new();
        for &b in bytes {
            if self.in_frame {
                if b == 0 && self.frame.is_empty() {
                    // defmt's rzCOBS encoder sends one 0x00 before its very
                    // first frame (a separator): not a frame.
                    continue;
                }
                self.frame.push(b);
                if b == 0 {
                    self.in_frame = false;
                    out.push(Piece::Frame(std::mem::take(&mut self.frame)));
                }
            } else if b == FRAME_MARKER {
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                self.in_frame = true;
            } else if b != b'\r' {
                text.push(b);
            }
        }
        if !text.is_empty() {
            out.push(Piece::Text(text));
        }
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
}
