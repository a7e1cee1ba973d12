//! Which peers may speak for their clients (`--forwarded-allow-ips`, `--proxy-allow-from`):
//! `*`, addresses and networks (`10.0.0.0/8`), comma-separated. A unix-socket peer is
//! always allowed: only a process on the same machine can connect there.

use std::net::IpAddr;

/// A parsed allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowList {
    Everyone,
    /// Networks as (address, prefix length).
    Networks(Vec<(IpAddr, u8)>),
}

impl AllowList {
    /// Parses `*` or a comma-separated list of addresses and networks; an entry that is
    /// neither is the error, as the user wrote it.
    pub fn parse(text: &str) -> Result<AllowList, String> {
        let mut networks = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(AllowList::Everyone);
            }
            networks.push(parse_network(entry).ok_or_else(|| entry.to_string())?);
        }
        Ok(AllowList::Networks(networks))
    }

    /// Whether `peer` is allowed (`None`: a unix-socket peer, always allowed).
    pub fn allows(&self, peer: Option<IpAddr>) -> bool {
        let Some(ip) = peer else {
            return true;
        };
        match self {
            AllowList::Everyone => true,
            AllowList::Networks(networks) => {
                let ip = canonical(ip);
                networks
                    .iter()
                    .any(|&(network, prefix)| contains(network, prefix, ip))
            }
        }
    }
}

/// `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) is 1.2.3.4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_network(entry: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let ip = canonical(address.trim_matches(['[', ']']).parse::<IpAddr>().ok()?);
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(bits);
    (prefix <= bits).then_some((ip, prefix))
}

fn contains(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn addresses_and_networks() {
        let list = AllowList::parse("127.0.0.1, ::1,10.0.0.0/8,fd00::/8").unwrap();
        assert!(list.allows(ip("127.0.0.1")));
        assert!(list.allows(ip("::ffff:127.0.0.1")));
        assert!(list.allows(ip("::1")));
        assert!(list.allows(ip("10.200.3.4")));
        assert!(list.allows(ip("fd12::1")));
        assert!(!list.allows(ip("127.0.0.2")));
        assert!(!list.allows(ip("11.0.0.1")));
        assert!(!list.allows(ip("fe80::1")));
        assert!(list.allows(None), "a unix-socket peer");
    }

    #[test]
    fn everyone_nobody_and_mistakes() {
        assert_eq!(AllowList::parse("*").unwrap(), AllowList::Everyone);
        let nobody = AllowList::parse("").unwrap();
        assert!(!nobody.allows(ip("127.0.0.1")));
        assert!(AllowList::parse("0.0.0.0/0").unwrap().allows(ip("8.8.8.8")));
        assert_eq!(
            AllowList::parse("127.0.0.1,localhost"),
            Err("localhost".into())
        );
        assert!(AllowList::parse("10.0.0.0/33").is_err());
        assert!(AllowList::parse("10.0.0.0/x").is_err());
    }
}
