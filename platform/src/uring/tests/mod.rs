//! Tests of the io_uring backend over real sockets, pipes and eventfds, grouped by feature.
//! Each test skips with a message when the kernel refuses io_uring.

mod accept;
mod cancel;
mod lifecycle;
mod poll;
mod recv;
mod send;

use super::{describe_refusal, Uring};
use crate::{Completion, Config, Interest, Token};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A small configuration, so tests do not map the default 16 MiB of buffers each.
pub(super) fn small_config() -> Config {
    Config {
        entries: 64,
        recv_buffer_size: 4096,
        recv_buffer_count: 64,
    }
}

/// A ring with `config`, or `None` (with a message) when the kernel refuses io_uring.
pub(super) fn ring_with(config: &Config) -> Option<Uring> {
    match Uring::new(config) {
        Ok(ring) => Some(ring),
        Err(e) => {
            eprintln!("skipping io_uring test: {}", describe_refusal(&e));
            None
        }
    }
}

pub(super) fn ring() -> Option<Uring> {
    ring_with(&small_config())
}

/// A caller token with op kind 1.
pub(super) fn token(slot: u32) -> Token {
    Token::new(slot, 0, 1)
}

/// Submits, then waits and drains until `n` completions arrived or `limit` passed.
pub(super) fn collect(u: &mut Uring, n: usize, limit: Duration) -> Vec<Completion> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < n {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        u.wait(Some(deadline - now)).expect("wait");
        u.drain(&mut out);
    }
    out
}

/// Submits, waits `quiet`, and returns whatever arrived meanwhile.
pub(super) fn settle(u: &mut Uring, quiet: Duration) -> Vec<Completion> {
    let deadline = Instant::now() + quiet;
    let mut out = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        u.wait(Some(deadline - now)).expect("wait");
        u.drain(&mut out);
    }
    out
}

/// Takes ownership of a raw fd the test created.
pub(super) fn owned(fd: RawFd) -> OwnedFd {
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by a successful syscall and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A pipe: (read end, write end).
pub(super) fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
    (owned(fds[0]), owned(fds[1]))
}

/// Writes `bytes` to `fd`, all at once.
pub(super) fn write_fd(fd: RawFd, bytes: &[u8]) {
    // SAFETY: `bytes` is a live slice for the duration of the call.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(
        n,
        bytes.len() as isize,
        "{}",
        std::io::Error::last_os_error()
    );
}
