//! One fan-out subscriber on plain bytes: the request it opens with, and what the server's
//! bytes mean (ready, a delivery with its sequence number and send time, the next long-poll
//! request, a ping to answer, a failure). No socket here: fixture-tested.

use super::marker::{Marker, Scanner};
use crate::response::ResponseParser;

/// How a subscriber listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket: each message a frame.
    Ws,
    /// Server-sent events: one long response.
    Sse,
    /// Long-poll, the COMET toolkit's way: `GET URL?last_id=ID`, one message per response.
    Poll,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Poll => "poll",
        }
    }
}

/// What the server's bytes meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Subscribed: the handshake or the stream's head arrived (long-poll: the request went).
    Ready,
    /// A published message arrived.
    Delivery(Marker),
    /// Bytes to send: the next long-poll request, or a pong.
    Send(Vec<u8>),
    /// The subscription broke (why); the run counts it.
    Failed(String),
}

enum Phase {
    /// Waiting for the response head (the `101`, or the stream's `200`).
    Head(Vec<u8>),
    /// WebSocket frames.
    Frames(FrameReader),
    /// The event stream's body.
    Stream,
    /// Long-poll responses, one after the other.
    Polling(ResponseParser),
    Broken,
}

/// One subscriber's protocol state.
pub struct Subscriber {
    transport: Transport,
    host: String,
    path: String,
    phase: Phase,
    scanner: Scanner,
    /// Long-poll: the channel id of the last message (the next request asks for newer).
    last_id: Option<u64>,
}

/// The WebSocket key every subscriber sends (the server's accept value is not checked).
const WS_KEY: &str = "ZXZzZXJ2ZXIgYmVuY2ghIQ==";

impl Subscriber {
    pub fn new(transport: Transport, host: &str, path: &str) -> Subscriber {
        let phase = match transport {
            Transport::Poll => Phase::Polling(ResponseParser::new(false)),
            _ => Phase::Head(Vec::new()),
        };
        Subscriber {
            transport,
            host: host.to_string(),
            path: path.to_string(),
            phase,
            scanner: Scanner::default(),
            last_id: None,
        }
    }

    /// The bytes that open the subscription.
    pub fn opening(&self) -> Vec<u8> {
        let (host, path) = (&self.host, &self.path);
        match self.transport {
            Transport::Ws => format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n"
            )
            .into_bytes(),
            Transport::Sse => format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
                 Cache-Control: no-cache\r\n\r\n"
            )
            .into_bytes(),
            Transport::Poll => self.poll_request(),
        }
    }

    fn poll_request(&self) -> Vec<u8> {
        let (host, path) = (&self.host, &self.path);
        let target = match self.last_id {
            Some(id) => {
                let joint = if path.contains('?') { '&' } else { '?' };
                format!("{path}{joint}last_id={id}")
            }
            None => path.clone(),
        };
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
    }

    /// Whether the subscription is ready once its opening bytes are sent (long-poll).
    pub fn ready_when_sent(&self) -> bool {
        self.transport == Transport::Poll
    }

    /// Feeds received bytes; `event` gets what they meant, in order.
    pub fn feed(&mut self, data: &[u8], mut event: impl FnMut(Event)) {
        match &mut self.phase {
            Phase::Head(head) => {
                head.extend_from_slice(data);
                let Some(end) = find(head, b"\r\n\r\n") else {
                    if head.len() > 64 * 1024 {
                        self.fail("a response head over 64 KiB", &mut event);
                    }
                    return;
                };
                let wanted: &[u8] = match self.transport {
                    Transport::Ws => b"HTTP/1.1 101",
                    _ => b"HTTP/1.1 200",
                };
                if !head.starts_with(wanted) {
                    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                    let why = format!("answered {:?}", String::from_utf8_lossy(line));
                    return self.fail(&why, &mut event);
                }
                let rest = head.split_off(end + 4);
                self.phase = match self.transport {
                    Transport::Ws => Phase::Frames(FrameReader::default()),
                    _ => Phase::Stream,
                };
                event(Event::Ready);
                self.feed(&rest, event);
            }
            Phase::Frames(frames) => {
                let scanner = &mut self.scanner;
                let mut failure = None;
                frames.feed(data, |frame| match frame {
                    Frame::Data(payload) => scanner.scan(payload, |m| event(Event::Delivery(m))),
                    Frame::Ping(payload) => event(Event::Send(masked_frame(0xA, payload))),
                    Frame::Close => failure = Some("the server closed the WebSocket"),
                });
                if let Some(why) = failure {
                    self.fail(why, &mut event);
                }
            }
            Phase::Stream => self.scanner.scan(data, |m| event(Event::Delivery(m))),
            Phase::Polling(parser) => {
                let mut completed = 0;
                let mut bad_status = None;
                let parsed = parser.feed(data, |status| {
                    completed += 1;
                    if status != 200 {
                        bad_status = Some(status);
                    }
                });
                self.scanner.scan(data, |m| event(Event::Delivery(m)));
                if let Some(id) = [&b"\"id\": "[..], b"\"last_id\": "]
                    .iter()
                    .filter_map(|key| last_number_after(data, key))
                    .max()
                {
                    self.last_id = Some(self.last_id.map_or(id, |old| old.max(id)));
                }
                if let Err(e) = parsed {
                    return self.fail(e.0, &mut event);
                }
                if let Some(status) = bad_status {
                    return self.fail(&format!("a poll answered {status}"), &mut event);
                }
                for _ in 0..completed {
                    event(Event::Send(self.poll_request()));
                }
            }
            Phase::Broken => {}
        }
    }

    fn fail(&mut self, why: &str, event: &mut impl FnMut(Event)) {
        self.phase = Phase::Broken;
        event(Event::Failed(why.to_string()));
    }
}

