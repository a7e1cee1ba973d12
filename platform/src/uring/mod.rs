//! The io_uring backend: multishot accept and recv on a provided-buffer ring, connect, send/sendmsg,
//! poll with a linked timeout, all queued and handed to the kernel in one `io_uring_enter`.
//!
//! # What the kernel sees
//!
//! Caller operations carry the caller's token as `user_data`. The backend's own operations
//! (cancels, closes, the two halves of a timed poll) carry a token whose op is `OP_INTERNAL`,
//! whose generation field holds one of the `KIND_*` values below and whose slot field holds
//! the timed-poll slot where one applies; `drain` never shows those to the caller.
//!
//! `close` is a plain `close(2)`, so the fd number is free when it returns, as with the poll
//! backend. Operations already submitted hold their own reference to the file and are not
//! disturbed. If an operation on that fd is still queued, the queue is submitted first (one
//! extra `io_uring_enter`), so that operation takes its file reference before the number can
//! be reused; should that submit fail, the close is queued behind it as an `IORING_OP_CLOSE`
//! instead (done at the next submit or wait, its CQE swallowed).
//!
//! The ring must be used from the thread that created it: with SINGLE_ISSUER and
//! DEFER_TASKRUN the kernel refuses (EEXIST) submits and waits from any other thread.

mod buf_ring;
mod setup;
mod timed_poll;

#[cfg(test)]
mod tests;

pub use setup::describe_refusal;

use crate::{Completion, Config, Interest, Token, OP_INTERNAL};
use buf_ring::{BufRing, GROUP};
use io_uring::squeue::{Entry, Flags};
use io_uring::{cqueue, opcode, types, IoUring};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};
use timed_poll::TimedPolls;

/// Internal operation kinds (the generation field of an `OP_INTERNAL` token).
const KIND_CANCEL: u32 = 1;
const KIND_CLOSE: u32 = 2;
const KIND_TIMED_POLL: u32 = 3;
const KIND_LINK_TIMEOUT: u32 = 4;
const KIND_PROBE: u32 = 5;

/// The `user_data` of an internal operation.
#[inline]
fn internal(kind: u32, slot: u32) -> u64 {
    Token::new(slot, kind, OP_INTERNAL).to_u64()
}

/// Submission entries that did not fit in a full submission queue, kept in order. A linked
/// pair must reach the kernel in one batch, so it is kept (and later pushed) whole.
enum Queued {
    One(Entry),
    Linked([Entry; 2]),
}

/// The io_uring event loop backend.
pub struct Uring {
    // Field order matters for drop: the ring (and with it every operation the kernel still
    // holds) goes before the buffer memory.
    ring: IoUring,
    bufs: BufRing,
    timed: TimedPolls,
    /// Completions reaped by `wait` (which looks for at least one the caller sees), not yet
    /// handed out by `drain`.
    ready: Vec<Completion>,
    /// The fds of the operations queued since everything was last submitted (for `close`).
    unsubmitted_fds: Vec<RawFd>,
    /// Entries waiting for room in the submission queue (empty except under a burst larger
    /// than the queue while the kernel refuses to take more).
    queued: VecDeque<Queued>,
}

impl Uring {
    /// Sets up the ring and the receive buffers, or says why io_uring is unusable here.
    pub fn new(config: &Config) -> io::Result<Uring> {
        let mut ring = setup::build_ring(config.entries)?;
        setup::check_features(&ring)?;
        let mut bufs = BufRing::new(config.recv_buffer_count, config.recv_buffer_size)?;
        setup::register_buf_ring(&ring, &bufs)?;
        setup::probe_multishot_recv(&mut ring, &mut bufs)?;
        Ok(Uring {
            ring,
            bufs,
            timed: TimedPolls::default(),
            ready: Vec::new(),
            unsubmitted_fds: Vec::new(),
            queued: VecDeque::new(),
        })
    }

