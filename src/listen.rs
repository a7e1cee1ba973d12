//! Listen addresses (`HOST:PORT`, `[IPV6]:PORT`, `unix:PATH`, `fd://N`): parsing, socket
//! creation, and adopting a socket inherited already listening (systemd, a supervisor).

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

/// Where to listen, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// A socket inherited already listening (`fd://N`); once adopted, the listener's address
    /// is what the socket is bound to.
    Inherited(RawFd),
}

/// A listen address the user wrote that cannot be used.
#[derive(Debug)]
pub struct AddressError(pub String);

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `HOST:PORT`, `[IPV6]:PORT`, `:PORT` (all IPv4 interfaces), `unix:PATH` or
/// `fd://N`.
pub fn parse_address(text: &str) -> Result<Address, AddressError> {
    if let Some(number) = text.strip_prefix("fd://") {
        return match number.parse::<RawFd>() {
            Ok(fd) if fd >= 0 => Ok(Address::Inherited(fd)),
            _ => Err(AddressError(format!(
                "'{text}': '{number}' is not a file descriptor"
            ))),
        };
    }
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(AddressError(format!("'{text}': empty unix socket path")));
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    let with_host = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    if let Ok(addr) = with_host.parse::<SocketAddr>() {
        return Ok(Address::Tcp(addr));
    }
    let Some((host, port)) = with_host.rsplit_once(':') else {
        return Err(AddressError(format!(
            "'{text}': expected HOST:PORT, [IPV6]:PORT or unix:PATH"
        )));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| AddressError(format!("'{text}': '{port}' is not a port number")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .map(Address::Tcp)
            .ok_or_else(|| AddressError(format!("'{text}': host '{host}' has no address"))),
        Err(e) => Err(AddressError(format!(
            "'{text}': cannot resolve '{host}': {e}"
        ))),
    }
}

/// A bound, listening, non-blocking socket and what to tell users and apps about it. Owned
/// by the master; dropping a listener it bound to a unix path removes the socket's file.
pub struct Listener {
    pub socket: Socket,
    pub address: Address,
    /// Bound by someone else (`fd://N`): its file, if any, is theirs.
    inherited: bool,
}

/// A worker's view of a listener: the fd to accept on and its address. It owns nothing.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub fd: RawFd,
    pub address: Address,
}

impl Listener {
    /// Binds and listens. TCP listeners get SO_REUSEADDR and TCP_NODELAY (inherited by
    /// accepted sockets on Linux), and SO_REUSEPORT when `reuse_port` (one listener per
    /// worker on the same port, the kernel spreading connections); an existing unix socket
    /// file is replaced only if nothing listens on it.
    pub fn bind(address: &Address, backlog: i32, reuse_port: bool) -> io::Result<Listener> {
        let socket = match address {
            Address::Inherited(fd) => return Listener::adopt(*fd),
            Address::Tcp(addr) => {
                let socket = Socket::new(
                    Domain::for_address(*addr),
                    Type::STREAM,
                    Some(Protocol::TCP),
                )?;
                socket.set_reuse_address(true)?;
                #[cfg(any(target_os = "linux", target_os = "macos"))]
                if reuse_port {
                    socket.set_reuse_port(true)?;
                }
                #[cfg(not(any(target_os = "linux", target_os = "macos")))]
                let _ = reuse_port;
                if addr.is_ipv6() {
                    socket.set_only_v6(true)?;
                }
                socket.set_tcp_nodelay(true)?;
                socket.bind(&SockAddr::from(*addr))?;
                socket
            }
            Address::Unix(path) => {
                remove_stale_unix_socket(path)?;
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                socket.bind(&SockAddr::unix(path)?)?;
                socket
            }
        };
        socket.listen(backlog)?;
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        let address = match address {
            Address::Tcp(_) => match socket.local_addr()?.as_socket() {
                Some(actual) => Address::Tcp(actual),
                None => address.clone(),
            },
            _ => address.clone(),
        };
        Ok(Listener {
            socket,
            address,
            inherited: false,
        })
    }