/// A client frame (masked, as RFC 6455 wants): a text message or a pong.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x65, 0x76, 0x62, 0x21];
    let mut out = vec![0x80 | opcode];
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The number after the last `key` in `data` (long-poll answers: `"id": 7`).
fn last_number_after(data: &[u8], key: &[u8]) -> Option<u64> {
    let mut found = None;
    let mut at = 0;
    while let Some(i) = find(&data[at..], key) {
        let start = at + i + key.len();
        let digits = data[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if let Some(n) = std::str::from_utf8(&data[start..start + digits])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            found = Some(n);
        }
        at = start;
    }
    found
}

/// A server frame, as the subscriber cares about it.
enum Frame<'a> {
    Data(&'a [u8]),
    Ping(&'a [u8]),
    Close,
}

/// Server frames (unmasked) from a byte stream cut anywhere.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    fn feed(&mut self, data: &[u8], mut frame: impl FnMut(Frame<'_>)) {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        while let Some((opcode, start, end)) = frame_at(&self.buf[at..]) {
            let payload = &self.buf[at + start..at + end];
            match opcode {
                0x0..=0x2 => frame(Frame::Data(payload)),
                0x8 => frame(Frame::Close),
                0x9 => frame(Frame::Ping(payload)),
                _ => {}
            }
            at += end;
        }
        self.buf.drain(..at);
    }
}

/// The frame at the start of `b`: (opcode, payload start, frame end), once it is all there.
fn frame_at(b: &[u8]) -> Option<(u8, usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (opcode, short) = (b[0] & 0x0F, (b[1] & 0x7F) as usize);
    let (len, start): (usize, usize) = match short {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (usize::try_from(u64::from_be_bytes(n)).ok()?, 10)
        }
        126 | 127 => return None,
        n => (n, 2),
    };
    let end = start.checked_add(len)?;
    (b.len() >= end).then_some((opcode, start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(s: &mut Subscriber, data: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        s.feed(data, |e| out.push(e));
        out
    }

    fn delivery(seq: u64, sent_ns: u64) -> Event {
        Event::Delivery(Marker { seq, sent_ns })
    }

    #[test]
    fn a_websocket_subscriber_reads_frames_cut_anywhere_and_answers_pings() {
        let mut s = Subscriber::new(Transport::Ws, "h", "/ws");
        assert!(String::from_utf8(s.opening())
            .unwrap()
            .contains("Upgrade: websocket"));
        let mut stream = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        stream.extend_from_slice(&[0x81, 12]);
        stream.extend_from_slice(b"evb:1:2000;x");
        stream.extend_from_slice(&[0x89, 2, b'h', b'i']);
        stream.extend_from_slice(&[0x82, 126, 0, 13]);
        stream.extend_from_slice(b"evb:2:30000;y");
        let mut all = Vec::new();
        for piece in stream.chunks(3) {
            all.extend(events(&mut s, piece));
        }
        assert_eq!(
            all,
            vec![
                Event::Ready,
                delivery(1, 2000),
                Event::Send(masked_frame(0xA, b"hi")),
                delivery(2, 30000),
            ]
        );
        assert_eq!(
            events(&mut s, &[0x88, 0]),
            vec![Event::Failed("the server closed the WebSocket".into())]
        );
    }

    #[test]
    fn a_refused_upgrade_fails_with_the_status_line() {
        let mut s = Subscriber::new(Transport::Ws, "h", "/ws");
        assert_eq!(
            events(
                &mut s,
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
            ),
            vec![Event::Failed(
                "answered \"HTTP/1.1 400 Bad Request\"".into()
            )]
        );
    }

    #[test]
    fn an_event_stream_subscriber_finds_messages_in_chunked_data_lines() {
        let mut s = Subscriber::new(Transport::Sse, "h", "/events");
        let stream = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                       12\r\ndata: evb:7:123;\n\n\r\n12\r\ndata: evb:8:456;\n\n\r\n";
        let mut all = Vec::new();
        for piece in stream.chunks(5) {
            all.extend(events(&mut s, piece));
        }
        assert_eq!(all, vec![Event::Ready, delivery(7, 123), delivery(8, 456)]);
    }

    #[test]
    fn a_long_poll_subscriber_asks_again_after_each_answer_with_the_last_id() {
        let mut s = Subscriber::new(Transport::Poll, "h", "/poll?room=1");
        assert!(s.ready_when_sent());
        assert_eq!(s.opening(), b"GET /poll?room=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        let body = br#"{"id": 41, "event": null, "data": "evb:3:999;"}"#;
        let answer = [
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
            body,
        ]
        .concat();
        assert_eq!(
            events(&mut s, &answer),
            vec![
                delivery(3, 999),
                Event::Send(b"GET /poll?room=1&last_id=41 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            ]
        );
        let timeout = br#"{"timeout": true, "last_id": 45}"#;
        let answer = [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                timeout.len()
            )
            .as_bytes(),
            timeout,
        ]
        .concat();
        assert_eq!(
            events(&mut s, &answer),
            vec![Event::Send(
                b"GET /poll?room=1&last_id=45 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()
            )]
        );
    }
}
