//! permessage-deflate (RFC 7692): choosing an offer from `Sec-WebSocket-Extensions`, and
//! compressing and inflating one message at a time.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What both ends agreed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The server starts each message with an empty compression window.
    pub server_no_context_takeover: bool,
    /// The client does (so the server may reset its inflater after each message).
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, 9 to 15 bits (RFC 7692 allows 8, which zlib cannot make: an
    /// offer asking for 8 is declined).
    pub server_max_window_bits: u8,
}

/// The bytes a sync flush ends with, which RFC 7692 §7.2.1 removes from each message.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Parses one parameter value: digits, possibly quoted (RFC 7692 §5.2 allows a quoted string).
fn window_bits(value: Option<&str>) -> Option<Option<u8>> {
    let Some(value) = value else {
        return Some(None);
    };
    let digits = value.trim().trim_matches('"');
    match digits.parse::<u8>() {
        Ok(bits @ 8..=15) if digits.len() <= 2 && !digits.starts_with('0') => Some(Some(bits)),
        _ => None,
    }
}

/// The first acceptable permessage-deflate offer of the client's `Sec-WebSocket-Extensions`
/// headers, as a config and the header value to answer with; `None` if there is none.
pub fn negotiate<'a>(headers: impl Iterator<Item = &'a [u8]>) -> Option<(DeflateConfig, String)> {
    for header in headers {
        let Ok(header) = std::str::from_utf8(header) else {
            continue;
        };
        for offer in header.split(',') {
            if let Some(agreed) = accept_offer(offer) {
                return Some(agreed);
            }
        }
    }
    None
}

/// One offer, if it is permessage-deflate with parameters this server can honour.
fn accept_offer(offer: &str) -> Option<(DeflateConfig, String)> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut config = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
    };
    let (mut seen_server_bits, mut seen_client_bits) = (false, false);
    let mut answer = String::from("permessage-deflate");
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v)),
            None => (param, None),
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                if config.server_no_context_takeover {
                    return None;
                }
                config.server_no_context_takeover = true;
                answer.push_str("; server_no_context_takeover");
            }
            "client_no_context_takeover" if value.is_none() => {
                if config.client_no_context_takeover {
                    return None;
                }
                config.client_no_context_takeover = true;
                answer.push_str("; client_no_context_takeover");
            }
            "server_max_window_bits" if !seen_server_bits => {
                seen_server_bits = true;
                let bits = window_bits(value)??;
                if bits < 9 {
                    return None;
                }
                config.server_max_window_bits = bits;
                answer.push_str(&format!("; server_max_window_bits={bits}"));
            }
            // The client may take a smaller window for what it sends; the server inflates
            // with the largest, which reads any.
            "client_max_window_bits" if !seen_client_bits => {
                seen_client_bits = true;
                window_bits(value)?;
            }
            _ => return None,
        }
    }
    Some((config, answer))
}

/// Compresses the server's messages.
pub struct Deflater {
    compress: Compress,
    no_context_takeover: bool,
}

impl Deflater {
    pub fn new(config: &DeflateConfig) -> Deflater {
        Deflater {
            compress: Compress::new_with_window_bits(
                Compression::fast(),
                false,
                config.server_max_window_bits,
            ),
            no_context_takeover: config.server_no_context_takeover,
        }
    }

    /// Appends `data` compressed as one message's payload (the flush tail removed) to `out`.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let mut input = data;
        loop {
            out.reserve(input.len() / 2 + 64);
            let before = self.compress.total_in();
            // An error here would mean a bug in the stream state; the stream is ours alone.
            let _ = self.compress.compress_vec(input, out, FlushCompress::Sync);
            let used = (self.compress.total_in() - before) as usize;
            input = &input[used..];
            // Done when all input went in and the flush left room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.no_context_takeover {
            self.compress.reset();
        }
    }
}

/// Inflates the client's compressed messages.
pub struct Inflater {
    decompress: Decompress,
    no_context_takeover: bool,
}