    /// Takes over `fd`, a stream socket already listening (inherited from systemd or a
    /// supervisor): refused if it is not one, so a wrong number fails at startup.
    pub fn adopt(fd: RawFd) -> io::Result<Listener> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
        // SAFETY: fstat only reads the fd's metadata; a closed fd fails with EBADF.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(invalid("not a socket"));
        }
        // SAFETY: the fd is an open socket (checked above) handed to this process to own;
        // nothing else in the process uses it.
        let socket = unsafe { <Socket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let listening = socket.r#type().ok() == Some(Type::STREAM) && socket.is_listener()?;
        if !listening {
            // Not ours to close: leave the fd as it was.
            std::mem::forget(socket);
            return Err(invalid("not a listening stream socket"));
        }
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        let local = socket.local_addr()?;
        let address = match (local.as_socket(), local.as_pathname()) {
            (Some(addr), _) => Address::Tcp(addr),
            (None, Some(path)) => Address::Unix(path.to_path_buf()),
            (None, None) => Address::Inherited(fd),
        };
        Ok(Listener {
            socket,
            address,
            inherited: true,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            fd: self.fd(),
            address: self.address.clone(),
        }
    }

    /// The address as shown in the ready line: `http://127.0.0.1:8080`, `unix:/path`.
    pub fn display(&self) -> String {
        self.address.display()
    }
}

impl Endpoint {
    /// SERVER_NAME and SERVER_PORT for the environ.
    pub fn server_name_and_port(&self) -> (String, String) {
        match &self.address {
            Address::Tcp(addr) => (addr.ip().to_string(), addr.port().to_string()),
            Address::Unix(path) => (path.display().to_string(), String::new()),
            Address::Inherited(fd) => (format!("fd://{fd}"), String::new()),
        }
    }
}

impl Address {
    /// As shown in the ready line: `http://127.0.0.1:8080`, `unix:/path`.
    pub fn display(&self) -> String {
        match self {
            Address::Tcp(addr) => format!("http://{addr}"),
            Address::Unix(path) => format!("unix:{}", path.display()),
            Address::Inherited(fd) => format!("fd://{fd}"),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let (Address::Unix(path), false) = (&self.address, self.inherited) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes a unix socket file left by a dead server; refuses if a server still answers there.
fn remove_stale_unix_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::from(io::ErrorKind::AddrInUse));
    }
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse_address("127.0.0.1:8080").unwrap(),
            Address::Tcp("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_address("[::1]:0").unwrap(),
            Address::Tcp("[::1]:0".parse().unwrap())
        );
        assert_eq!(
            parse_address(":9000").unwrap(),
            Address::Tcp("0.0.0.0:9000".parse().unwrap())
        );
        assert_eq!(
            parse_address("unix:/tmp/x.sock").unwrap(),
            Address::Unix("/tmp/x.sock".into())
        );
        assert!(matches!(
            parse_address("localhost:80").unwrap(),
            Address::Tcp(_)
        ));
    }

    #[test]
    fn adopts_a_listening_socket_and_refuses_anything_else() {
        use std::os::fd::IntoRawFd;
        let bound = Listener::bind(&parse_address("127.0.0.1:0").unwrap(), 16, false).unwrap();
        let address = bound.address.clone();
        let fd = bound.socket.try_clone().unwrap().into_raw_fd();
        drop(bound);
        let adopted =
            Listener::bind(&parse_address(&format!("fd://{fd}")).unwrap(), 1, false).unwrap();
        assert_eq!(adopted.address, address);
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = Listener::adopt(file.as_raw_fd()).err().unwrap();
        assert_eq!(err.to_string(), "not a socket");
        let unbound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let err = Listener::adopt(unbound.as_raw_fd()).err().unwrap();
        assert_eq!(err.to_string(), "not a listening stream socket");
        assert!(parse_address("fd://x").is_err());
    }

    #[test]
    fn refuses_nonsense() {
        assert!(parse_address("8080").is_err());
        assert!(parse_address("127.0.0.1:http").is_err());
        assert!(parse_address("unix:").is_err());
        assert!(parse_address("127.0.0.1:70000").is_err());
    }

    #[test]
    fn binds_port_zero_and_reports_the_real_port() {
        let l = Listener::bind(&parse_address("127.0.0.1:0").unwrap(), 16, false).unwrap();
        let (name, port) = l.endpoint().server_name_and_port();
        assert_eq!(name, "127.0.0.1");
        assert_ne!(port, "0");
        assert!(l.display().starts_with("http://127.0.0.1:"));
    }
}
