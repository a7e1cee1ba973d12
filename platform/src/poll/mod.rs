//! The readiness backend (mio: epoll on Linux, kqueue on macOS) emulating the completion-style
//! contract of `lib.rs`.
//!
//! # How completions are emulated
//!
//! Issuing an operation only queues it; `submit` (or `wait`) arms what was queued, in issue
//! order. Arming attaches the operation to its fd (see `fds`), brings the fd's single mio
//! registration in line, and makes one eager attempt: a send goes out at once if the socket
//! has room, a recv or accept takes what is already there. Only what would block waits for an
//! event. Registrations are edge-triggered, so each eager attempt also covers readiness that
//! no new edge would announce (a recv re-armed after `-ENOBUFS` with data still queued).
//!
//! - **accept / recv (multishot)**: on readiness, accept or receive until the socket would
//!   block, at most a burst per turn (a busy connection yields to the others; its operation
//!   goes on a retry list served on the next turn without sleeping). A receive shorter than
//!   the buffer, on an event that showed no hang-up, means the socket was drained, so no
//!   second call is spent to hear EAGAIN (a hang-up raises no further edge, so after one,
//!   and on eager attempts, reading goes on until EAGAIN or end of file).
//!   Errors end the operation (`more == false`), as they do on io_uring.
//! - **send / sendmsg**: sent at arming time; on EAGAIN they wait for writability and retry.
//!   A short send is reported as is. Sends waiting on one fd go out in issue order, and a new
//!   send on an fd with a send waiting queues behind it instead of jumping ahead.
//! - **connect**: `connect(2)` at arming time; while it is in progress the socket waits for
//!   writability, then `SO_ERROR` gives the result.
//! - **poll_fd**: the fd is registered (or its registration widened) for the wait, and the
//!   wait is detached before its completion is posted, so an fd with nothing else waiting is
//!   deregistered by then and the application may close it at once. Several waits on one fd
//!   share the one registration (a waiter list, not dup(2)): an event wakes every waiter it
//!   concerns. A wait added to an fd that was already registered checks the fd once with
//!   `poll(2)`, since the edge it would wait for may be gone. An fd epoll refuses (EPERM: a
//!   regular file) is ready at once, as `select` says; on kqueue regular files are detected
//!   with `fstat`. Deadlines live in the loop's own heap (`timers`).
//!
//! Each fd is registered exactly while an operation waits on it. Attaching an operation renews
//! the registration even when its interest is unchanged (one `epoll_ctl` MOD), so an fd the
//! application closed behind the loop's back, whose registration the kernel dropped silently,
//! cannot leave a new fd under the same number unregistered.

mod buffers;
mod drive;
mod event;
mod fds;
mod io;
mod ops;
#[cfg(test)]
mod tests;
mod timers;

use crate::{Completion, Config, Interest, Token};
use buffers::BufferPool;
use event::{poll_events, wait_bits, Readiness};
use fds::{FdTable, READ, WRITE};
use ops::{Kind, Slab, State, TokenMap};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};
use timers::Timers;

/// The name shown to users.
pub const NAME: &str = if cfg!(target_os = "linux") {
    "epoll"
} else {
    "kqueue"
};

/// Most receives one recv_multi makes per turn before the other fds get theirs.
const RECV_BURST: usize = 16;
/// Most connections one accept_multi takes per turn.
const ACCEPT_BURST: usize = 64;
/// Events fetched per `epoll_wait` / `kevent`.
const EVENTS: usize = 1024;

/// The poll backend of one event loop (see the module docs).
pub struct Poll {
    poll: mio::Poll,
    events: mio::Events,
    ops: Slab,
    /// The live operation issued with each token, for `cancel`.
    by_token: TokenMap,
    fds: FdTable,
    timers: Timers,
    buffers: BufferPool,
    /// Operations issued since the last `submit`, in issue order.
    queued: Vec<u32>,
    /// Armed multishot operations that stopped at their burst with data left: `(slot, gen)`.
    retry: Vec<(u32, u32)>,
    completions: Vec<Completion>,
    next_seq: u64,
    // Scratch space reused across turns.
    ready: Vec<(RawFd, Readiness)>,
    fd_ops: Vec<u32>,
    sends: Vec<(u64, u32)>,
    retry_now: Vec<(u32, u32)>,
}

impl Poll {
    pub fn new(config: &Config) -> std::io::Result<Poll> {
        Ok(Poll {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(EVENTS),
            ops: Slab::default(),
            by_token: TokenMap::default(),
            fds: FdTable::default(),
            timers: Timers::default(),
            buffers: BufferPool::new(config.recv_buffer_size, config.recv_buffer_count)?,
            queued: Vec::new(),
            retry: Vec::new(),
            completions: Vec::new(),
            next_seq: 0,
            ready: Vec::new(),
            fd_ops: Vec::new(),
            sends: Vec::new(),
            retry_now: Vec::new(),
        })
    }

    pub fn accept_multi(&mut self, listener: RawFd, token: Token) {
        self.issue(listener, token, Kind::Accept);
    }

