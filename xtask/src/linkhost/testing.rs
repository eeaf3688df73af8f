//! What the recorder's and the feeder's tests share: an in-process board
//! on the other end of a socket pair, faster link timing, and a log's
//! worth of messages.

use super::link::HostLink;
use super::socket::socket_transport;
use replication_link::{
    Config, EpochEnd, Event, Hello, InputKind, LogEntry, Message, Released, Role, Timeouts,
};
use std::os::unix::net::UnixStream;

/// Faster timing for the in-process tests (the protocol is the same).
pub(super) const FAST: Config = Config {
    heartbeat_interval_us: 5_000,
    retransmit_after_us: 20_000,
    hello_interval_us: 10_000,
    timeouts: Timeouts {
        suspect_after_us: 2_000_000,
        fail_after_us: 5_000_000,
    },
    batch_limit: 512,
    ack_delay_us: 0,
    window_bytes: replication_link::DEFAULT_WINDOW_BYTES,
};

pub(super) fn board_hello(role: Role) -> Hello {
    Hello::new(role, 0xB0A2D, [7; 32], [8; 32], [9; 32])
}

/// A log the size of a few epochs: every kind, interrupts, a `Released`
/// mark per epoch, and more messages than the send window so that flow
/// control is exercised.
pub(super) fn messages(epochs: u64) -> Vec<Message> {
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
            time: (epoch + 1) * 6_250,
            interrupts: [27u32, 33].as_slice().try_into().unwrap(),
        }));
        // The live pair's output mark: stored and fed like any other.
        out.push(Message::Released(Released { output: epoch * 80 }));
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
pub(super) struct Board {
    pub(super) link: HostLink,
}

impl Board {
    pub(super) fn new(role: Role, stream: UnixStream) -> Self {
        Self {
            link: HostLink::with_config(board_hello(role), socket_transport(stream).unwrap(), FAST),
        }
    }

    pub(super) fn poll(&mut self) -> Option<Event> {
        match self.link.poll() {
            Ok(ev) => ev,
            Err(e) => panic!("board link: {e}"),
        }
    }
}
