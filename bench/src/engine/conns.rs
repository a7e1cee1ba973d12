//! The connections of a worker: opening, closing and re-opening them, handing them requests
//! (at once, or on the fixed-rate schedule), and aborting what timed out.

use super::{State, Worker, LATE_AFTER, OP_CONNECT, OP_RECV, OP_SEND};
use crate::stats::Failure;
use evserver_platform::Token;
use std::time::Instant;

impl Worker<'_> {
    /// Opens a socket for `slot` and starts connecting it.
    pub(super) fn open(&mut self, slot: u32) {
        let fd = match self.plan.addr.new_socket() {
            Ok(fd) => fd,
            Err(e) => {
                // Out of fds or the like: say so once, count it, leave the slot closed.
                if !self.socket_error_shown {
                    self.socket_error_shown = true;
                    eprintln!("evserver bench: cannot open a socket: {e}");
                }
                if self.recording && self.take(1) == 1 {
                    self.stats.fail(Failure::Connect, self.sec);
                }
                self.parked.push(slot);
                return;
            }
        };
        let c = &mut self.conns[slot as usize];
        c.fd = fd;
        c.state = State::Connecting;
        c.started_at = self.now;
        let token = c.token(OP_CONNECT, slot);
        // SAFETY: the address outlives the worker, whose shutdown waits for every operation
        // to end (or leaks the address if the kernel does not give them back).
        unsafe { self.driver.connect(fd, token, &self.plan.addr) };
        self.ops += 1;
    }

    /// Closes `slot`'s socket, cancelling its operations; their completions are ignored.
    pub(super) fn close(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        if c.fd < 0 {
            return;
        }
        if c.state == State::Connecting {
            self.driver.cancel(c.token(OP_CONNECT, slot));
        }
        if c.recv_armed {
            self.driver.cancel(c.token(OP_RECV, slot));
        }
        if c.send_busy {
            self.driver.cancel(c.token(OP_SEND, slot));
        }
        self.driver.close(c.fd);
        c.fd = -1;
        c.state = State::Closed;
        c.generation = Token::next_generation(c.generation);
        c.recv_armed = false;
        c.send_busy = false;
        c.idle = false;
        c.parser.reset();
    }

    /// Closes `slot` and opens it again, unless no request is left for it.
    pub(super) fn reopen(&mut self, slot: u32) {
        self.close(slot);
        if self.recording && self.quota == Some(0) {
            self.parked.push(slot);
        } else {
            self.open(slot);
        }
    }

    /// Ends the requests outstanding on `slot`: the oldest failed with `kind`, the others go
    /// back to the quota. Then the connection is re-opened.
    pub(super) fn abort(&mut self, slot: u32, kind: Failure) {
        let c = &mut self.conns[slot as usize];
        let (outstanding, warm) = (c.outstanding, c.warm);
        c.outstanding = 0;
        c.warm = 0;
        c.pending = 0;
        self.in_flight -= u64::from(outstanding);
        if outstanding > 0 {
            let fresh = outstanding - warm;
            if warm == 0 {
                if self.recording {
                    self.stats.fail(kind, self.sec);
                }
                self.give_back(u64::from(fresh - 1));
            } else {
                self.give_back(u64::from(fresh));
            }
        }
        self.reopen(slot);
    }

    /// A connect failed (or timed out): that counts as one failed request.
    pub(super) fn connect_failed(&mut self, slot: u32, kind: Failure) {
        if self.recording && self.take(1) == 1 {
            self.stats.fail(kind, self.sec);
        }
        self.reopen(slot);
    }

    /// `slot` is open with nothing outstanding: give it work or list it idle.
    pub(super) fn ready(&mut self, slot: u32) {
        if self.schedule.is_none() {
            let k = self.take(self.plan.pipeline);
            if k > 0 {
                let at = if self.plan.close {
                    self.conns[slot as usize].started_at
                } else {
                    self.now
                };
                return self.send_batch(slot, k, at);
            }
        }
        let c = &mut self.conns[slot as usize];
        if !c.idle {
            c.idle = true;
            self.idle.push(slot);
        }
    }

    /// Pops an idle connection that is still open and free.
    pub(super) fn pop_idle(&mut self) -> Option<u32> {
        while let Some(slot) = self.idle.pop() {
            let c = &mut self.conns[slot as usize];
            if c.idle {
                c.idle = false;
                if c.state == State::Open && c.outstanding == 0 {
                    return Some(slot);
                }
            }
        }
        None
    }

    pub(super) fn serve_idle(&mut self) {
        if self.quota == Some(0) && self.recording {
            return;
        }
        while let Some(slot) = self.pop_idle() {
            self.ready(slot);
            if self.quota == Some(0) && self.recording {
                return;
            }
        }
    }

    /// Opens the closed connections again while there are requests for them; each gets
    /// one attempt per turn (a socket that cannot be created parks its slot again).
    pub(super) fn serve_parked(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        let mut parked = std::mem::take(&mut self.parked);
        for slot in parked.drain(..) {
            if self.recording && self.quota == Some(0) {
                self.parked.push(slot);
            } else {
                self.open(slot);
            }
        }
        if self.parked.is_empty() {
            self.parked = parked; // keep the capacity
        }
    }

    /// Rate mode: sends what is due, on idle connections, while there are some.
    pub(super) fn send_scheduled(&mut self) {
        loop {
            let Some(s) = &self.schedule else { return };
            let (due, k) = (s.due(), s.k);
            if due > self.now {
                return;
            }
            let Some(slot) = self.pop_idle() else {
                // Due, and every connection waits for a response: counted once per request.
                if self.recording && self.starved_at != Some(k) {
                    self.starved_at = Some(k);
                    self.stats.starved += 1;
                }
                return;
            };
            if self.take(1) == 0 {
                self.ready(slot);
                return;
            }
            let at = if self.plan.close {
                self.conns[slot as usize].started_at.max(due)
            } else {
                due
            };
            self.send_batch(slot, 1, at);
            if self.recording && self.now.saturating_duration_since(due) > LATE_AFTER {
                self.stats.late += 1;
            }
            if let Some(s) = &mut self.schedule {
                s.k += 1;
            }
        }
    }

    /// Sends `k` requests on `slot`; latency counts from `planned` (fast mode: the send).
    pub(super) fn send_batch(&mut self, slot: u32, k: u32, planned: Instant) {
        let now = self.now;
        let c = &mut self.conns[slot as usize];
        c.outstanding += k;
        c.sent_at = if self.plan.close && self.schedule.is_none() {
            c.started_at
        } else {
            now
        };
        c.planned_at = planned;
        self.in_flight += u64::from(k);
        if self.recording {
            self.stats.sent += u64::from(k);
        }
        if c.send_busy {
            c.pending += k;
            return;
        }
        let len = k as usize * self.plan.request_len;
        self.issue_send(slot, 0, len);
    }

    pub(super) fn issue_send(&mut self, slot: u32, off: usize, end: usize) {
        let c = &mut self.conns[slot as usize];
        c.send_off = off;
        c.send_end = end;
        c.send_busy = true;
        let token = c.token(OP_SEND, slot);
        let bytes = &self.plan.batch[off..end];
        // SAFETY: the batch outlives the worker, whose shutdown waits for every operation to
        // end (or leaks the batch if the kernel does not give them back).
        unsafe { self.driver.send(c.fd, token, bytes.as_ptr(), bytes.len()) };
        self.ops += 1;
        self.sends_queued += 1;
    }

    pub(super) fn sweep_timeouts(&mut self) {
        let timeout = self.plan.timeout;
        for slot in 0..self.conns.len() as u32 {
            let c = &self.conns[slot as usize];
            match c.state {
                State::Connecting if self.now.saturating_duration_since(c.started_at) > timeout => {
                    self.connect_failed(slot, Failure::Timeout)
                }
                State::Open
                    if c.outstanding > 0
                        && self.now.saturating_duration_since(c.sent_at) > timeout =>
                {
                    self.abort(slot, Failure::Timeout)
                }
                _ => {}
            }
        }
    }

    // ----- completions -----

    /// The connection is done (the server closes it, or `--close`): what is still
    /// outstanding goes back to the quota, and the connection is re-opened.
    pub(super) fn finish_conn(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        let fresh = c.outstanding - c.warm;
        self.in_flight -= u64::from(c.outstanding);
        c.outstanding = 0;
        c.warm = 0;
        c.pending = 0;
        self.give_back(u64::from(fresh));
        self.reopen(slot);
    }
}
