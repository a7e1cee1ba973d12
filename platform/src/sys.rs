//! Thin, safe wrappers over the few plain syscalls the server needs beside the event loop.

use std::io;
use std::os::fd::RawFd;

/// Send flags: never block, never raise SIGPIPE. macOS lacks a dependable `MSG_NOSIGNAL`;
/// accepted sockets get `SO_NOSIGPIPE` there instead.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Sends `len` bytes at `buf` on socket `fd` at once, without blocking (no SIGPIPE); returns
/// the bytes sent, which may be short, or `ErrorKind::WouldBlock` when the socket is full.
///
/// # Safety
/// `buf..buf+len` must be valid for reads for the call's duration.
pub unsafe fn send_now(fd: RawFd, buf: *const u8, len: usize) -> io::Result<usize> {
    retry_eintr(|| {
        // SAFETY: the caller guarantees the buffer is readable.
        unsafe { libc::send(fd, buf.cast(), len, SEND_FLAGS) }
    })
}

/// Runs `call` (a syscall returning a count or -1) until it is not interrupted by a signal.
pub(crate) fn retry_eintr(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let ret = call();
        if ret >= 0 {
            return Ok(ret as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Accepts one waiting connection as a non-blocking, close-on-exec socket, without blocking
/// (`ErrorKind::WouldBlock` when none waits; the listener must be non-blocking).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn accept_now(listener: RawFd) -> io::Result<RawFd> {
    retry_eintr(|| {
        // SAFETY: null address pointers are allowed (the peer address is not wanted); an
        // invalid fd gives EBADF.
        unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            ) as isize
        }
    })
    .map(|fd| fd as RawFd)
}

/// Accepts one waiting connection as a non-blocking, close-on-exec socket that raises no
/// SIGPIPE, without blocking (`ErrorKind::WouldBlock` when none waits).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn accept_now(listener: RawFd) -> io::Result<RawFd> {
    let fd = retry_eintr(|| {
        // SAFETY: null address pointers are allowed (the peer address is not wanted); an
        // invalid fd gives EBADF.
        unsafe { libc::accept(listener, std::ptr::null_mut(), std::ptr::null_mut()) as isize }
    })? as RawFd;
    if let Err(err) = configure_accepted(fd) {
        close(fd);
        return Err(err);
    }
    Ok(fd)
}

/// Makes a socket accepted on macOS what accept4 gives on Linux, and mutes its SIGPIPE.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn configure_accepted(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is the socket just accepted, which the caller owns; `one` outlives the
    // setsockopt call and its size is passed with it.
    let ok = unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) >= 0
            && libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) >= 0
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    set_nonblocking(fd)
}

/// Puts `fd` in non-blocking mode (accepting must never block the loop).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL take and return plain ints; an invalid fd gives EBADF.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK == 0
            && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Shuts down the writing half of a socket (sends FIN once queued data is out).
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown takes a plain fd and flag; an invalid fd gives EBADF, not UB.
    cvt(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map(|_| ())
}

/// A close-on-exec duplicate of `fd` (the same open socket under a second number).
pub fn dup_cloexec(fd: RawFd) -> io::Result<RawFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes a plain fd and a lowest number; an invalid fd gives EBADF.
    cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
}

/// Shuts a socket down both ways: a pending receive sees end of file, a send fails.
pub fn shutdown_both(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown takes a plain fd and flag; an invalid fd gives EBADF, not UB.
    cvt(unsafe { libc::shutdown(fd, libc::SHUT_RDWR) }).map(|_| ())
}

/// Closes `fd`, ignoring errors (there is nothing useful to do about them).
pub fn close(fd: RawFd) {
    // SAFETY: closing a plain fd number; the caller owns it.
    unsafe {
        libc::close(fd);
    }
}

/// Reads up to `buf.len()` bytes of file `fd` at `offset` (the file's own position is left
/// alone). `Ok(0)` means end of file.
pub fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    retry_eintr(|| {
        // SAFETY: `buf` is a valid, exclusively borrowed slice of `buf.len()` bytes.
        unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) as isize }
    })
}

