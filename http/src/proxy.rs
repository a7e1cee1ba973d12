//! The PROXY protocol (HAProxy, versions 1 and 2): the header a load balancer sends before
//! the client's bytes to say who the client is. Decoded from the start of a connection's
//! input; anything that does not start like one is no header at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's first twelve bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's first six bytes.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// A version 1 line is at most this long, CRLF included.
const V1_MAX: usize = 107;
/// Version 2 headers longer than this (their TLVs) are refused.
pub const V2_MAX: usize = 4096;

/// What the start of a connection's input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Not a PROXY header: the input is the client's own.
    Absent,
    /// The start of one: more bytes are needed.
    Incomplete,
    /// A PROXY header that breaks the protocol: close the connection.
    Invalid(&'static str),
    /// A header of `len` bytes; `source` is the client, `None` when the header does not
    /// name one (`UNKNOWN`, `LOCAL`, a unix or unspecified address: the peer stands).
    Found {
        len: usize,
        source: Option<SocketAddr>,
    },
}

/// Decodes the PROXY header at the start of `input`.
pub fn decode(input: &[u8]) -> ProxyHeader {
    if starts_like(input, V2_SIGNATURE) {
        if input.len() < V2_SIGNATURE.len() {
            return ProxyHeader::Incomplete;
        }
        return decode_v2(input);
    }
    if starts_like(input, V1_PREFIX) {
        if input.len() < V1_PREFIX.len() {
            return ProxyHeader::Incomplete;
        }
        return decode_v1(input);
    }
    ProxyHeader::Absent
}

/// `input` and `prefix` agree on their common length (and `input` is not empty).
fn starts_like(input: &[u8], prefix: &[u8]) -> bool {
    let n = input.len().min(prefix.len());
    n > 0 && input[..n] == prefix[..n]
}

fn decode_v1(input: &[u8]) -> ProxyHeader {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if input.len() >= V1_MAX {
            ProxyHeader::Invalid("PROXY v1 line too long")
        } else {
            ProxyHeader::Incomplete
        };
    };
    let Ok(line) = std::str::from_utf8(&input[V1_PREFIX.len()..end]) else {
        return ProxyHeader::Invalid("PROXY v1 line is not text");
    };
    let len = end + 2;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["UNKNOWN", ..] => ProxyHeader::Found { len, source: None },
        [family @ ("TCP4" | "TCP6"), src, dst, src_port, dst_port] => {
            let v4 = *family == "TCP4";
            let (Some(src), Some(_), Some(src_port), Some(_)) = (
                v1_address(src, v4),
                v1_address(dst, v4),
                v1_port(src_port),
                v1_port(dst_port),
            ) else {
                return ProxyHeader::Invalid("PROXY v1 addresses or ports are malformed");
            };
            ProxyHeader::Found {
                len,
                source: Some(SocketAddr::new(src, src_port)),
            }
        }
        _ => ProxyHeader::Invalid("PROXY v1 line is malformed"),
    }
}

fn v1_address(text: &str, v4: bool) -> Option<IpAddr> {
    if v4 {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    }
}

/// A port in decimal, without sign or leading zeros (as the specification writes them).
fn v1_port(text: &str) -> Option<u16> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = text == "0" || !text.starts_with('0');
    (digits_only && no_leading_zero && text.len() <= 5)
        .then(|| text.parse().ok())
        .flatten()
}

