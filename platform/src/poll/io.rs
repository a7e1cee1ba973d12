//! The non-blocking socket calls the poll backend performs on readiness, each retrying EINTR.

use std::io;
use std::os::fd::RawFd;

use crate::sys::{retry_eintr, SEND_FLAGS};

/// The negated errno of `err`, as a completion result.
pub(super) fn neg_errno(err: &io::Error) -> i32 {
    -err.raw_os_error().unwrap_or(libc::EIO)
}

/// Receives into `buf` without blocking. `Ok(0)` is end of file.
pub(super) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    retry_eintr(|| {
        // SAFETY: `buf` is a valid, exclusively borrowed slice of `buf.len()` bytes.
        unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) }
    })
}

/// Starts connecting the non-blocking socket `fd` to `addr`; `EINPROGRESS` means it goes
/// on in the background.
///
/// # Safety
/// `addr..addr+addr_len` must be valid for reads.
pub(super) unsafe fn connect(
    fd: RawFd,
    addr: *const libc::sockaddr,
    addr_len: libc::socklen_t,
) -> io::Result<()> {
    retry_eintr(|| {
        // SAFETY: the caller guarantees the address is readable for `addr_len` bytes.
        unsafe { libc::connect(fd, addr, addr_len) as isize }
    })
    .map(drop)
}

/// The pending error of socket `fd` (`SO_ERROR`), which ends a background connect.
pub(super) fn socket_error(fd: RawFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid, exclusively borrowed and sized as passed.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    match err {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Sends `len` bytes at `buf` without blocking.
///
/// # Safety
/// `buf..buf+len` must be valid for reads.
pub(super) unsafe fn send(fd: RawFd, buf: *const u8, len: usize) -> io::Result<usize> {
    retry_eintr(|| {
        // SAFETY: the caller guarantees `buf..buf+len` is readable.
        unsafe { libc::send(fd, buf.cast(), len, SEND_FLAGS) }
    })
}

/// Sends the gathered buffers of `msg` without blocking.
///
/// # Safety
/// `msg`, its iovec array and the buffers it points to must be valid for reads.
pub(super) unsafe fn sendmsg(fd: RawFd, msg: *const libc::msghdr) -> io::Result<usize> {
    retry_eintr(|| {
        // SAFETY: the caller guarantees `msg` and everything it points to is readable.
        unsafe { libc::sendmsg(fd, msg, SEND_FLAGS) }
    })
}

/// The current readiness of `fd` for `events`, checked with `poll(2)` without waiting:
/// `revents` restricted to `events` and the error and hang-up bits. `POLLNVAL` gives EBADF.
pub(super) fn poll_now(fd: RawFd, events: libc::c_short) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    retry_eintr(|| {
        // SAFETY: `pfd` is one valid, exclusively borrowed pollfd; the timeout is zero.
        unsafe { libc::poll(&mut pfd, 1, 0) as isize }
    })?;
    if pfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(pfd.revents & (events | libc::POLLERR | libc::POLLHUP))
}

/// Whether `fd` is a regular file (or directory), which `select` reports ready at once and
/// kqueue would not.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn is_always_ready(fd: RawFd) -> bool {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a full `stat` into the valid buffer on success; we read it only then.
    let mode = unsafe {
        if libc::fstat(fd, st.as_mut_ptr()) < 0 {
            return false;
        }
        st.assume_init().st_mode
    };
    matches!(mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn recv_and_send_do_not_block() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let mut buf = [0u8; 8];
        let err = recv(a.as_raw_fd(), &mut buf).expect_err("nothing to read yet");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        // SAFETY: the literal is valid for its length.
        let n = unsafe { send(b.as_raw_fd(), b"hi".as_ptr(), 2) }.expect("send");
        assert_eq!(n, 2);
        assert_eq!(recv(a.as_raw_fd(), &mut buf).expect("recv"), 2);
        assert_eq!(&buf[..2], b"hi");
    }

    #[test]
    fn poll_now_reports_readiness_and_bad_fds() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        assert_eq!(poll_now(a.as_raw_fd(), libc::POLLIN).expect("poll"), 0);
        assert_eq!(
            poll_now(a.as_raw_fd(), libc::POLLOUT).expect("poll"),
            libc::POLLOUT
        );
        drop(b);
        assert_ne!(poll_now(a.as_raw_fd(), libc::POLLIN).expect("poll"), 0);
        let err = poll_now(1 << 20, libc::POLLIN).expect_err("not an open fd");
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