    pub fn recv_multi(&mut self, fd: RawFd, token: Token) {
        self.issue(fd, token, Kind::Recv);
    }

    /// # Safety
    /// `addr..addr+addr_len` must stay valid and unmoved until the completion.
    pub unsafe fn connect(
        &mut self,
        fd: RawFd,
        token: Token,
        addr: *const libc::sockaddr,
        addr_len: libc::socklen_t,
    ) {
        let kind = Kind::Connect {
            addr,
            addr_len,
            started: false,
        };
        self.issue(fd, token, kind);
    }

    /// # Safety
    /// `buf..buf+len` must stay valid and unmoved until the completion.
    pub unsafe fn send(&mut self, fd: RawFd, token: Token, buf: *const u8, len: usize) {
        // The result must fit an i32; a short send is allowed anyway.
        let len = len.min(i32::MAX as usize);
        self.issue(fd, token, Kind::Send { buf, len });
    }

    /// # Safety
    /// `msg`, its iovec array and every buffer it points to must stay valid and unmoved until
    /// the completion.
    pub unsafe fn sendmsg(&mut self, fd: RawFd, token: Token, msg: *const libc::msghdr) {
        self.issue(fd, token, Kind::SendMsg { msg });
    }

    pub fn poll_fd(
        &mut self,
        fd: RawFd,
        interest: Interest,
        timeout: Option<Duration>,
        token: Token,
    ) {
        // A deadline too far to represent is no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.issue(fd, token, Kind::Wait { interest, deadline });
    }

    pub fn cancel(&mut self, target: Token) {
        let Some(&idx) = self.by_token.get(&target) else {
            return; // finished already, or never issued
        };
        match self.ops[idx].state {
            State::Queued => self.ops[idx].cancelled = true,
            State::Armed => {
                let fd = self.ops[idx].fd;
                self.finish(idx, -libc::ECANCELED);
                self.sync(fd);
            }
            State::Free => {}
        }
    }

    /// Cancelling is synchronous here: the operation takes nothing more once it returns.
    pub fn cancel_now(&mut self, target: Token) {
        self.cancel(target);
    }

    pub fn close(&mut self, fd: RawFd) {
        if fd < 0 {
            return;
        }
        // The caller should have cancelled what runs on `fd`; whatever it left ends now,
        // before the number can be reused.
        for i in 0..self.queued.len() {
            let idx = self.queued[i];
            if self.ops[idx].fd == fd {
                self.ops[idx].cancelled = true;
            }
        }
        self.end_all_on(fd, -libc::ECANCELED);
        self.fds.deregister(self.poll.registry(), fd);
        crate::sys::close(fd);
    }

    pub fn submit(&mut self) -> std::io::Result<()> {
        let mut queued = std::mem::take(&mut self.queued);
        for &idx in &queued {
            self.arm(idx);
        }
        queued.clear();
        self.queued = queued;
        Ok(())
    }

