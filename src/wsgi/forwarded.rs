//! `X-Forwarded-*` from a proxy the server trusts (`--forwarded-allow-ips`): the scheme the
//! client used (`X-Forwarded-Proto`, `X-Forwarded-Ssl`, `X-Forwarded-Protocol`) and the
//! client's address (`X-Forwarded-For`'s rightmost hop that is not itself a trusted proxy).

use crate::allow::AllowList;
use evserver_http::Head;
use std::net::{IpAddr, SocketAddr};

/// What trusted proxies said about the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// `Some(true)`: the client used https; `Some(false)`: http; `None`: not said.
    pub https: Option<bool>,
    pub client: Option<IpAddr>,
}

/// Reads the `X-Forwarded-*` fields of a request that came from a trusted proxy; hops of
/// `X-Forwarded-For` that `allow` trusts too are skipped (a chain of proxies).
pub fn read(head: &Head, buf: &[u8], allow: &AllowList) -> Forwarded {
    let mut forwarded = Forwarded::default();
    let mut hops: Vec<&[u8]> = Vec::new();
    for (name, value) in &head.headers {
        let name = name.of(buf);
        let Some(suffix) = strip_prefix_ignore_case(name, b"x-forwarded-") else {
            continue;
        };
        let value = value.of(buf);
        if suffix.eq_ignore_ascii_case(b"for") {
            hops.extend(value.split(|&b| b == b',').map(|hop| hop.trim_ascii()));
        } else if suffix.eq_ignore_ascii_case(b"proto") {
            // The first proxy's view is the client's: the leftmost value.
            let first = value
                .split(|&b| b == b',')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            if first.eq_ignore_ascii_case(b"https") {
                forwarded.https = Some(true);
            } else if first.eq_ignore_ascii_case(b"http") {
                forwarded.https = Some(false);
            }
        } else if suffix.eq_ignore_ascii_case(b"ssl") {
            if value.eq_ignore_ascii_case(b"on") {
                forwarded.https = Some(true);
            } else if value.eq_ignore_ascii_case(b"off") {
                forwarded.https = Some(false);
            }
        } else if suffix.eq_ignore_ascii_case(b"protocol") && value.eq_ignore_ascii_case(b"ssl") {
            forwarded.https = Some(true);
        }
    }
    forwarded.client = client(&hops, allow);
    forwarded
}

/// The client's address as the access log shows it: `X-Forwarded-For`'s client when `peer`
/// is a trusted proxy that sent one, else the peer's own (`None` for a unix-socket peer).
pub fn client_address(
    peer: Option<SocketAddr>,
    head: &Head,
    buf: &[u8],
    allow: &AllowList,
) -> Option<IpAddr> {
    let ip = peer.map(|p| p.ip());
    if !allow.allows(ip) {
        return ip;
    }
    read(head, buf, allow).client.or(ip)
}

/// The rightmost hop not trusted itself (the leftmost if every hop is trusted); `None` when
/// a hop on the way is not an address (nothing after a forged or broken entry is believed).
fn client(hops: &[&[u8]], allow: &AllowList) -> Option<IpAddr> {
    let mut found = None;
    for hop in hops.iter().rev() {
        let ip = parse_hop(hop)?;
        found = Some(ip);
        if !allow.allows(Some(ip)) {
            break;
        }
    }
    found
}

/// `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`, or with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:80`).
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?;
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| text.trim_matches(['[', ']']).parse::<IpAddr>().ok())
}

/// Whether a header field is one of the `X-Forwarded-*` family.
pub fn is_forwarded_field(name: &[u8]) -> bool {
    strip_prefix_ignore_case(name, b"x-forwarded-").is_some()
}

fn strip_prefix_ignore_case<'a>(name: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (name.len() > prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &name[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use evserver_http::{parse_head, Limits, Parsed};

    fn read_from(raw: &str, allow: &str) -> Forwarded {
        let mut head = Head::default();
        let parsed = parse_head(raw.as_bytes(), &Limits::default(), &mut head).unwrap();
        assert!(matches!(parsed, Parsed::Complete));
        read(&head, raw.as_bytes(), &AllowList::parse(allow).unwrap())
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn scheme_from_any_of_the_three_fields() {
        let https = |field: &str| {
            read_from(
                &format!("GET / HTTP/1.1\r\nHost: a\r\n{field}\r\n\r\n"),
                "127.0.0.1",
            )
            .https
        };
        assert_eq!(https("X-Forwarded-Proto: https"), Some(true));
        assert_eq!(https("x-forwarded-proto: HTTPS, http"), Some(true));
        assert_eq!(https("X-Forwarded-Proto: http"), Some(false));
        assert_eq!(https("X-Forwarded-Proto: gopher"), None);
        assert_eq!(https("X-Forwarded-Ssl: on"), Some(true));
        assert_eq!(https("X-Forwarded-Protocol: ssl"), Some(true));
        assert_eq!(https("X-Forwarded-Host: example.com"), None);
    }

    #[test]
    fn client_is_the_rightmost_untrusted_hop() {
        let raw =
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6, 1.2.3.4, 10.0.0.2\r\n\r\n";
        assert_eq!(read_from(raw, "127.0.0.1").client, ip("10.0.0.2"));
        assert_eq!(read_from(raw, "127.0.0.1,10.0.0.0/8").client, ip("1.2.3.4"));
        assert_eq!(read_from(raw, "*").client, ip("6.6.6.6"));
        let two_fields =
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n";
        assert_eq!(read_from(two_fields, "10.0.0.0/8").client, ip("1.2.3.4"));
    }

    #[test]
    fn hops_with_ports_brackets_and_garbage() {
        let one = |hops: &str| {
            read_from(
                &format!("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: {hops}\r\n\r\n"),
                "",
            )
            .client
        };
        assert_eq!(one("[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(one("1.2.3.4:5678"), ip("1.2.3.4"));
        assert_eq!(one("[2001:db8::2]"), ip("2001:db8::2"));
        assert_eq!(one("unknown"), None);
        assert_eq!(one("1.2.3.4, not-an-address"), None);
        assert_eq!(one(""), None);
    }
}
