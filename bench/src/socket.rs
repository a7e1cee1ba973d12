//! The client sockets: non-blocking, close-on-exec, no SIGPIPE, TCP with Nagle off.

use std::io;
use std::os::fd::RawFd;

/// A new stream socket of `family` set up for the event loop.
pub fn new_socket(family: libc::c_int) -> io::Result<RawFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
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
    if family != libc::AF_UNIX {
        set_flag(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
    }
    Ok(fd)
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
