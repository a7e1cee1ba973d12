//! Fuzzes the WebSocket reader: no panic, never more consumed than given, no message over the
//! limit, text always UTF-8, and any split of the input decodes exactly as the whole does
//! (with and without permessage-deflate).
#![no_main]

use evserver_fuzz::{read_size, split_input};
use evserver_ws::{DeflateConfig, Incoming, ReadError, Reader};
use libfuzzer_sys::fuzz_target;

const MAX_MESSAGE: usize = 1 << 16;

/// Everything a reader makes of `data` fed in pieces of the planned sizes.
fn decode(data: &[u8], plan: &[u8], deflate: Option<&DeflateConfig>) -> (Vec<Incoming>, Option<ReadError>) {
    let mut reader = Reader::new(MAX_MESSAGE, deflate);
    let (mut events, mut buf, mut at, mut i) = (Vec::new(), Vec::new(), 0, 0);
    while at < data.len() {
        let end = (at + read_size(plan, i, data.len())).min(data.len());
        i += 1;
        buf.extend_from_slice(&data[at..end]);
        at = end;
        loop {
            match reader.read(&buf) {
                Ok((used, event)) => {
                    assert!(used <= buf.len());
                    buf.drain(..used);
                    match event {
                        Some(e) => {
                            match &e {
                                Incoming::Text(t) => assert!(t.len() <= MAX_MESSAGE),
                                Incoming::Binary(b) => assert!(b.len() <= MAX_MESSAGE),
                                Incoming::Ping(p) | Incoming::Pong(p) => assert!(p.len() <= 125),
                                Incoming::Close(_) => {}
                            }
                            events.push(e);
                        }
                        None => break,
                    }
                }
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

fuzz_target!(|input: &[u8]| {
    let Some((plan, data)) = split_input(input) else {
        return;
    };
    let config = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: plan.first().is_some_and(|b| b & 1 == 1),
        server_max_window_bits: 15,
    };
    for deflate in [None, Some(&config)] {
        let whole = decode(data, &[], deflate);
        let split = decode(data, plan, deflate);
        assert_eq!(whole, split);
    }
});