    pub fn accept_multi(&mut self, listener: RawFd, token: Token) {
        self.unsubmitted_fds.push(listener);
        let sqe = opcode::AcceptMulti::new(types::Fd(listener))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(token.to_u64());
        // SAFETY: multishot accept without an address buffer references no memory.
        unsafe { self.push(sqe) }
    }

    pub fn recv_multi(&mut self, fd: RawFd, token: Token) {
        self.unsubmitted_fds.push(fd);
        let sqe = opcode::RecvMulti::new(types::Fd(fd), GROUP)
            .build()
            .user_data(token.to_u64());
        // SAFETY: the recv writes only into provided buffers, which live as long as the ring.
        unsafe { self.push(sqe) }
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
        self.unsubmitted_fds.push(fd);
        let sqe = opcode::Connect::new(types::Fd(fd), addr, addr_len)
            .build()
            .user_data(token.to_u64());
        // SAFETY: the caller keeps the address valid until the completion.
        unsafe { self.push(sqe) }
    }

    /// # Safety
    /// `buf..buf+len` must stay valid and unmoved until the completion.
    pub unsafe fn send(&mut self, fd: RawFd, token: Token, buf: *const u8, len: usize) {
        self.unsubmitted_fds.push(fd);
        // More than 4 GiB at once goes out as a short send.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let sqe = opcode::Send::new(types::Fd(fd), buf, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(token.to_u64());
        // SAFETY: the caller keeps the buffer valid until the completion.
        unsafe { self.push(sqe) }
    }

    /// # Safety
    /// `msg`, its iovecs and their buffers must stay valid and unmoved until the completion.
    pub unsafe fn sendmsg(&mut self, fd: RawFd, token: Token, msg: *const libc::msghdr) {
        self.unsubmitted_fds.push(fd);
        let sqe = opcode::SendMsg::new(types::Fd(fd), msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
            .user_data(token.to_u64());
        // SAFETY: the caller keeps the message and its buffers valid until the completion.
        unsafe { self.push(sqe) }
    }

    pub fn poll_fd(
        &mut self,
        fd: RawFd,
        interest: Interest,
        timeout: Option<Duration>,
        token: Token,
    ) {
        self.unsubmitted_fds.push(fd);
        let events = match interest {
            Interest::Readable => libc::POLLIN | libc::POLLPRI,
            Interest::Writable => libc::POLLOUT | libc::POLLPRI,
        };
        let poll = opcode::PollAdd::new(types::Fd(fd), events as u32).build();
        match timeout {
            None => {
                // SAFETY: a poll references no memory.
                unsafe { self.push(poll.user_data(token.to_u64())) }
            }
            Some(timeout) => {
                let (slot, timespec) = self.timed.insert(token, timeout);
                let poll = poll
                    .user_data(internal(KIND_TIMED_POLL, slot))
                    .flags(Flags::IO_LINK);
                let timeout = opcode::LinkTimeout::new(timespec)
                    .build()
                    .user_data(internal(KIND_LINK_TIMEOUT, slot));
                // SAFETY: the timespec lives in its slot, which is freed only after both
                // CQEs arrived.
                unsafe { self.push_linked([poll, timeout]) }
            }
        }
    }

    pub fn cancel(&mut self, target: Token) {
        // A timed poll runs under an internal user_data; cancelling the poll is enough (its
        // linked timeout then completes with -ECANCELED).
        let user_data = match self.timed.find(target) {
            Some(slot) => internal(KIND_TIMED_POLL, slot),
            None => target.to_u64(),
        };
        let sqe = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(internal(KIND_CANCEL, 0));
        // SAFETY: a cancel references no memory.
        unsafe { self.push(sqe) }
    }

    /// As [`Self::cancel`], but returns once the operation can take nothing more (a
    /// synchronous cancel, Linux 6.0; an older kernel gets the asynchronous one).
    pub fn cancel_now(&mut self, target: Token) {
        // Only a submitted operation can be found.
        let _ = self.submit();
        let user_data = match self.timed.find(target) {
            Some(slot) => internal(KIND_TIMED_POLL, slot),
            None => target.to_u64(),
        };
        let found = self
            .ring
            .submitter()
            .register_sync_cancel(None, types::CancelBuilder::user_data(user_data));
        match found {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {} // it had ended
            Err(_) => self.cancel(target),
        }
    }

    pub fn close(&mut self, fd: RawFd) {
        if self.unsubmitted_fds.contains(&fd) {
            // An operation queued on `fd` must take its file reference before the number is
            // freed (and maybe reused by the app before our next submit).
            let _ = self.submit();
            if self.unsubmitted_fds.contains(&fd) {
                let sqe = opcode::Close::new(types::Fd(fd))
                    .build()
                    .user_data(internal(KIND_CLOSE, 0));
                // SAFETY: a close references no memory.
                unsafe { self.push(sqe) }
                return;
            }
        }
        crate::sys::close(fd);
    }

    pub fn submit(&mut self) -> io::Result<()> {
        if self.queued.is_empty() && self.ring.submission().is_empty() {
            return Ok(()); // nothing to hand over: spare the syscall
        }
        let res = self
            .push_queued()
            .and_then(|()| self.ring.submit().map(drop));
        self.forget_submitted_fds();
        transient_ok(res)
    }

    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.wait_for(1, timeout)
    }

