//! The chunked decoder's contract with the connection layer: exact consumption, completion,
//! sticky errors and early limits.

use evserver_http::{ChunkedDecoder, Decoded, HttpError};

fn decoder() -> ChunkedDecoder {
    ChunkedDecoder::new(1 << 20, 1024)
}

#[test]
fn stops_right_after_the_final_crlf() {
    let mut d = decoder();
    let mut out = Vec::new();
    let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    let step = d.decode(input, &mut out).unwrap();
    assert_eq!(
        step,
        Decoded {
            consumed: 13,
            done: true
        }
    );
    assert_eq!(&input[step.consumed..], b"GET / HTTP/1.1\r\n");
    assert_eq!(out, b"abc");
    assert!(d.is_done());
}

#[test]
fn consumes_nothing_once_done() {
    let mut d = decoder();
    let mut out = Vec::new();
    d.decode(b"0\r\n\r\n", &mut out).unwrap();
    assert_eq!(
        d.decode(b"5\r\nhello", &mut out),
        Ok(Decoded {
            consumed: 0,
            done: true
        })
    );
    assert!(out.is_empty());
}

#[test]
fn consumes_all_of_an_unfinished_body() {
    let mut d = decoder();
    let mut out = Vec::new();
    assert_eq!(
        d.decode(b"a\r\n01234", &mut out),
        Ok(Decoded {
            consumed: 8,
            done: false
        })
    );
    assert_eq!(d.decoded_len(), 5);
    assert_eq!(
        d.decode(b"56789\r", &mut out),
        Ok(Decoded {
            consumed: 6,
            done: false
        })
    );
    assert_eq!(
        d.decode(b"\n0\r\n\r", &mut out),
        Ok(Decoded {
            consumed: 5,
            done: false
        })
    );
    assert_eq!(
        d.decode(b"\n", &mut out),
        Ok(Decoded {
            consumed: 1,
            done: true
        })
    );
    assert_eq!(out, b"0123456789");
    assert_eq!(d.decoded_len(), 10);
}

#[test]
fn empty_input_is_not_progress() {
    let mut d = decoder();
    assert_eq!(
        d.decode(b"", &mut Vec::new()),
        Ok(Decoded {
            consumed: 0,
            done: false
        })
    );
}

#[test]
fn an_error_is_returned_again_on_every_later_call() {
    let mut d = decoder();
    let mut out = Vec::new();
    assert_eq!(d.decode(b"g\r\n", &mut out), Err(HttpError::BadChunkSize));
    assert_eq!(
        d.decode(b"0\r\n\r\n", &mut out),
        Err(HttpError::BadChunkSize)
    );
    assert_eq!(d.decode(b"", &mut out), Err(HttpError::BadChunkSize));
}

#[test]
fn the_body_limit_is_enforced_at_the_size_line_before_the_data() {
    let mut d = ChunkedDecoder::new(10, 1024);
    let mut out = Vec::new();
    assert_eq!(
        d.decode(b"5\r\nhello\r\n", &mut out),
        Ok(Decoded {
            consumed: 10,
            done: false
        })
    );
    assert_eq!(d.decode(b"6\r\n", &mut out), Err(HttpError::BodyTooLarge));
    assert_eq!(out, b"hello");
}

#[test]
fn the_largest_chunk_size_parses_and_one_more_digit_overflows() {
    let mut d = ChunkedDecoder::new(u64::MAX, 1024);
    let step = d.decode(b"ffffffffffffffff\r\nab", &mut Vec::new());
    assert_eq!(
        step,
        Ok(Decoded {
            consumed: 20,
            done: false
        })
    );
    let mut d = ChunkedDecoder::new(u64::MAX, 1024);
    assert_eq!(
        d.decode(b"1ffffffffffffffff\r\n", &mut Vec::new()),
        Err(HttpError::BadChunkSize)
    );
}

#[test]
fn a_size_line_of_exactly_max_metadata_is_accepted() {
    let mut d = ChunkedDecoder::new(100, 8);
    assert_eq!(
        d.decode(b"1;abc=de\r\nx\r\n", &mut Vec::new())
            .map(|s| s.done),
        Ok(false)
    );
    let mut d = ChunkedDecoder::new(100, 8);
    assert_eq!(
        d.decode(b"1;abc=def\r\n", &mut Vec::new()),
        Err(HttpError::ChunkMetadataTooLarge)
    );
}

#[test]
fn trailers_of_exactly_max_metadata_are_accepted() {
    // "X: 1\r\n" is 6 bytes; the final empty line does not count.
    let mut d = ChunkedDecoder::new(100, 6);
    assert_eq!(
        d.decode(b"0\r\nX: 1\r\n\r\n", &mut Vec::new())
            .map(|s| s.done),
        Ok(true)
    );
    let mut d = ChunkedDecoder::new(100, 5);
    assert_eq!(
        d.decode(b"0\r\nX: 1\r\n\r\n", &mut Vec::new()),
        Err(HttpError::ChunkMetadataTooLarge)
    );
}

#[test]
fn skip_consumes_like_decode_and_counts_the_body() {
    let input = b"3\r\nabc\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nHTTP/1.1 200 OK\r\n";
    let body_end = input.len() - b"HTTP/1.1 200 OK\r\n".len();
    for split in 0..body_end {
        let mut d = decoder();
        let first = d.skip(&input[..split]).unwrap();
        assert_eq!(first.consumed, split);
        assert!(!first.done);
        let rest = d.skip(&input[split..]).unwrap();
        assert!(rest.done, "split at {split}");
        assert_eq!(&input[split + rest.consumed..], b"HTTP/1.1 200 OK\r\n");
        assert_eq!(d.decoded_len(), 8);
    }
}
