//! One byte-exact test per message, plus refusal of malformed bodies.

use super::*;

fn roundtrip(msg: &Message, expected: &[u8]) {
    let mut buf = [0u8; MAX_MESSAGE];
    let n = msg.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], expected, "encoding of {msg:?}");
    assert_eq!(n, msg.wire_size());
    assert_eq!(Message::decode_exact(expected).unwrap(), *msg);
    // Every strict prefix is a typed truncation, never a panic or a message.
    for cut in 0..n {
        let e = Message::decode(&expected[..cut]).unwrap_err();
        assert_eq!(e.reason, DecodeReason::Truncated, "cut at {cut}");
    }
}

fn hello() -> Hello {
    Hello {
        version: 1,
        role: Role::Backup,
        seen_peer: true,
        session: 0x0102_0304_0506_0708,
        build: [0xB0; 32],
        guest_image: [0x61; 32],
        config: [0xC0; 32],
    }
}

#[test]
fn hello_bytes() {
    let mut want = vec![0x01, b'T', b'N', b'D', b'M', 0x01, 0x00, 0x02, 0x01];
    want.extend_from_slice(&[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]);
    want.extend_from_slice(&[0xB0; 32]);
    want.extend_from_slice(&[0x61; 32]);
    want.extend_from_slice(&[0xC0; 32]);
    assert_eq!(want.len(), Hello::WIRE_SIZE);
    roundtrip(&Message::Hello(hello()), &want);
}

#[test]
fn hello_refuses_bad_magic_role_and_flags() {
    let mut buf = [0u8; Hello::WIRE_SIZE];
    Message::Hello(hello()).encode(&mut buf).unwrap();
    let mut bad = buf;
    bad[2] = b'X';
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        DecodeError::new(DecodeReason::BadMagic, 1)
    );
    let mut bad = buf;
    bad[7] = 9;
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        DecodeError::new(DecodeReason::UnknownRole, 7)
    );
    let mut bad = buf;
    bad[8] = 0x81;
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        DecodeError::new(DecodeReason::Reserved, 8)
    );
}

#[test]
fn log_entry_bytes() {
    let msg = Message::LogEntry(LogEntry {
        epoch: 0x11,
        count: 0x2233,
        kind: InputKind::MmioRead,
        detail: 4,
        source: 0x0900_0018,
        value: 0xFFFF_FFFF_0000_0001,
    });
    let want = [
        0x02, 0x03, 0x04, //
        0x11, 0, 0, 0, 0, 0, 0, 0, //
        0x33, 0x22, 0, 0, 0, 0, 0, 0, //
        0x18, 0x00, 0x00, 0x09, 0, 0, 0, 0, //
        0x01, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    roundtrip(&msg, &want);
    let mut bad = want;
    bad[1] = 0x7F;
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        DecodeError::new(DecodeReason::UnknownInputKind, 1)
    );
}

#[test]
fn epoch_end_bytes() {
    let msg = Message::EpochEnd(EpochEnd {
        epoch: 7,
        count: 1_000_000,
        pc: 0xFFFF_8000_0801_0000,
        fingerprint: 0xDEAD_BEEF_CAFE_F00D,
        time: 0x0123_4567_89AB_CDEF,
        interrupts: Vec::from_slice(&[27, 33]).unwrap(),
    });
    let mut want = vec![0x03, 7, 0, 0, 0, 0, 0, 0, 0];
    want.extend_from_slice(&1_000_000u64.to_le_bytes());
    want.extend_from_slice(&[0x00, 0x00, 0x01, 0x08, 0x00, 0x80, 0xFF, 0xFF]);
    want.extend_from_slice(&[0x0D, 0xF0, 0xFE, 0xCA, 0xEF, 0xBE, 0xAD, 0xDE]);
    want.extend_from_slice(&[0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01]);
    want.extend_from_slice(&[2, 27, 0, 0, 0, 33, 0, 0, 0]);
    assert_eq!(want.len(), EpochEnd::HEADER_SIZE + 8);
    roundtrip(&msg, &want);
    let mut bad = want.clone();
    bad[41] = 17;
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        DecodeError::new(DecodeReason::TooManyInterrupts, 41)
    );
}

#[test]
fn epoch_end_full_interrupt_list() {
    let msg = Message::EpochEnd(EpochEnd {
        epoch: 1,
        count: 2,
        pc: 3,
        fingerprint: 4,
        time: 5,
        interrupts: (0..16).map(|i| 1000 + i).collect(),
    });
    let mut buf = [0u8; 128];
    let n = msg.encode(&mut buf).unwrap();
    assert_eq!(n, EpochEnd::HEADER_SIZE + 64);
    assert_eq!(Message::decode_exact(&buf[..n]).unwrap(), msg);
}

