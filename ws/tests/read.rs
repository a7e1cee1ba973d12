//! The reader on byte sequences a client sends: whole, split at every byte, and the ways a
//! client breaks the protocol (RFC 6455 §5, Autobahn's sections 1-7 and 9 in miniature).

use evserver_ws::frame::{apply_mask, OpCode};
use evserver_ws::{CloseCode, DeflateConfig, Incoming, ReadError, Reader, Writer};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame.
fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    let mut body = payload.to_vec();
    apply_mask(&mut body, KEY, 0);
    out.extend_from_slice(&body);
    out
}

/// Everything `reader` makes of `bytes`, fed `step` bytes at a time as a connection would.
fn feed(reader: &mut Reader, bytes: &[u8], step: usize) -> Result<Vec<Incoming>, ReadError> {
    let (mut events, mut buf) = (Vec::new(), Vec::new());
    for piece in bytes.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let (used, event) = reader.read(&buf)?;
            buf.drain(..used);
            match event {
                Some(e) => events.push(e),
                None => break,
            }
        }
    }
    Ok(events)
}

fn read_all(bytes: &[u8]) -> Result<Vec<Incoming>, ReadError> {
    let whole = feed(&mut Reader::new(1 << 20, None), bytes, bytes.len());
    for step in [1, 2, 3, 7] {
        let split = feed(&mut Reader::new(1 << 20, None), bytes, step);
        assert_eq!(split, whole, "fed {step} bytes at a time");
    }
    whole
}

#[test]
fn messages_and_control_frames() {
    let mut wire = frame(true, false, 0x1, b"Hello");
    wire.extend(frame(true, false, 0x2, &[0, 1, 2]));
    wire.extend(frame(true, false, 0x9, b"ping"));
    wire.extend(frame(true, false, 0xA, b""));
    wire.extend(frame(true, false, 0x1, &vec![b'a'; 70_000]));
    wire.extend(frame(true, false, 0x8, b"\x03\xe8bye"));
    let events = read_all(&wire).unwrap();
    assert_eq!(events.len(), 6);
    assert_eq!(events[0], Incoming::Text("Hello".into()));
    assert_eq!(events[1], Incoming::Binary(vec![0, 1, 2]));
    assert_eq!(events[2], Incoming::Ping(b"ping".to_vec()));
    assert_eq!(events[3], Incoming::Pong(vec![]));
    assert_eq!(events[4], Incoming::Text("a".repeat(70_000)));
    let Incoming::Close(close) = &events[5] else {
        panic!("{:?}", events[5]);
    };
    assert_eq!((close.code, close.reason.as_str()), (Some(1000), "bye"));
}

#[test]
fn fragments_with_a_ping_between_them_and_a_character_split_across_them() {
    let text = "κόσμε".as_bytes();
    let mut wire = frame(false, false, 0x1, &text[..3]);
    wire.extend(frame(true, false, 0x9, b"between"));
    wire.extend(frame(false, false, 0x0, &text[3..6]));
    wire.extend(frame(true, false, 0x0, &text[6..]));
    let events = read_all(&wire).unwrap();
    assert_eq!(
        events,
        [
            Incoming::Ping(b"between".to_vec()),
            Incoming::Text("κόσμε".into())
        ]
    );
}

#[test]
fn protocol_errors_fail_with_1002() {
    let unmasked = [0x81, 0x02, b'h', b'i'];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked", unmasked.to_vec()),
        ("rsv1 without deflate", frame(true, true, 0x1, b"x")),
        ("reserved opcode", frame(true, false, 0x3, b"")),
        ("continuation first", frame(true, false, 0x0, b"x")),
        ("fragmented ping", frame(false, false, 0x9, b"x")),
        ("long ping", frame(true, false, 0x9, &[0; 126])),
        ("close code 1005", frame(true, false, 0x8, b"\x03\xed")),
        ("close of one byte", frame(true, false, 0x8, b"\x03")),
        (
            "new message inside one",
            [
                frame(false, false, 0x1, b"a"),
                frame(true, false, 0x1, b"b"),
            ]
            .concat(),
        ),
    ];
    for (what, wire) in cases {
        let err = read_all(&wire).unwrap_err();
        assert_eq!(
            err.close_code(),
            CloseCode::ProtocolError,
            "{what}: {err:?}"
        );
    }
}

#[test]
fn invalid_utf8_fails_with_1007_at_the_first_bad_fragment() {
    // The first fragment is already invalid: the error comes before the message ends.
    let wire = frame(false, false, 0x1, b"ok \xff");
    let err = feed(&mut Reader::new(1 << 20, None), &wire, wire.len()).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::InvalidData);
    // A sequence left open at the end of the message.
    let err = read_all(&frame(true, false, 0x1, b"ok \xce")).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::InvalidData);
    let err = read_all(&frame(true, false, 0x8, b"\x03\xe8\xff")).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::InvalidData);
}

#[test]
fn the_size_limit_takes_a_message_of_exactly_its_size() {
    let limit = 1000;
    let exact = [
        frame(false, false, 0x2, &[1; 600]),
        frame(true, false, 0x0, &[2; 400]),
    ]
    .concat();
    let events = feed(&mut Reader::new(limit, None), &exact, 64).unwrap();
    assert!(matches!(&events[..], [Incoming::Binary(b)] if b.len() == limit));
    let over = [
        frame(false, false, 0x2, &[1; 600]),
        frame(true, false, 0x0, &[2; 401]),
    ]
    .concat();
    let err = feed(&mut Reader::new(limit, None), &over, 64).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::TooBig);
}

#[test]
fn compressed_messages_from_rfc_7692_and_from_the_writer() {
    let config = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
    };
    // §7.2.3.1 "Hello", then the same message fragmented into two frames.
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut wire = frame(true, true, 0x1, &hello);
    wire.extend(frame(false, true, 0x1, &hello[..3]));
    wire.extend(frame(true, false, 0x0, &hello[3..]));
    let mut reader = Reader::new(1 << 20, Some(&config));
    let events = feed(&mut reader, &wire, 5).unwrap();
    assert_eq!(
        events,
        [
            Incoming::Text("Hello".into()),
            Incoming::Text("Hello".into())
        ]
    );
    // What the server's writer compresses, a client's reader takes back (context kept).
    let mut writer = Writer::new(Some(&config));
    let mut reader = Reader::new(1 << 20, Some(&config));
    for n in 1..4 {
        let message = "compress me ".repeat(100 * n);
        let mut server = Vec::new();
        writer.message(&mut server, true, message.as_bytes());
        assert_eq!(server[0], 0xC1, "FIN, RSV1, text");
        // Turn the server's frame into a client's: mask it.
        let (len, at) = match server[1] {
            126 => (u16::from_be_bytes([server[2], server[3]]) as usize, 4),
            n => (n as usize, 2),
        };
        let client = frame(true, true, 0x1, &server[at..at + len]);
        let events = feed(&mut reader, &client, client.len()).unwrap();
        assert_eq!(events, [Incoming::Text(message)]);
    }
}

#[test]
fn writer_frames() {
    let mut writer = Writer::new(None);
    let mut out = Vec::new();
    writer.message(&mut out, true, b"Hello");
    assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
    out.clear();
    writer.control(&mut out, OpCode::Pong, b"Hello");
    assert_eq!(out, [0x8A, 0x05, b'H', b'e', b'l', b'l', b'o']);
    out.clear();
    writer.close(&mut out, CloseCode::GoingAway, "");
    assert_eq!(out, [0x88, 0x02, 0x03, 0xE9]);
}
