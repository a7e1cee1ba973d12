//! Serving readiness: the events of one turn, the retry list and due deadlines, and the
//! non-blocking attempts (accept, recv, send) that turn them into completions.

use super::event::Readiness;
use super::io;
use super::ops::{Kind, State};
use super::{Poll, ACCEPT_BURST, RECV_BURST};
use crate::Completion;
use std::os::fd::RawFd;
use std::time::Instant;

impl Poll {
    /// Serves one event for `fd`: ends the waits it concerns, runs the accepts and receives,
    /// then the waiting sends in issue order.
    pub(super) fn dispatch(&mut self, fd: RawFd, ready: Readiness) {
        let mut list = std::mem::take(&mut self.fd_ops);
        list.clear();
        match self.fds.get(fd) {
            Some(e) => list.extend_from_slice(&e.ops),
            None => {
                self.fd_ops = list;
                return;
            }
        }
        let mut sends = std::mem::take(&mut self.sends);
        sends.clear();
        for &idx in &list {
            let op = &self.ops[idx];
            if op.state != State::Armed || op.bits == 0 {
                continue; // ended earlier in this pass
            }
            if op.retrying {
                continue; // the retry list serves it in this pass anyway
            }
            match op.kind {
                Kind::Wait { interest, .. } => {
                    let mask = ready.mask_for(interest);
                    if mask != 0 {
                        self.finish(idx, mask);
                    }
                }
                Kind::Accept if ready.wakes_readers() => self.run_accept(idx),
                Kind::Recv if ready.wakes_readers() => {
                    // After a hang-up or error no new edge follows: read on to see it.
                    let drained_if_short = !(ready.read_closed || ready.error);
                    self.run_recv(idx, drained_if_short)
                }
                Kind::Send { .. } | Kind::SendMsg { .. } if ready.wakes_writers() => {
                    sends.push((op.seq, idx))
                }
                Kind::Connect { .. } if ready.wakes_writers() => {
                    self.try_connect(idx);
                }
                _ => {}
            }
        }
        // In issue order, until one would block again.
        sends.sort_unstable();
        for &(_, idx) in &sends {
            if !self.try_send(idx) {
                break;
            }
        }
        self.sends = sends;
        self.fd_ops = list;
        self.sync(fd);
    }

    /// Serves the multishot operations that stopped at their burst last time.
    pub(super) fn run_retries(&mut self) {
        if self.retry.is_empty() {
            return;
        }
        let mut now = std::mem::take(&mut self.retry_now);
        std::mem::swap(&mut now, &mut self.retry);
        for &(idx, generation) in &now {
            if !self.ops.is_live(idx, generation) || self.ops[idx].bits == 0 {
                continue;
            }
            self.ops[idx].retrying = false;
            let fd = self.ops[idx].fd;
            match self.ops[idx].kind {
                Kind::Accept => self.run_accept(idx),
                Kind::Recv => self.run_recv(idx, false),
                _ => {}
            }
            self.sync(fd);
        }
        now.clear();
        self.retry_now = now;
    }

    /// Ends the waits whose deadline passed with `-ETIME`.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some((idx, generation)) = self.timers.pop_due(now) {
            if !self.ops.is_live(idx, generation) {
                continue;
            }
            let fd = self.ops[idx].fd;
            self.finish(idx, -libc::ETIME);
            self.sync(fd);
        }
    }

    /// Accepts until the listener would block (or a burst is done); errors end the
    /// operation.
    pub(super) fn run_accept(&mut self, idx: u32) {
        let (fd, token, generation) = (
            self.ops[idx].fd,
            self.ops[idx].token,
            self.ops[idx].generation,
        );
        for _ in 0..ACCEPT_BURST {
            match crate::sys::accept_now(fd) {
                Ok(conn) => self.completions.push(Completion {
                    token,
                    result: conn,
                    more: true,
                    buffer: None,
                }),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // The connection died in the backlog: take the next one.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EPROTO)) => {}
                Err(e) => return self.finish(idx, io::neg_errno(&e)),
            }
        }
        self.ops[idx].retrying = true;
        self.retry.push((idx, generation));
    }

    /// Receives into pool buffers until the socket is drained (or a burst is done); end of
    /// file, errors and an empty pool end the operation. With `drained_if_short`, a receive
    /// shorter than the buffer counts as drained (safe when the event that led here showed no
    /// hang-up: data or a hang-up arriving later raises a new edge); without it, reading goes
    /// on until EAGAIN or end of file.
    pub(super) fn run_recv(&mut self, idx: u32, drained_if_short: bool) {
        let (fd, token, generation) = (
            self.ops[idx].fd,
            self.ops[idx].token,
            self.ops[idx].generation,
        );
        for _ in 0..RECV_BURST {
            let Some(id) = self.buffers.take() else {
                return self.finish(idx, -libc::ENOBUFS);
            };
            match io::recv(fd, self.buffers.slot_mut(id)) {
                Ok(0) => {
                    self.buffers.put(id);
                    return self.finish(idx, 0);
                }
                Ok(n) => {
                    self.completions.push(Completion {
                        token,
                        result: i32::try_from(n).unwrap_or(i32::MAX),
                        more: true,
                        buffer: Some(id),
                    });
                    if drained_if_short && n < self.buffers.size() {
                        return;
                    }
                }
                Err(e) => {
                    self.buffers.put(id);
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        self.finish(idx, io::neg_errno(&e));
                    }
                    return;
                }
            }
        }
        self.ops[idx].retrying = true;
        self.retry.push((idx, generation));
    }

    /// Attempts a send; returns false if it would block (the operation keeps waiting),
    /// true once it ended with its completion.
    pub(super) fn try_send(&mut self, idx: u32) -> bool {
        let fd = self.ops[idx].fd;
        let sent = match self.ops[idx].kind {
            // SAFETY: the caller of `send` keeps `buf..buf+len` valid until the completion,
            // which has not been posted yet.
            Kind::Send { buf, len } => unsafe { io::send(fd, buf, len) },
            // SAFETY: the caller of `sendmsg` keeps the msghdr, its iovecs and their buffers
            // valid until the completion, which has not been posted yet.
            Kind::SendMsg { msg } => unsafe { io::sendmsg(fd, msg) },
            _ => return true,
        };
        match sent {
            Ok(n) => self.finish(idx, i32::try_from(n).unwrap_or(i32::MAX)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) => self.finish(idx, io::neg_errno(&e)),
        }
        true
    }
}

impl Poll {
    /// Starts or finishes a connect; returns false while it is in progress (the operation
    /// keeps waiting for writability), true once it ended with its completion.
    pub(super) fn try_connect(&mut self, idx: u32) -> bool {
        let fd = self.ops[idx].fd;
        let Kind::Connect {
            addr,
            addr_len,
            started,
        } = self.ops[idx].kind
        else {
            return true;
        };
        let result = if started {
            io::socket_error(fd)
        } else {
            // SAFETY: the caller of `connect` keeps the address valid until the completion,
            // which has not been posted yet.
            unsafe { io::connect(fd, addr, addr_len) }
        };
        match result {
            Ok(()) => self.finish(idx, 0),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EALREADY)) => {
                self.ops[idx].kind = Kind::Connect {
                    addr,
                    addr_len,
                    started: true,
                };
                return false;
            }
            Err(e) => self.finish(idx, io::neg_errno(&e)),
        }
        true
    }
}