#[test]
fn ack_bytes() {
    roundtrip(
        &Message::Ack(Ack { up_to: 0x0102_0304 }),
        &[0x04, 4, 3, 2, 1],
    );
}

#[test]
fn heartbeat_bytes() {
    roundtrip(
        &Message::Heartbeat(Heartbeat {
            time_us: 0x0A0B,
            epoch: 0x0C,
        }),
        &[
            0x05, 0x0B, 0x0A, 0, 0, 0, 0, 0, 0, 0x0C, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
}

#[test]
fn takeover_bytes() {
    roundtrip(
        &Message::Takeover(Takeover {
            epoch: 0x99,
            count: 0x1_0000_0000,
        }),
        &[0x06, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    );
}

#[test]
fn released_bytes() {
    roundtrip(
        &Message::Released(Released {
            output: 0x0102_0304_0506_0708,
        }),
        &[0x08, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01],
    );
    assert_eq!(Released::WIRE_SIZE, 9);
}

#[test]
fn state_chunk_bytes() {
    let msg = Message::StateChunk(StateChunk {
        transfer: 5,
        offset: 4096,
        total: 8192,
        data: Vec::from_slice(&[0xAA, 0xBB, 0xCC]).unwrap(),
    });
    let want = [
        0x07, 5, 0, 0, 0, //
        0x00, 0x10, 0, 0, 0, 0, 0, 0, //
        0x00, 0x20, 0, 0, 0, 0, 0, 0, //
        3, 0, 0xAA, 0xBB, 0xCC,
    ];
    roundtrip(&msg, &want);
    // A chunk reaching past the transfer's end.
    let mut bad = want;
    bad[14] = 0x10; // total = 4096
    assert_eq!(
        Message::decode(&bad).unwrap_err(),
        DecodeError::new(DecodeReason::BadChunk, 21)
    );
    // A chunk longer than the maximum.
    let mut bad = want;
    bad[21] = 0x01;
    bad[22] = 0x04; // n = 1025
    assert_eq!(
        Message::decode(&bad).unwrap_err().reason,
        DecodeReason::BadChunk
    );
}

#[test]
fn state_chunk_offset_overflow_is_refused() {
    let mut buf = [0u8; 32];
    let msg = Message::StateChunk(StateChunk {
        transfer: 0,
        offset: u64::MAX - 1,
        total: u64::MAX,
        data: Vec::from_slice(&[1]).unwrap(),
    });
    let n = msg.encode(&mut buf).unwrap();
    assert_eq!(Message::decode_exact(&buf[..n]).unwrap(), msg);
    buf[22 - 1] = 2; // n = 2: offset + n overflows past total
    assert_eq!(
        Message::decode(&buf[..n + 1]).unwrap_err().reason,
        DecodeReason::BadChunk
    );
}

#[test]
fn unknown_tag_and_trailing_bytes() {
    assert_eq!(
        Message::decode(&[0x00]).unwrap_err(),
        DecodeError::new(DecodeReason::UnknownTag, 0)
    );
    assert_eq!(
        Message::decode(&[]).unwrap_err(),
        DecodeError::new(DecodeReason::Truncated, 0)
    );
    assert_eq!(
        Message::decode_exact(&[0x04, 0, 0, 0, 0, 0xFF]).unwrap_err(),
        DecodeError::new(DecodeReason::TrailingBytes, 5)
    );
}

#[test]
fn encode_reports_needed_size() {
    let mut buf = [0u8; 10];
    let msg = Message::Takeover(Takeover { epoch: 1, count: 2 });
    assert_eq!(
        msg.encode(&mut buf),
        Err(EncodeError::BufferTooSmall { needed: 17 })
    );
}

#[test]
fn sequenced_classes() {
    assert!(!Message::Ack(Ack { up_to: 0 }).is_sequenced());
    assert!(!Message::Hello(hello()).is_sequenced());
    assert!(Message::Takeover(Takeover { epoch: 0, count: 0 }).is_sequenced());
    assert!(Message::Released(Released { output: 0 }).is_sequenced());
}

#[test]
fn every_tag_byte_is_known_or_refused() {
    // The tags of this version are 0x01..=0x08; every other byte is a typed
    // refusal (a peer of a later version is refused at the handshake).
    for t in 0..=u8::MAX {
        let mut buf = [0u8; MAX_MESSAGE];
        buf[0] = t;
        let known = (0x01..=0x08).contains(&t);
        let got = Message::decode(&buf);
        if !known {
            assert_eq!(
                got.unwrap_err(),
                DecodeError::new(DecodeReason::UnknownTag, 0)
            );
        } else if let Ok((m, _)) = got {
            assert_eq!(m.tag() as u8, t);
        }
    }
}
