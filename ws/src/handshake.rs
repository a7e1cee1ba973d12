//! The opening handshake (RFC 6455 §4.2): whether a request asks for a WebSocket, whether it
//! asks correctly, and the headers of the `101 Switching Protocols` answer.

use crate::deflate::{self, DeflateConfig};
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A valid upgrade request, ready to be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Accept` for the client's key.
    pub accept: String,
    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order.
    pub protocols: Vec<String>,
    /// permessage-deflate as agreed, when the client offered an acceptable form and the server
    /// allows compression; with the `Sec-WebSocket-Extensions` answer.
    pub deflate: Option<(DeflateConfig, String)>,
}

/// Why an upgrade request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not `GET`.
    Method,
    /// Not HTTP/1.1.
    HttpVersion,
    /// `Connection` does not include `Upgrade`.
    ConnectionHeader,
    /// No `Sec-WebSocket-Key`, more than one, or one that is not 16 bytes in base64.
    Key,
    /// `Sec-WebSocket-Version` missing or not 13.
    Version,
}

impl HandshakeError {
    /// The status to answer with: 426 (with `Sec-WebSocket-Version: 13`) for a version this
    /// server does not speak, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::Version => 426,
            _ => 400,
        }
    }

    /// What was wrong, for the response body and the log.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Method => "a WebSocket upgrade must be a GET",
            HandshakeError::HttpVersion => "a WebSocket upgrade needs HTTP/1.1",
            HandshakeError::ConnectionHeader => "a WebSocket upgrade needs Connection: Upgrade",
            HandshakeError::Key => "a WebSocket upgrade needs one valid Sec-WebSocket-Key",
            HandshakeError::Version => "this server speaks WebSocket version 13",
        }
    }
}

/// Whether a comma-separated header value holds `token` (case-insensitively).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Checks a request for a WebSocket upgrade. `Ok(None)`: not an upgrade to WebSocket at all
/// (no `Upgrade: websocket`), an ordinary request. `deflate_allowed`: whether
/// permessage-deflate may be agreed to.
pub fn check<'a>(
    method: &[u8],
    http11: bool,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    deflate_allowed: bool,
) -> Result<Option<Upgrade>, HandshakeError> {
    let named = |name: &'static [u8]| {
        headers
            .clone()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if !named(b"upgrade").any(|v| has_token(v, b"websocket")) {
        return Ok(None);
    }
    if method != b"GET" {
        return Err(HandshakeError::Method);
    }
    if !http11 {
        return Err(HandshakeError::HttpVersion);
    }
    if !named(b"connection").any(|v| has_token(v, b"upgrade")) {
        return Err(HandshakeError::ConnectionHeader);
    }
    let mut keys = named(b"sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::Key);
    };
    let key = key.trim_ascii();
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::Key),
    }
    let mut versions = named(b"sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.trim_ascii() == b"13" => {}
        _ => return Err(HandshakeError::Version),
    }
    let protocols = named(b"sec-websocket-protocol")
        .flat_map(|v| v.split(|&b| b == b','))
        .filter_map(|p| std::str::from_utf8(p.trim_ascii()).ok())
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let deflate = if deflate_allowed {
        deflate::negotiate(named(b"sec-websocket-extensions"))
    } else {
        None
    };
    Ok(Some(Upgrade {
        accept: accept_key(key),
        protocols,
        deflate,
    }))
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

impl Upgrade {
    /// The headers of the `101` answer (besides the server's own, e.g. `Date`), with
    /// `subprotocol` if the application chose one.
    pub fn response_headers(&self, subprotocol: Option<&str>) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("Upgrade", "websocket".to_owned()),
            ("Connection", "Upgrade".to_owned()),
            ("Sec-WebSocket-Accept", self.accept.clone()),
        ];
        if let Some(p) = subprotocol {
            out.push(("Sec-WebSocket-Protocol", p.to_owned()));
        }
        if let Some((_, answer)) = &self.deflate {
            out.push(("Sec-WebSocket-Extensions", answer.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Headers = Vec<(&'static [u8], &'static [u8])>;

    fn valid() -> Headers {
        vec![
            (b"Host", b"server.example.com"),
            (b"Upgrade", b"websocket"),
            (b"Connection", b"keep-alive, Upgrade"),
            (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            (b"Sec-WebSocket-Version", b"13"),
        ]
    }

    fn run(method: &[u8], headers: &Headers) -> Result<Option<Upgrade>, HandshakeError> {
        check(method, true, headers.iter().map(|(n, v)| (*n, *v)), true)
    }

    #[test]
    fn rfc_6455_example_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let up = run(b"GET", &valid()).unwrap().unwrap();
        assert_eq!(up.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(up.deflate, None);
    }

    #[test]
    fn no_upgrade_header_is_an_ordinary_request() {
        let mut h = valid();
        h.retain(|(n, _)| *n != b"Upgrade");
        assert_eq!(run(b"GET", &h), Ok(None));
        h.push((b"Upgrade", b"h2c"));
        assert_eq!(run(b"GET", &h), Ok(None));
    }

    #[test]
    fn bad_upgrades_say_why() {
        assert_eq!(run(b"POST", &valid()), Err(HandshakeError::Method));
        let http10 = check(b"GET", false, valid().into_iter(), true);
        assert_eq!(http10, Err(HandshakeError::HttpVersion));
        let without = |name: &[u8]| {
            let mut h = valid();
            h.retain(|(n, _)| *n != name);
            h
        };
        let e = run(b"GET", &without(b"Connection")).unwrap_err();
        assert_eq!((e.status(), e), (400, HandshakeError::ConnectionHeader));
        assert_eq!(
            run(b"GET", &without(b"Sec-WebSocket-Key")),
            Err(HandshakeError::Key)
        );
        let e = run(b"GET", &without(b"Sec-WebSocket-Version")).unwrap_err();
        assert_eq!(e.status(), 426);
        let mut h = without(b"Sec-WebSocket-Version");
        h.push((b"Sec-WebSocket-Version", b"8"));
        assert_eq!(run(b"GET", &h), Err(HandshakeError::Version));
        let mut h = without(b"Sec-WebSocket-Key");
        h.push((b"Sec-WebSocket-Key", b"c2hvcnQ="));
        assert_eq!(run(b"GET", &h), Err(HandshakeError::Key));
    }

    #[test]
    fn protocols_and_the_answer() {
        let mut h = valid();
        h.push((b"Sec-WebSocket-Protocol", b"chat, superchat"));
        h.push((b"sec-websocket-extensions", b"permessage-deflate"));
        let up = run(b"GET", &h).unwrap().unwrap();
        assert_eq!(up.protocols, ["chat", "superchat"]);
        let headers = up.response_headers(Some("chat"));
        assert!(headers.contains(&("Sec-WebSocket-Protocol", "chat".into())));
        assert!(headers.contains(&("Sec-WebSocket-Extensions", "permessage-deflate".into())));
        let refused = check(b"GET", true, h.iter().map(|(n, v)| (*n, *v)), false);
        assert_eq!(refused.unwrap().unwrap().deflate, None);
    }
}
