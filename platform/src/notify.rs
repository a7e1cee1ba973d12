//! A level-triggered flag another thread (or the loop itself) can poll as an fd: readable
//! while raised. An eventfd on Linux, a pipe elsewhere.

use std::io;
use std::os::fd::RawFd;

/// A flag readable as an fd. Raising and lowering are single non-blocking system calls, safe
/// from any thread; the fds are closed on drop.
#[derive(Debug)]
pub struct Notifier {
    read: RawFd,
    /// The end `raise` writes to (the same fd as `read` for an eventfd).
    write: RawFd,
}

impl Notifier {
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<Notifier> {
        // SAFETY: eventfd takes two integers and returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Notifier {
            read: fd,
            write: fd,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<Notifier> {
        let (read, write) = crate::process::pipe()?;
        Ok(Notifier { read, write })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read
    }

    /// Makes the fd readable (raising a raised flag changes nothing a poller sees).
    pub fn raise(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local to an fd this notifier owns; a full counter or
        // pipe only means the flag is raised already.
        unsafe {
            libc::write(self.write, one.as_ptr().cast(), one.len());
        }
    }

    /// Makes the fd not readable until the next `raise`.
    pub fn lower(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a local buffer from an fd this notifier owns (non-blocking).
            let n = unsafe { libc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) };
            // An eventfd is emptied by one read of 8 bytes; a pipe may hold several raises.
            if n <= 0 || self.read == self.write {
                return;
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        crate::sys::close(self.read);
        if self.write != self.read {
            crate::sys::close(self.write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Interest;

    fn readable(n: &Notifier) -> bool {
        crate::process::wait_ready(&[(n.fd(), Interest::Readable)], 0).unwrap()[0]
    }

    #[test]
    fn readable_exactly_while_raised() {
        let n = Notifier::new().unwrap();
        assert!(!readable(&n));
        n.raise();
        n.raise();
        assert!(readable(&n));
        n.lower();
        assert!(!readable(&n));
        n.lower();
        assert!(!readable(&n));
    }

    #[test]
    fn raised_from_another_thread() {
        let n = std::sync::Arc::new(Notifier::new().unwrap());
        let other = n.clone();
        std::thread::spawn(move || other.raise()).join().unwrap();
        assert!(readable(&n));
    }
}