    pub fn wait(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        let limit = timeout.and_then(|t| Instant::now().checked_add(t));
        self.submit()?;
        loop {
            let now = Instant::now();
            let mut sleep = if !self.completions.is_empty() || !self.retry.is_empty() {
                Some(Duration::ZERO)
            } else {
                match (timeout, limit) {
                    (Some(_), Some(limit)) => Some(limit.saturating_duration_since(now)),
                    _ => None,
                }
            };
            let ops = &self.ops;
            if let Some(next) = self.timers.next(|i, g| ops.is_live(i, g)) {
                let until = next.saturating_duration_since(now);
                sleep = Some(sleep.map_or(until, |s| s.min(until)));
            }

            self.poll.poll(&mut self.events, sleep)?;

            self.ready.clear();
            self.ready.extend(
                self.events
                    .iter()
                    .map(|ev| (ev.token().0 as RawFd, Readiness::of(ev))),
            );
            for i in 0..self.ready.len() {
                let (fd, readiness) = self.ready[i];
                self.dispatch(fd, readiness);
            }
            self.run_retries();
            self.fire_timers(Instant::now());

            let timed_out = match limit {
                Some(limit) => Instant::now() >= limit,
                None => timeout.is_some_and(|t| t.is_zero()),
            };
            if !self.completions.is_empty() || timed_out {
                return Ok(());
            }
        }
    }

    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.completions);
    }

    pub fn buffer(&self, id: u16, len: usize) -> &[u8] {
        self.buffers.get(id, len)
    }

    pub fn release_buffer(&mut self, id: u16) {
        self.buffers.put(id);
    }

    // ----- issuing and arming -----

    fn issue(&mut self, fd: RawFd, token: Token, kind: Kind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let idx = self.ops.insert(token, fd, kind, seq);
        self.by_token.insert(token, idx);
        self.queued.push(idx);
    }

    /// Arms a queued operation: ends it at once if it was cancelled or cannot start, else
    /// attaches it to its fd and makes its eager attempt.
    fn arm(&mut self, idx: u32) {
        let op = &mut self.ops[idx];
        if op.state != State::Queued {
            return;
        }
        op.state = State::Armed;
        let fd = op.fd;
        if op.cancelled {
            return self.finish(idx, -libc::ECANCELED);
        }
        if fd < 0 {
            return self.finish(idx, -libc::EBADF);
        }
        match op.kind {
            Kind::Accept => {
                if let Err(e) = crate::sys::set_nonblocking(fd) {
                    return self.finish(idx, io::neg_errno(&e));
                }
                if self.attach_and_register(idx, READ) {
                    self.run_accept(idx);
                }
            }
            Kind::Recv => {
                if self.attach_and_register(idx, READ) {
                    self.run_recv(idx, false);
                }
            }
            Kind::Send { .. } | Kind::SendMsg { .. } => {
                let send_waiting = self
                    .fds
                    .get(fd)
                    .is_some_and(|e| e.ops.iter().any(|&other| self.ops[other].kind.is_send()));
                if send_waiting || !self.try_send(idx) {
                    self.attach_and_register(idx, WRITE);
                }
            }
            Kind::Wait { interest, deadline } => self.arm_wait(idx, fd, interest, deadline),
            Kind::Connect { .. } => {
                if !self.try_connect(idx) {
                    self.attach_and_register(idx, WRITE);
                }
            }
        }
        self.sync(fd);
    }

    /// Arms a `poll_fd`: ready at once for fds that cannot be polled, else registered, checked
    /// once if the registration was shared, and given its deadline.
    fn arm_wait(&mut self, idx: u32, fd: RawFd, interest: Interest, deadline: Option<Instant>) {
        let ready_at_once = match interest {
            Interest::Readable => i32::from(libc::POLLIN),
            Interest::Writable => i32::from(libc::POLLOUT),
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        if io::is_always_ready(fd) {
            return self.finish(idx, ready_at_once);
        }
        self.attach(idx, wait_bits(interest));
        match self.fds.sync(self.poll.registry(), fd, true) {
            // epoll refuses fds that cannot be polled, like regular files: `select` calls
            // them ready.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                return self.finish(idx, ready_at_once)
            }
            Err(e) => return self.finish(idx, io::neg_errno(&e)),
            Ok(true) => {} // a fresh registration reports current readiness by itself
            Ok(false) => {
                // The fd was registered already, for others: the edge this wait needs may
                // have passed.
                match io::poll_now(fd, poll_events(interest)) {
                    Ok(0) => {}
                    Ok(mask) => return self.finish(idx, i32::from(mask)),
                    Err(e) => return self.finish(idx, io::neg_errno(&e)),
                }
            }
        }
        if let Some(at) = deadline {
            let generation = self.ops[idx].generation;
            self.timers.push(at, idx, generation);
            self.ops[idx].timed = true;
        }
    }

    /// Attaches `idx` to its fd and registers the fd; on failure ends the operation with the
    /// error and returns false.
    fn attach_and_register(&mut self, idx: u32, bits: u8) -> bool {
        let fd = self.ops[idx].fd;
        self.attach(idx, bits);
        match self.fds.sync(self.poll.registry(), fd, true) {
            Ok(_) => true,
            Err(e) => {
                self.finish(idx, io::neg_errno(&e));
                false
            }
        }
    }

    fn attach(&mut self, idx: u32, bits: u8) {
        let fd = self.ops[idx].fd;
        let pos = self.fds.attach(fd, idx, bits);
        let op = &mut self.ops[idx];
        op.bits = bits;
        op.pos = pos;
    }

    /// Brings `fd`'s registration in line after operations left it. Failure here can only
    /// be a narrowing that the kernel refused; the wider registration stays, which costs at
    /// most spurious events.
    fn sync(&mut self, fd: RawFd) {
        if fd >= 0 {
            let _ = self.fds.sync(self.poll.registry(), fd, false);
        }
    }

    // ----- ending -----

    /// Posts the final completion of `idx` and frees it. Detaches it from its fd but leaves
    /// the fd's registration to the caller's `sync`, so that several operations ending on
    /// one event cost one registration change.
    fn finish(&mut self, idx: u32, result: i32) {
        let op = &mut self.ops[idx];
        let (token, fd, bits, pos, timed) = (op.token, op.fd, op.bits, op.pos, op.timed);
        op.bits = 0;
        if bits != 0 {
            if let Some(moved) = self.fds.detach(fd, pos, bits) {
                self.ops[moved].pos = pos;
            }
        }
        self.completions.push(Completion {
            token,
            result,
            more: false,
            buffer: None,
        });
        if self.by_token.get(&token) == Some(&idx) {
            self.by_token.remove(&token);
        }
        self.ops.remove(idx);
        if timed {
            let ops = &self.ops;
            self.timers.forget(|i, g| ops.is_live(i, g));
        }
    }

    /// Ends every operation attached to `fd` with `result`.
    fn end_all_on(&mut self, fd: RawFd, result: i32) {
        let mut list = std::mem::take(&mut self.fd_ops);
        list.clear();
        if let Some(e) = self.fds.get(fd) {
            list.extend_from_slice(&e.ops);
        }
        for &idx in &list {
            self.finish(idx, result);
        }
        self.fd_ops = list;
    }
}