    /// Waits until at least `min` caller-visible completions are ready, or `timeout` passes.
    pub fn wait_for(&mut self, min: u32, timeout: Option<Duration>) -> io::Result<()> {
        // The kernel cannot post more than the completion queue holds.
        let min = (min as usize).clamp(1, self.ring.completion().capacity());
        // If the queued entries cannot all go in now, still wait: the CQ has to drain first.
        transient_ok(self.push_queued())?;
        if !self.ready.is_empty() {
            // Completions reaped by an earlier wait are still to be drained: do not block.
            return self.submit();
        }
        let deadline = timeout.map(|t| (Instant::now(), t));
        // The first wait gets the whole timeout: no second clock read for it.
        let mut first = true;
        loop {
            // Waiting for one completion sets GETEVENTS, which DEFER_TASKRUN needs to run the
            // deferred work that posts completions.
            let want = min.saturating_sub(self.ready.len()).max(1);
            let res = match deadline {
                None => self.ring.submitter().submit_and_wait(want),
                Some((start, timeout)) => {
                    let left = if first {
                        timeout
                    } else {
                        timeout.saturating_sub(start.elapsed())
                    };
                    first = false;
                    let timespec = timed_poll::timespec(left);
                    let args = types::SubmitArgs::new().timespec(&timespec);
                    self.ring.submitter().submit_with_args(want, &args)
                }
            };
            self.forget_submitted_fds();
            match res {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => return Ok(()),
                Err(e) => return transient_ok(Err(e)),
            }
            // Only completions the caller sees end the wait: the kernel may have posted just
            // the internal half of a timed poll, or a cancel's own result.
            let Uring {
                ring,
                bufs,
                timed,
                ready,
                ..
            } = self;
            reap(ring, bufs, timed, ready);
            if ready.len() >= min {
                return Ok(());
            }
        }
    }

    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.ready);
        let Uring {
            ring, bufs, timed, ..
        } = self;
        reap(ring, bufs, timed, out);
    }

    pub fn buffer(&self, id: u16, len: usize) -> &[u8] {
        self.bufs.get(id, len)
    }

    pub fn release_buffer(&mut self, id: u16) {
        self.bufs.release(id)
    }

    /// Clears the record of fds with queued operations once the kernel has taken them all.
    #[inline]
    fn forget_submitted_fds(&mut self) {
        if !self.unsubmitted_fds.is_empty()
            && self.queued.is_empty()
            && self.ring.submission().is_empty()
        {
            self.unsubmitted_fds.clear();
        }
    }

    /// Queues one entry, submitting first if the submission queue is full.
    ///
    /// # Safety
    /// Whatever memory `sqe` references must stay valid until its completion.
    unsafe fn push(&mut self, sqe: Entry) {
        if self.queued.is_empty() {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return;
            }
            // SAFETY: as above.
            if self.ring.submit().is_ok() && unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return;
            }
        }
        self.queued.push_back(Queued::One(sqe));
    }

    /// Queues a linked pair so that both entries reach the kernel in the same batch.
    ///
    /// # Safety
    /// Whatever memory the entries reference must stay valid until their completions.
    unsafe fn push_linked(&mut self, pair: [Entry; 2]) {
        if self.queued.is_empty() {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push_multiple(&pair) }.is_ok() {
                return;
            }
            if self.ring.submit().is_ok()
                // SAFETY: as above.
                && unsafe { self.ring.submission().push_multiple(&pair) }.is_ok()
            {
                return;
            }
        }
        self.queued.push_back(Queued::Linked(pair));
    }

    /// Moves the entries that waited for room into the submission queue, submitting as often
    /// as it takes.
    fn push_queued(&mut self) -> io::Result<()> {
        while let Some(front) = self.queued.front() {
            let mut sq = self.ring.submission();
            // SAFETY: the memory behind queued entries was promised valid when they were
            // queued (see `push` and `push_linked`).
            let pushed = unsafe {
                match front {
                    Queued::One(sqe) => sq.push(sqe),
                    Queued::Linked(pair) => sq.push_multiple(pair),
                }
            };
            drop(sq);
            match pushed {
                Ok(()) => {
                    self.queued.pop_front();
                }
                Err(_) => {
                    if self.ring.submit()? == 0 {
                        // The kernel took nothing from a full queue: let the caller drain.
                        return Err(io::Error::from_raw_os_error(libc::EBUSY));
                    }
                }
            }
        }
        Ok(())
    }

    /// The number of timed polls in flight (tests).
    #[cfg(test)]
    fn timed_polls_in_flight(&self) -> usize {
        self.timed.len()
    }

    /// The number of provided buffers the caller holds (tests).
    #[cfg(test)]
    fn buffers_held(&self) -> u32 {
        self.bufs.held_count()
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // Entries never submitted are dropped with the ring. Unregister the buffers first so
        // no receive can pick one while the ring is torn down.
        let _ = self.ring.submitter().unregister_buf_ring(GROUP);
    }
}

