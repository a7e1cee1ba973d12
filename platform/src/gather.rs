//! Gathered buffers for one vectored send (`sendmsg`): the caller lists pointer and length
//! pairs; the platform keeps the C structures the kernel reads, so no libc type reaches the
//! caller.

use std::io;
use std::os::fd::RawFd;
use std::ptr;

/// Most buffers one send carries (Linux's IOV_MAX is 1024).
pub const MAX_BUFFERS: usize = 1024;

/// The buffers of one vectored send, in order. Reuse it between sends: clearing keeps its
/// allocation.
pub struct Gather {
    iovecs: Vec<libc::iovec>,
    msg: libc::msghdr,
}

// SAFETY: a Gather holds raw pointers to its caller's buffers and to its own iovec array;
// it reads none of them itself. Moving it to another thread is sound as long as the caller
// upholds the contract of the send it is handed to, which does not depend on the thread.
unsafe impl Send for Gather {}

impl Default for Gather {
    fn default() -> Self {
        Self::new()
    }
}

impl Gather {
    pub fn new() -> Gather {
        Gather {
            iovecs: Vec::new(),
            // SAFETY: msghdr is a plain C struct for which all-zero is a valid empty value.
            msg: unsafe { std::mem::zeroed() },
        }
    }

    pub fn clear(&mut self) {
        self.iovecs.clear();
    }

    /// Appends `len` bytes at `ptr`. Storing the pointer is harmless; the send that carries
    /// this gather states how long the bytes must live.
    pub fn push(&mut self, ptr: *const u8, len: usize) {
        self.iovecs.push(libc::iovec {
            iov_base: ptr as *mut libc::c_void,
            iov_len: len,
        });
    }

    /// The number of buffers.
    pub fn len(&self) -> usize {
        self.iovecs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.iovecs.is_empty()
    }

    /// Whether no more buffers fit in one send.
    pub fn is_full(&self) -> bool {
        self.iovecs.len() >= MAX_BUFFERS
    }

    /// The buffers as (pointer, length) pairs, in order.
    pub fn buffers(&self) -> impl Iterator<Item = (*const u8, usize)> + '_ {
        self.iovecs
            .iter()
            .map(|iov| (iov.iov_base as *const u8, iov.iov_len))
    }

    /// The message header naming the buffers, valid while `self` is neither moved nor
    /// changed.
    pub(crate) fn msghdr(&mut self) -> *const libc::msghdr {
        self.msg.msg_name = ptr::null_mut();
        self.msg.msg_namelen = 0;
        self.msg.msg_iov = self.iovecs.as_mut_ptr();
        self.msg.msg_iovlen = self.iovecs.len() as _;
        self.msg.msg_control = ptr::null_mut();
        self.msg.msg_controllen = 0;
        self.msg.msg_flags = 0;
        &self.msg
    }

    /// Sends the buffers on socket `fd` at once, without blocking (no SIGPIPE). Returns the
    /// bytes sent, which may be short; `ErrorKind::WouldBlock` when the socket has no room.
    ///
    /// # Safety
    /// Every buffer must be valid for reads for the call's duration.
    pub unsafe fn send_now(&mut self, fd: RawFd) -> io::Result<usize> {
        let msg = self.msghdr();
        crate::sys::retry_eintr(|| {
            // SAFETY: the header and its iovecs live in `self`; the caller guarantees the
            // buffers are readable.
            unsafe { libc::sendmsg(fd, msg, crate::sys::SEND_FLAGS) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn sends_its_buffers_in_order_at_once() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (one, two) = (b"head|".to_vec(), b"body".to_vec());
        let mut g = Gather::new();
        g.push(one.as_ptr(), one.len());
        g.push(two.as_ptr(), two.len());
        assert_eq!(g.len(), 2);
        // SAFETY: both buffers outlive the call.
        let sent = unsafe { g.send_now(a.as_raw_fd()) }.unwrap();
        assert_eq!(sent, 9);
        let mut got = [0u8; 9];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"head|body");
        g.clear();
        assert!(g.is_empty());
    }
}
