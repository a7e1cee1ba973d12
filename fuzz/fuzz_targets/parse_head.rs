//! Fuzzes the request-head parser: no panic on any input, spans inside the head, and the
//! answer for a head never depends on how much of it has arrived.
#![no_main]

use evserver_http::{parse_head, Head, Limits, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks tight or default limits, so the limit paths are reached too.
    let (limits, data) = match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => (
            Limits {
                max_request_line: 16 + (b as usize >> 1),
                max_headers: 1 + (b as usize & 7),
                max_header_field: 8 + (b as usize >> 2),
                max_head: 64 + b as usize,
                max_body: b as u64,
            },
            rest,
        ),
        Some((_, rest)) => (Limits::default(), rest),
        None => return,
    };
    let mut head = Head::default();
    let whole = parse_head(data, &limits, &mut head);
    if let Ok(Parsed::Complete) = whole {
        assert!(head.len <= data.len());
        assert!(head.body.is_some() && head.version.is_some());
        for span in [head.method, head.path, head.query, head.authority] {
            assert!(span.start <= span.end && span.end as usize <= head.len);
        }
        for (name, value) in &head.headers {
            assert!(!name.is_empty() && name.end as usize <= head.len);
            assert!(value.start <= value.end && value.end as usize <= head.len);
        }
    }
    // Every prefix gives "need more" or the whole input's own answer; a complete head is
    // found at the same length in any longer buffer.
    let complete_len = matches!(whole, Ok(Parsed::Complete)).then_some(head.len);
    let mut prefix_head = Head::default();
    let step = (data.len() / 16).max(1);
    for cut in (0..data.len()).step_by(step) {
        let prefix = parse_head(&data[..cut], &limits, &mut prefix_head);
        match (&prefix, complete_len) {
            (Ok(Parsed::Partial), _) => {}
            (Ok(Parsed::Complete), Some(len)) => assert_eq!(prefix_head.len, len),
            (Err(e), None) => assert_eq!(Some(*e), whole.as_ref().err().copied()),
            (other, _) => panic!("prefix of {cut} bytes gave {other:?}, the whole {whole:?}"),
        }
    }
});