fn decode_v2(input: &[u8]) -> ProxyHeader {
    if input.len() < 16 {
        return ProxyHeader::Incomplete;
    }
    let version_command = input[12];
    let family_protocol = input[13];
    let addresses_len = usize::from(u16::from_be_bytes([input[14], input[15]]));
    let len = 16 + addresses_len;
    if version_command >> 4 != 2 {
        return ProxyHeader::Invalid("PROXY v2 header has an unknown version");
    }
    if len > V2_MAX {
        return ProxyHeader::Invalid("PROXY v2 header too long");
    }
    if input.len() < len {
        return ProxyHeader::Incomplete;
    }
    let addresses = &input[16..len];
    match version_command & 0x0f {
        // LOCAL: the proxy's own connection (a health check): the peer stands.
        0x0 => return ProxyHeader::Found { len, source: None },
        0x1 => {}
        _ => return ProxyHeader::Invalid("PROXY v2 header has an unknown command"),
    }
    let source = match family_protocol >> 4 {
        0x1 => {
            if addresses.len() < 12 {
                return ProxyHeader::Invalid("PROXY v2 IPv4 addresses are cut short");
            }
            let ip = Ipv4Addr::new(addresses[0], addresses[1], addresses[2], addresses[3]);
            let port = u16::from_be_bytes([addresses[8], addresses[9]]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
        0x2 => {
            if addresses.len() < 36 {
                return ProxyHeader::Invalid("PROXY v2 IPv6 addresses are cut short");
            }
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&addresses[..16]);
            let port = u16::from_be_bytes([addresses[32], addresses[33]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        // Unspecified or unix: no address to take.
        0x0 | 0x3 => None,
        _ => return ProxyHeader::Invalid("PROXY v2 header has an unknown address family"),
    };
    ProxyHeader::Found { len, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let input = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            decode(input),
            ProxyHeader::Found {
                len: 45,
                source: addr("192.0.2.1:56324")
            }
        );
        let input = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert_eq!(
            decode(input),
            ProxyHeader::Found {
                len: input.len(),
                source: addr("[2001:db8::1]:1")
            }
        );
        let input = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            decode(input),
            ProxyHeader::Found {
                len: 15,
                source: None
            }
        );
    }

    #[test]
    fn v1_needs_its_whole_line() {
        for cut in 1..45 {
            let input = &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"[..cut];
            assert_eq!(decode(input), ProxyHeader::Incomplete, "{cut} bytes");
        }
    }

    #[test]
    fn v1_mistakes_are_invalid() {
        for input in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"[..],
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 1\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 01 1\r\n",
            b"PROXY TCP4  192.0.2.1 198.51.100.2 1 1\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 1 1\r\n",
            b"PROXY \xff\r\n",
        ] {
            assert!(
                matches!(decode(input), ProxyHeader::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = [b"PROXY ".as_slice(), &[b'x'; 120]].concat();
        assert!(matches!(decode(&long), ProxyHeader::Invalid(_)));
    }

    #[test]
    fn plain_http_is_absent() {
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), ProxyHeader::Absent);
        assert_eq!(decode(b"PROXIES"), ProxyHeader::Absent);
        assert_eq!(decode(b"\r\n\r\nGET"), ProxyHeader::Absent);
        assert_eq!(decode(b""), ProxyHeader::Absent);
    }

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        out.extend_from_slice(addresses);
        out
    }

    #[test]
    fn v2_tcp4_tcp6_local_and_unix() {
        let mut ipv4 = vec![192, 0, 2, 1, 198, 51, 100, 2];
        ipv4.extend_from_slice(&56324u16.to_be_bytes());
        ipv4.extend_from_slice(&443u16.to_be_bytes());
        let header = v2(1, 0x11, &ipv4);
        let mut input = header.clone();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            decode(&input),
            ProxyHeader::Found {
                len: header.len(),
                source: addr("192.0.2.1:56324")
            }
        );
        for cut in 1..header.len() {
            assert_eq!(decode(&header[..cut]), ProxyHeader::Incomplete, "{cut}");
        }
        let mut ipv6 = Vec::new();
        ipv6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        ipv6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        ipv6.extend_from_slice(&[0, 80, 1, 187]);
        ipv6.extend_from_slice(&[0x04, 0, 1, 0]); // a TLV after the addresses
        assert_eq!(
            decode(&v2(1, 0x21, &ipv6)),
            ProxyHeader::Found {
                len: 16 + ipv6.len(),
                source: addr("[2001:db8::1]:80")
            }
        );
        assert_eq!(
            decode(&v2(0, 0x00, &[])),
            ProxyHeader::Found {
                len: 16,
                source: None
            }
        );
        assert_eq!(
            decode(&v2(1, 0x31, &[0; 216])),
            ProxyHeader::Found {
                len: 232,
                source: None
            }
        );
    }

    #[test]
    fn v2_mistakes_are_invalid() {
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        assert!(matches!(decode(&wrong_version), ProxyHeader::Invalid(_)));
        assert!(matches!(
            decode(&v2(2, 0x11, &[0; 12])),
            ProxyHeader::Invalid(_)
        ));
        assert!(matches!(
            decode(&v2(1, 0x11, &[0; 4])),
            ProxyHeader::Invalid(_)
        ));
        assert!(matches!(
            decode(&v2(1, 0x51, &[0; 12])),
            ProxyHeader::Invalid(_)
        ));
        let mut too_long = V2_SIGNATURE.to_vec();
        too_long.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(decode(&too_long), ProxyHeader::Invalid(_)));
    }
}
