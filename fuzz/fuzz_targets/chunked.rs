//! Fuzzes the chunked body decoder: no panic, never more consumed than given, the size limit
//! holds, and any split of the input decodes exactly as the whole does.
#![no_main]

use evserver_fuzz::{read_size, split_input};
use evserver_http::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

const MAX_BODY: u64 = 1 << 16;
const MAX_METADATA: usize = 256;

/// Decodes `data` fed in pieces of the given sizes (cycled); returns the decoded bytes, the
/// bytes consumed, and the final result.
fn decode(data: &[u8], pieces: &[u8]) -> (Vec<u8>, usize, Result<bool, evserver_http::HttpError>) {
    let mut decoder = ChunkedDecoder::new(MAX_BODY, MAX_METADATA);
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let size = read_size(pieces, i, data.len());
        i += 1;
        let end = (at + size).min(data.len());
        match decoder.decode(&data[at..end], &mut out) {
            Ok(step) => {
                assert!(step.consumed <= end - at);
                assert_eq!(decoder.decoded_len(), out.len() as u64);
                assert!(out.len() as u64 <= MAX_BODY);
                at += step.consumed;
                if step.done {
                    return (out, at, Ok(true));
                }
                // Not done: the decoder keeps state and must have taken all it was given.
                assert_eq!(at, end, "the decoder left input while not done");
            }
            Err(e) => return (out, at, Err(e)),
        }
    }
    (out, at, Ok(false))
}

fuzz_target!(|input: &[u8]| {
    let Some((pieces, data)) = split_input(input) else {
        return;
    };
    let whole = decode(data, &[]);
    let split = decode(data, pieces);
    // The bytes decoded before an error may differ by where the split fell; the outcome not.
    match (&whole.2, &split.2) {
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => assert_eq!(whole, split),
    }
});