/// Sends up to `count` bytes of file `in_fd` from `*offset` to socket `out_fd` without copying
/// through user space, advancing `*offset`. `Ok(0)` means end of file.
#[cfg(target_os = "linux")]
pub fn sendfile(out_fd: RawFd, in_fd: RawFd, offset: &mut i64, count: usize) -> io::Result<usize> {
    let mut off: libc::off_t = *offset as libc::off_t;
    // SAFETY: `off` is a valid, exclusively borrowed off_t for the call's duration.
    let n = unsafe { libc::sendfile(out_fd, in_fd, &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off as i64;
    Ok(n as usize)
}

/// Sends up to `count` bytes of file `in_fd` from `*offset` to socket `out_fd` without copying
/// through user space, advancing `*offset`. `Ok(0)` means end of file.
#[cfg(target_os = "macos")]
pub fn sendfile(out_fd: RawFd, in_fd: RawFd, offset: &mut i64, count: usize) -> io::Result<usize> {
    let mut len: libc::off_t = count as libc::off_t;
    // SAFETY: `len` is a valid, exclusively borrowed off_t; no header/trailer vector is passed.
    let ret = unsafe {
        libc::sendfile(
            in_fd,
            out_fd,
            *offset as libc::off_t,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    *offset += len as i64;
    if ret < 0 {
        let err = io::Error::last_os_error();
        if len > 0 && err.kind() == io::ErrorKind::WouldBlock {
            return Ok(len as usize);
        }
        return Err(err);
    }
    Ok(len as usize)
}

/// The errnos whose names the platform layer reads and writes (startup messages, the
/// simulated-refusal switch). Not exhaustive: only what io_uring setup and sockets report.
const ERRNO_NAMES: &[(i32, &str)] = &[
    (libc::EPERM, "EPERM"),
    (libc::ENOENT, "ENOENT"),
    (libc::EINTR, "EINTR"),
    (libc::EBADF, "EBADF"),
    (libc::EAGAIN, "EAGAIN"),
    (libc::ENOMEM, "ENOMEM"),
    (libc::EACCES, "EACCES"),
    (libc::EFAULT, "EFAULT"),
    (libc::EBUSY, "EBUSY"),
    (libc::EEXIST, "EEXIST"),
    (libc::EINVAL, "EINVAL"),
    (libc::ENFILE, "ENFILE"),
    (libc::EMFILE, "EMFILE"),
    (libc::ENOSYS, "ENOSYS"),
    (libc::EOPNOTSUPP, "EOPNOTSUPP"),
    (libc::ENOBUFS, "ENOBUFS"),
    (libc::ETIME, "ETIME"),
    (libc::ECANCELED, "ECANCELED"),
];

/// The symbolic name of `errno` (`libc::EPERM` -> `"EPERM"`), if it is one we know.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    ERRNO_NAMES
        .iter()
        .find(|&&(n, _)| n == errno)
        .map(|&(_, name)| name)
}

/// The errno named `name` (`"EPERM"` -> `libc::EPERM`), if it is one we know.
pub fn errno_from_name(name: &str) -> Option<i32> {
    ERRNO_NAMES
        .iter()
        .find(|&&(_, n)| n == name)
        .map(|&(errno, _)| errno)
}

/// Raises the soft limit on open files to the hard limit, as servers do at startup so that a
/// default soft limit (often 1024) does not cap the connections; returns the new soft limit.
/// On macOS the soft limit cannot exceed `OPEN_MAX` whatever the hard limit says.
pub fn raise_open_files_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct through a valid pointer to a local.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    let target = limit.rlim_max;
    #[cfg(target_os = "macos")]
    let target = target.min(10240); // OPEN_MAX
    if target > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit struct through a valid pointer to a local.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) })?;
        limit.rlim_cur = target;
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_the_open_files_limit_reaches_the_hard_limit() {
        let soft = raise_open_files_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above, a valid pointer to a local.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(limit.rlim_cur, soft);
        if cfg!(target_os = "linux") {
            assert_eq!(limit.rlim_cur, limit.rlim_max);
        }
    }

    #[test]
    fn errno_names_round_trip() {
        for &(errno, name) in ERRNO_NAMES {
            assert_eq!(errno_name(errno), Some(name));
            assert_eq!(errno_from_name(name), Some(errno));
        }
        assert_eq!(errno_from_name("ENOTANERRNO"), None);
        assert_eq!(errno_name(-1), None);
    }
}
