//! evserver's platform layer: one completion-style event interface over io_uring (Linux) and
//! mio (epoll on Linux, kqueue on macOS), chosen at run time.
//!
//! # The contract
//!
//! Every operation is issued with a [`Token`] chosen by the caller and reports through
//! [`Completion`]s carrying that token:
//!
//! - A one-shot operation (`connect`, `send`, `sendmsg`, `poll_fd`) posts exactly one
//!   completion.
//! - A multishot operation (`accept_multi`, `recv_multi`) posts completions with
//!   `more == true` while it stays armed, and exactly one final completion with
//!   `more == false`. A multishot recv that sees end of file posts `result == 0`,
//!   `more == false`. A multishot operation may end on its own (e.g. `-ENOBUFS` when the
//!   provided buffers ran out): the caller re-arms it if it still wants data.
//! - After an operation's final completion, the backend and the kernel hold no reference to
//!   any memory the caller passed with it. Before it, that memory must stay valid and unmoved.
//! - `cancel(token)` asks for an operation to end early; the operation still posts its final
//!   completion (`-ECANCELED`, or its natural result if it won the race). A cancel of an
//!   operation that already finished is harmless.
//! - Nothing is guaranteed to reach the kernel before `submit` or `wait`; everything queued
//!   before one of them goes in one batch (one `io_uring_enter` on io_uring).
//! - Completions are read with `drain`, after `wait` returned.
//! - `result >= 0` is the success value (accepted fd, bytes received or sent, poll event mask);
//!   `result < 0` is a negated errno.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

mod connect;
mod gather;
pub mod identity;
pub mod notify;
pub mod process;
pub mod signals;
pub mod sys;
pub mod systemd;
pub mod token;

mod poll;
#[cfg(target_os = "linux")]
mod uring;

pub use connect::ConnectAddr;
pub use gather::{Gather, MAX_BUFFERS};
pub use token::{Token, OP_INTERNAL};

/// A finished (or, for multishot operations, progressing) operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The token the operation was issued with.
    pub token: Token,
    /// Success value (>= 0) or a negated errno (< 0).
    pub result: i32,
    /// Multishot operations only: true while the operation stays armed.
    pub more: bool,
    /// Receives only: the provided buffer holding `result` bytes of data. Read it with
    /// [`Driver::buffer`] and hand it back with [`Driver::release_buffer`].
    pub buffer: Option<u16>,
}

/// Which readiness a `poll_fd` waits for. Errors and hang-ups (what `select` reports in its
/// exceptional set) always end the wait too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    Readable,
    Writable,
}

/// The backend the caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// io_uring where the kernel allows it, else the poll backend.
    Auto,
    IoUring,
    Poll,
}

/// The backend that runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    IoUring,
    Poll,
}

/// Sizes of the backend's resources.
#[derive(Clone, Debug)]
pub struct Config {
    /// Submission queue entries (io_uring); the completion queue gets twice as many.
    pub entries: u32,
    /// Size of each provided receive buffer.
    pub recv_buffer_size: usize,
    /// Number of provided receive buffers (a power of two, at most 32768).
    pub recv_buffer_count: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            entries: 4096,
            recv_buffer_size: 16 * 1024,
            recv_buffer_count: 1024,
        }
    }
}

/// Environment variable that makes io_uring setup fail as if the kernel refused it; its value
/// is the errno name to simulate (`EPERM`, `ENOSYS`, ...). Used by tests of the fallback.
pub const SIMULATE_REFUSAL_ENV: &str = "EVSERVER_SIMULATE_IO_URING_REFUSAL";

/// One line saying why io_uring could not be set up, for the startup log.
pub fn describe_io_uring_refusal(e: &io::Error) -> String {
    #[cfg(target_os = "linux")]
    {
        uring::describe_refusal(e)
    }
    #[cfg(not(target_os = "linux"))]
    {
        format!("io_uring exists only on Linux ({e})")
    }
}

