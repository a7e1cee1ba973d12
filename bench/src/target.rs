//! The target: `http://HOST[:PORT][/PATH]` or `unix:/SOCKET[:/PATH]`, resolved once to a
//! socket address that every connect reuses.

use evserver_platform::ConnectAddr;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A parsed and resolved target.
#[derive(Clone, Debug)]
pub struct Target {
    pub endpoint: Endpoint,
    /// The Host header value.
    pub host: String,
    /// The request target (path and query), starting with `/`.
    pub path: String,
}

/// Why a target cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum TargetError {
    /// Not a URL this tool understands (usage error).
    Syntax(String),
    /// The host name did not resolve (runtime error).
    Resolve(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Syntax(m) | TargetError::Resolve(m) => f.write_str(m),
        }
    }
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        if let Some(rest) = url.strip_prefix("unix:") {
            return parse_unix(rest);
        }
        let Some(rest) = url.strip_prefix("http://") else {
            let why = if url.starts_with("https://") {
                "https is not supported (plain http:// or unix: only)"
            } else {
                "expected http://HOST[:PORT][/PATH] or unix:/SOCKET/PATH"
            };
            return Err(TargetError::Syntax(format!("{url:?}: {why}")));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(TargetError::Syntax(format!(
                "{url:?}: missing or unsupported host"
            )));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| TargetError::Syntax(format!("{url:?}: bad host or port")))?;
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| TargetError::Resolve(format!("cannot resolve {host:?}: {e}")))?
            .min_by_key(|a| a.is_ipv6()) // IPv4 first, as most servers listen there
            .ok_or_else(|| TargetError::Resolve(format!("{host:?} has no address")))?;
        Ok(Target {
            endpoint: Endpoint::Tcp(addr),
            host: authority.to_string(),
            path,
        })
    }
}

/// `unix:/run/app.sock` or `unix:/run/app.sock:/status?x=1`.
fn parse_unix(rest: &str) -> Result<Target, TargetError> {
    let (socket, path) = match rest.rfind(":/") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, "/"),
    };
    if socket.is_empty() {
        return Err(TargetError::Syntax(
            "unix: needs a socket path, e.g. unix:/run/app.sock".into(),
        ));
    }
    if socket.len() >= 108 {
        return Err(TargetError::Syntax(format!(
            "unix socket path {socket:?} is too long (at most 107 bytes)"
        )));
    }
    Ok(Target {
        endpoint: Endpoint::Unix(PathBuf::from(socket)),
        host: "localhost".into(),
        path: path.to_string(),
    })
}

/// Splits `host[:port]` / `[v6][:port]` (default port 80).
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let port = match &rest[end + 1..] {
            "" => 80,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, 80)),
    }
}

impl Endpoint {
    /// The address the load generator connects to.
    pub fn connect_addr(&self) -> std::io::Result<ConnectAddr> {
        match self {
            Endpoint::Tcp(addr) => Ok(ConnectAddr::tcp(*addr)),
            Endpoint::Unix(path) => ConnectAddr::unix(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls() {
        let t = Target::parse("http://127.0.0.1:8080/a/b?c=1").unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/a/b?c=1");
        let t = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("127.0.0.1:80".parse().unwrap()));
        assert_eq!(t.path, "/");
        let t = Target::parse("http://[::1]:9000?x").unwrap();
        assert_eq!(t.endpoint, Endpoint::Tcp("[::1]:9000".parse().unwrap()));
        assert_eq!(t.path, "/?x");
    }

    #[test]
    fn unix_targets() {
        let t = Target::parse("unix:/tmp/s.sock").unwrap();
        assert_eq!(t.endpoint, Endpoint::Unix("/tmp/s.sock".into()));
        assert_eq!(t.path, "/");
        let t = Target::parse("unix:/tmp/s.sock:/status?full").unwrap();
        assert_eq!(t.endpoint, Endpoint::Unix("/tmp/s.sock".into()));
        assert_eq!(t.path, "/status?full");
    }

    #[test]
    fn bad_targets_are_usage_errors() {
        for bad in [
            "https://x/",
            "ftp://x",
            "http://",
            "http://h:port/",
            "unix:",
            "x",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(TargetError::Syntax(_))),
                "{bad}"
            );
        }
    }
}