/// Why a compressed message could not be inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// Not a valid deflate stream (the connection fails with 1007).
    Corrupt,
    /// It inflates to more than the message limit (1009).
    TooBig,
}

impl Inflater {
    pub fn new(config: &DeflateConfig) -> Inflater {
        Inflater {
            decompress: Decompress::new_with_window_bits(false, 15),
            no_context_takeover: config.client_no_context_takeover,
        }
    }

    /// Inflates one message's compressed payload into `out` (cleared first), at most `limit`
    /// bytes.
    pub fn inflate(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        out.clear();
        for mut input in [data, &TAIL[..]] {
            loop {
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                if out.len() == out.capacity() {
                    // Room for one byte past the limit at most: enough to see it was passed.
                    let room = limit + 1 - out.len();
                    out.reserve((input.len() * 2).max(4096).min(room));
                }
                let before = self.decompress.total_in();
                let status = self
                    .decompress
                    .decompress_vec(input, out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                let used = (self.decompress.total_in() - before) as usize;
                input = &input[used..];
                if status == Status::StreamEnd {
                    // A final block inside a message: nothing may follow it.
                    if !input.is_empty() {
                        return Err(InflateError::Corrupt);
                    }
                    self.decompress.reset(false);
                    break;
                }
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
            }
        }
        if out.len() > limit {
            return Err(InflateError::TooBig);
        }
        if self.no_context_takeover {
            self.decompress.reset(false);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(value: &str) -> Option<(DeflateConfig, String)> {
        negotiate([value.as_bytes()].into_iter())
    }

    #[test]
    fn offers_browsers_and_autobahn_make() {
        let (c, answer) = offer("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(answer, "permessage-deflate");
        assert_eq!(c.server_max_window_bits, 15);
        let (c, answer) =
            offer("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
                .unwrap();
        assert!(c.server_no_context_takeover);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        // The first offer asks for a window zlib cannot make: the second is taken.
        let (c, _) = offer("permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover").unwrap();
        assert!(c.client_no_context_takeover);
    }

    #[test]
    fn offers_declined() {
        assert_eq!(offer("x-webkit-deflate-frame"), None);
        assert_eq!(offer("permessage-deflate; unknown"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits=16"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits=09"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits"), None);
        assert_eq!(
            offer("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
            None
        );
    }

    #[test]
    fn rfc_7692_example_hello() {
        // §7.2.3.1: "Hello" compressed without context takeover.
        let compressed = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let (config, _) = offer("permessage-deflate").unwrap();
        let mut out = Vec::new();
        Inflater::new(&config)
            .inflate(&compressed, &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        for params in [
            "",
            "; server_no_context_takeover; client_no_context_takeover",
        ] {
            let (config, _) = offer(&format!("permessage-deflate{params}")).unwrap();
            let (mut d, mut i) = (Deflater::new(&config), Inflater::new(&config));
            let (mut wire, mut back) = (Vec::new(), Vec::new());
            for n in 0..5 {
                let message = format!("message {n} ").repeat(1000 * n + 1);
                wire.clear();
                d.compress(message.as_bytes(), &mut wire);
                assert!(!wire.ends_with(&TAIL));
                i.inflate(&wire, &mut back, 1 << 20).unwrap();
                assert_eq!(back, message.as_bytes());
            }
        }
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let (config, _) = offer("permessage-deflate").unwrap();
        let mut wire = Vec::new();
        Deflater::new(&config).compress(&vec![0u8; 1 << 20], &mut wire);
        let mut out = Vec::new();
        let mut i = Inflater::new(&config);
        assert_eq!(i.inflate(&wire, &mut out, 1000), Err(InflateError::TooBig));
        let mut i = Inflater::new(&config);
        assert_eq!(
            i.inflate(&[0xff, 0xff, 0xff], &mut out, 1000),
            Err(InflateError::Corrupt)
        );
    }
}
