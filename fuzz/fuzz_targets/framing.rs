//! Fuzzes the connection's request framing (`Framer`: head, body, 100 Continue, next pipelined
//! request, keep-alive), the machine the server runs, on arbitrary bytes: no panic, events in
//! a legal order, and the same requests and the same ending however the bytes are split into
//! reads, and whether body bytes go through the buffer or straight in (`feed_body`).
#![no_main]

use evserver_fuzz::{read_size, split_input};
use evserver_http::{BodyFraming, Event, Framer, HttpError, Limits};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
struct Request {
    head: Vec<u8>,
    body: Vec<u8>,
    keep_alive: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Idle,
    Incomplete,
    Closed,
    Error(HttpError),
}

fn limits() -> Limits {
    Limits {
        max_request_line: 256,
        max_headers: 8,
        max_header_field: 256,
        max_head: 1024,
        max_body: 4096,
    }
}

fn run(data: &[u8], pieces: &[u8], direct: bool) -> (Vec<Request>, End) {
    let mut framer = Framer::new(limits(), 128);
    let mut done = Vec::new();
    let mut current: Option<(Request, Option<u64>)> = None;
    let mut at = 0;
    let mut i = 0;
    let mut closed = false;
    while at < data.len() {
        let size = read_size(pieces, i, data.len());
        i += 1;
        let end = (at + size).min(data.len());
        let mut read = &data[at..end];
        at = end;
        if direct {
            if let Some((request, _)) = current.as_mut() {
                let took = framer.feed_body(read, &mut request.body);
                read = &read[took..];
            }
        }
        framer.feed(read);
        loop {
            let mut body = Vec::new();
            match framer.poll(&mut body) {
                Ok(Event::Head) => {
                    assert!(current.is_none(), "a head inside a request");
                    let (head, bytes) = framer.head();
                    assert_eq!(bytes.len(), head.len);
                    let length = match head.body {
                        Some(BodyFraming::Length(n)) => Some(n),
                        Some(BodyFraming::None) => Some(0),
                        Some(BodyFraming::Chunked) => None,
                        None => panic!("a complete head without a body framing"),
                    };
                    let request = Request {
                        head: bytes.to_vec(),
                        body: Vec::new(),
                        keep_alive: head.keep_alive,
                    };
                    current = Some((request, length));
                }
                Ok(Event::Continue) => {
                    let (request, _) = current.as_ref().expect("100 Continue outside a request");
                    assert!(request.body.is_empty(), "100 Continue after body bytes");
                    assert!(framer.head().0.expect_continue, "100 Continue not asked for");
                }
                Ok(Event::Body(n)) => {
                    assert_eq!(n, body.len());
                    assert!(n > 0, "an empty body event");
                    let (request, _) = current.as_mut().expect("body outside a request");
                    request.body.extend_from_slice(&body);
                    assert!(request.body.len() as u64 <= limits().max_body);
                }
                Ok(Event::End { keep_alive }) => {
                    let (request, length) = current.take().expect("end outside a request");
                    assert_eq!(keep_alive, request.keep_alive);
                    if let Some(n) = length {
                        assert_eq!(request.body.len() as u64, n);
                    }
                    done.push(request);
                }
                Ok(Event::NeedMore) => break,
                Ok(Event::Closed) => {
                    closed = true;
                    break;
                }
                Err(e) => return (done, End::Error(e)),
            }
        }
        if closed {
            return (done, End::Closed);
        }
    }
    let end = if current.is_none() && framer.is_idle() {
        End::Idle
    } else {
        End::Incomplete
    };
    (done, end)
}

fuzz_target!(|input: &[u8]| {
    let Some((pieces, data)) = split_input(input) else {
        return;
    };
    let whole = run(data, &[], false);
    let split = run(data, pieces, false);
    assert_eq!(
        whole, split,
        "the outcome depends on how the bytes were split"
    );
    let direct = run(data, pieces, true);
    assert_eq!(
        whole, direct,
        "the outcome depends on whether body bytes were fed directly"
    );
});