/// Moves the CQEs in the completion queue to `out` as the caller's completions, in one batch:
/// internal CQEs only update the backend's books (and complete a timed poll when its second
/// half arrives); receive buffers named by a CQE become held by the caller.
fn reap(ring: &mut IoUring, bufs: &mut BufRing, timed: &mut TimedPolls, out: &mut Vec<Completion>) {
    let cq = ring.completion();
    out.reserve(cq.len());
    for cqe in cq {
        let token = Token::from_u64(cqe.user_data());
        let result = cqe.result();
        if token.op() == OP_INTERNAL {
            let done = match token.generation() {
                KIND_TIMED_POLL => timed.poll_done(token.slot(), result),
                KIND_LINK_TIMEOUT => timed.timeout_done(token.slot(), result),
                _ => None,
            };
            if let Some((token, result)) = done {
                out.push(Completion {
                    token,
                    result,
                    more: false,
                    buffer: None,
                });
            }
            continue;
        }
        let flags = cqe.flags();
        let buffer = cqueue::buffer_select(flags);
        if let Some(id) = buffer {
            bufs.mark_held(id);
        }
        out.push(Completion {
            token,
            result,
            more: cqueue::more(flags),
            buffer,
        });
    }
}

/// Maps the transient errors of `io_uring_enter` to `Ok`: EBUSY and EAGAIN mean the completion
/// queue must drain (or memory is short) before the kernel takes more; the caller drains.
fn transient_ok(res: io::Result<()>) -> io::Result<()> {
    match res {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => Ok(()),
        res => res,
    }
}
