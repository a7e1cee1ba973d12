//! Client sockets: the address a connect is made to, in the form the kernel reads (kept by the
//! caller at a stable place while connects are in flight), and new non-blocking sockets of
//! its family (close-on-exec, no SIGPIPE, TCP with Nagle off).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::Path;

/// An address to connect to: TCP over IPv4 or IPv6, or a unix socket path.
#[derive(Clone)]
pub struct ConnectAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    family: libc::c_int,
}

impl ConnectAddr {
    pub fn tcp(addr: SocketAddr) -> ConnectAddr {
        // SAFETY: sockaddr_storage is plain data; all zeros is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let (len, family) = match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
                let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                (std::mem::size_of::<libc::sockaddr_in>(), libc::AF_INET)
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above.
                let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                (std::mem::size_of::<libc::sockaddr_in6>(), libc::AF_INET6)
            }
        };
        ConnectAddr {
            storage,
            len: len as libc::socklen_t,
            family,
        }
    }

    /// A unix socket path; refused when it does not fit a `sockaddr_un` with its final NUL.
    pub fn unix(path: &Path) -> io::Result<ConnectAddr> {
        // SAFETY: sockaddr_storage is plain data; all zeros is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
        let sun = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_un) };
        let bytes = path.as_os_str().as_encoded_bytes();
        if bytes.len() >= sun.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unix socket path longer than {} bytes",
                    sun.sun_path.len() - 1
                ),
            ));
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &b) in sun.sun_path.iter_mut().zip(bytes) {
            *dst = b as libc::c_char;
        }
        Ok(ConnectAddr {
            storage,
            len: std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            family: libc::AF_UNIX,
        })
    }

    pub fn is_unix(&self) -> bool {
        self.family == libc::AF_UNIX
    }

    /// A new non-blocking, close-on-exec stream socket of this address's family, with no
    /// SIGPIPE and, for TCP, Nagle's algorithm off.
    pub fn new_socket(&self) -> io::Result<RawFd> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: plain socket(2) call.
        let fd = unsafe {
            libc::socket(
                self.family,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(self.family, libc::SOCK_STREAM, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            // SAFETY: fcntl on the socket just created, which we own.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
            set_flag(fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE);
        }
        if !self.is_unix() {
            set_flag(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
        }
        Ok(fd)
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub(crate) fn len(&self) -> libc::socklen_t {
        self.len
    }
}

/// Turns on an integer socket option; a refusal only costs performance, so it is ignored.
fn set_flag(fd: RawFd, level: libc::c_int, name: libc::c_int) {
    let one: libc::c_int = 1;
    // SAFETY: `one` outlives the call and its size is passed with it.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_path_too_long_is_refused() {
        let long = "x".repeat(200);
        assert!(ConnectAddr::unix(Path::new(&long)).is_err());
        assert!(ConnectAddr::unix(Path::new("/tmp/s")).unwrap().is_unix());
    }

    #[test]
    fn tcp_sockets_are_non_blocking() {
        let addr = ConnectAddr::tcp("127.0.0.1:1".parse().unwrap());
        let fd = addr.new_socket().unwrap();
        // SAFETY: fcntl on a socket we own, closed right after.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        crate::sys::close(fd);
        assert!(flags & libc::O_NONBLOCK != 0);
    }
}
