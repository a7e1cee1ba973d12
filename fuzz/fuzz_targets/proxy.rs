//! Fuzzes the PROXY protocol decoder: no panic, a header never longer than the input, and
//! every prefix of an input that holds a header is incomplete or the same answer (never a
//! different header: the server decides on partial input).
#![no_main]

use evserver_http::proxy::{decode, ProxyHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = decode(data);
    if let ProxyHeader::Found { len, .. } = whole {
        assert!(len <= data.len());
        for cut in 1..len {
            let partial = decode(&data[..cut]);
            assert!(
                matches!(partial, ProxyHeader::Incomplete),
                "prefix of {cut} bytes gave {partial:?}"
            );
        }
        assert_eq!(decode(&data[..len]), whole);
    }
    if matches!(whole, ProxyHeader::Absent) && !data.is_empty() {
        // Once absent, more input cannot make it a header.
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
        assert_eq!(decode(&longer), ProxyHeader::Absent);
    }
});