/// The event-loop driver: one per worker thread, never shared between processes.
pub struct Driver {
    inner: Inner,
}

enum Inner {
    #[cfg(target_os = "linux")]
    Uring(uring::Uring),
    Poll(poll::Poll),
}

macro_rules! dispatch {
    ($self:expr, $b:ident => $e:expr) => {
        match &mut $self.inner {
            #[cfg(target_os = "linux")]
            Inner::Uring($b) => $e,
            Inner::Poll($b) => $e,
        }
    };
}

/// What `Driver::select` chose, and why it fell back if it did.
pub struct Selected {
    pub driver: Driver,
    /// Set when `Choice::Auto` wanted io_uring but fell back to poll: a one-line reason,
    /// e.g. "io_uring refused by seccomp (EPERM)".
    pub fallback_reason: Option<String>,
}

impl Driver {
    /// Creates the driver. `Choice::IoUring` fails when io_uring cannot be set up;
    /// `Choice::Auto` falls back to the poll backend and says why.
    pub fn select(choice: Choice, config: &Config) -> io::Result<Selected> {
        match choice {
            Choice::Poll => Ok(Selected {
                driver: Driver {
                    inner: Inner::Poll(poll::Poll::new(config)?),
                },
                fallback_reason: None,
            }),
            #[cfg(target_os = "linux")]
            Choice::IoUring => Ok(Selected {
                driver: Driver {
                    inner: Inner::Uring(uring::Uring::new(config)?),
                },
                fallback_reason: None,
            }),
            #[cfg(not(target_os = "linux"))]
            Choice::IoUring => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring exists only on Linux",
            )),
            Choice::Auto => {
                #[cfg(target_os = "linux")]
                let selected = match uring::Uring::new(config) {
                    Ok(u) => Selected {
                        driver: Driver {
                            inner: Inner::Uring(u),
                        },
                        fallback_reason: None,
                    },
                    Err(e) => Selected {
                        driver: Driver {
                            inner: Inner::Poll(poll::Poll::new(config)?),
                        },
                        fallback_reason: Some(uring::describe_refusal(&e)),
                    },
                };
                #[cfg(not(target_os = "linux"))]
                let selected = Selected {
                    driver: Driver {
                        inner: Inner::Poll(poll::Poll::new(config)?),
                    },
                    fallback_reason: None,
                };
                Ok(selected)
            }
        }
    }

    pub fn kind(&self) -> BackendKind {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Uring(_) => BackendKind::IoUring,
            Inner::Poll(_) => BackendKind::Poll,
        }
    }

    /// The name shown to users: "io_uring", "epoll" or "kqueue".
    pub fn name(&self) -> &'static str {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Uring(_) => "io_uring",
            Inner::Poll(_) => poll::NAME,
        }
    }

    /// Accepts connections on `listener` until cancelled; each completion's `result` is a new
    /// connected, non-blocking, close-on-exec socket.
    pub fn accept_multi(&mut self, listener: RawFd, token: Token) {
        dispatch!(self, b => b.accept_multi(listener, token))
    }

    /// Receives from `fd` into provided buffers until end of file, an error, or a cancel.
    pub fn recv_multi(&mut self, fd: RawFd, token: Token) {
        dispatch!(self, b => b.recv_multi(fd, token))
    }

    /// Connects socket `fd` (non-blocking, not yet connected, of `addr`'s family) to `addr`.
    /// The completion's result is 0 once connected, else a negated errno (`-ECONNREFUSED`,
    /// `-ETIMEDOUT`, ...).
    ///
    /// # Safety
    /// `addr` must stay valid and unmoved until the completion.
    pub unsafe fn connect(&mut self, fd: RawFd, token: Token, addr: &ConnectAddr) {
        let (ptr, len) = (addr.as_ptr(), addr.len());
        // SAFETY: forwarded contract.
        dispatch!(self, b => unsafe { b.connect(fd, token, ptr, len) })
    }

    /// Sends `len` bytes at `buf` (with MSG_NOSIGNAL). The completion's result is the number
    /// of bytes sent, which may be short.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid and unmoved until the completion.
    pub unsafe fn send(&mut self, fd: RawFd, token: Token, buf: *const u8, len: usize) {
        // SAFETY: forwarded contract.
        dispatch!(self, b => unsafe { b.send(fd, token, buf, len) })
    }

    /// Sends the buffers of `gather` in order (with MSG_NOSIGNAL). The completion's result is
    /// the number of bytes sent, which may be short.
    ///
    /// # Safety
    /// `gather` and every buffer it lists must stay valid, unmoved and unchanged until the
    /// completion.
    pub unsafe fn sendmsg(&mut self, fd: RawFd, token: Token, gather: &mut Gather) {
        let msg = gather.msghdr();
        // SAFETY: forwarded contract: the header lives in `gather`.
        dispatch!(self, b => unsafe { b.sendmsg(fd, token, msg) })
    }

    /// Waits once until `fd` is ready for `interest` (or has an error or hang-up), or until
    /// `timeout` passes. Result: the ready event mask (> 0, POLLIN/POLLOUT/POLLERR/POLLHUP
    /// bits), `-ETIME` when the timeout fired, `-ECANCELED` when cancelled. A regular file is
    /// ready at once. Several waits on the same fd at once are allowed and all wake.
    pub fn poll_fd(
        &mut self,
        fd: RawFd,
        interest: Interest,
        timeout: Option<Duration>,
        token: Token,
    ) {
        dispatch!(self, b => b.poll_fd(fd, interest, timeout, token))
    }

    /// Asks the operation issued with `target` to end early (see the module docs).
    pub fn cancel(&mut self, target: Token) {
        dispatch!(self, b => b.cancel(target))
    }

    /// As [`Driver::cancel`], but when this returns the operation takes nothing more (a
    /// receive reads no more bytes); its final completion still arrives.
    pub fn cancel_now(&mut self, target: Token) {
        dispatch!(self, b => b.cancel_now(target))
    }

    /// Closes `fd`; the fd number is free when this returns. The caller must have cancelled
    /// its operations first; their final completions still arrive. No completion is posted
    /// for the close itself.
    pub fn close(&mut self, fd: RawFd) {
        dispatch!(self, b => b.close(fd))
    }

    /// Hands everything queued to the kernel without waiting.
    pub fn submit(&mut self) -> io::Result<()> {
        dispatch!(self, b => b.submit())
    }

    /// Submits everything queued, then blocks until at least one completion is ready or
    /// `timeout` passes (`None`: no limit). A signal gives `ErrorKind::Interrupted`.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        dispatch!(self, b => b.wait(timeout))
    }

    /// Like [`wait`](Self::wait), but on io_uring sleeps until at least `min` completions are
    /// ready (or `timeout` passes), so that a busy loop wakes once per batch instead of once
    /// per completion (with DEFER_TASKRUN the kernel does not even wake the thread before).
    /// The poll backend returns whatever one readiness wait brings, as `wait` does.
    pub fn wait_batch(&mut self, min: u32, timeout: Option<Duration>) -> io::Result<()> {
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Uring(b) => b.wait_for(min.max(1), timeout),
            Inner::Poll(b) => {
                let _ = min; // readiness comes in batches of its own
                b.wait(timeout)
            }
        }
    }

    /// Moves the ready completions to `out` (appending).
    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        dispatch!(self, b => b.drain(out))
    }

    /// The first `len` bytes of provided buffer `id`.
    pub fn buffer(&self, id: u16, len: usize) -> &[u8] {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Uring(b) => b.buffer(id, len),
            Inner::Poll(b) => b.buffer(id, len),
        }
    }

    /// Gives provided buffer `id` back to the backend for future receives.
    pub fn release_buffer(&mut self, id: u16) {
        dispatch!(self, b => b.release_buffer(id))
    }
}
