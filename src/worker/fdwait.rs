//! Parked requests: the fdevent wait in flight of a running response (one poll per fd, the
//! first to complete wins, the others are cancelled, and the request resumes once every poll
//! has reported, so no stale completion can reach the next wait). The wait's whole state is
//! here: [`InFlight`] in the response's `Running`, issued, completed and cancelled by the
//! functions below.

use super::conn::{Conn, State};
use super::op::Op;
use super::Worker;
use crate::wsgi::fdevent::{PendingWait, MAX_WAIT_FDS};
use std::os::fd::RawFd;
use std::time::Instant;

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This fd (the first to report) is ready, or has an error or hang-up.
    Ready(RawFd),
    /// The timeout passed first.
    TimedOut,
    /// Every poll was cancelled (the connection is closing): nothing to resume.
    Cancelled,
}

/// What the worker does after a poll of the wait reported.
#[derive(Debug, PartialEq, Eq)]
pub struct Next {
    /// Polls to cancel (bit i: the poll of fd index i), because another one won.
    pub cancel: u64,
    /// Set when every poll has reported: resume the request with this outcome.
    pub resume: Option<Outcome>,
}

/// The polls of one wait.
#[derive(Debug)]
pub struct InFlight {
    /// The fds polled, in order: the first, and the others (most waits name one fd, and then
    /// this allocates nothing).
    first: RawFd,
    others: Box<[RawFd]>,
    /// Bit i: the poll of fd index i has not reported yet.
    pending: u64,
    outcome: Option<Outcome>,
    /// When the request parked (the status page's time parked).
    pub since: Instant,
}

impl InFlight {
    /// A wait whose polls, one per fd of `fds` (at most [`MAX_WAIT_FDS`]), were all issued.
    pub fn new(fds: impl IntoIterator<Item = RawFd>, since: Instant) -> InFlight {
        let mut fds = fds.into_iter();
        let first = fds.next().unwrap_or(-1);
        let others: Box<[RawFd]> = fds.collect();
        let count = 1 + others.len();
        debug_assert!(first >= 0 && count <= MAX_WAIT_FDS);
        let pending = if count == 64 {
            u64::MAX
        } else {
            (1u64 << count) - 1
        };
        InFlight {
            first,
            others,
            pending,
            outcome: None,
            since,
        }
    }

    /// The polls that have not reported (bit i: fd index i).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Records the completion of poll `index` with `result` (an event mask, `-ETIME` or
    /// `-ECANCELED`, or another negated errno, which counts as ready as `select` would).
    pub fn complete(&mut self, index: usize, result: i32) -> Next {
        let bit = 1u64.checked_shl(index as u32).unwrap_or(0);
        let fd = match index {
            0 => Some(self.first),
            _ => self.others.get(index - 1).copied(),
        };
        let (Some(fd), true) = (fd, self.pending & bit != 0) else {
            // Not ours, or reported already: nothing changes.
            return Next {
                cancel: 0,
                resume: None,
            };
        };
        self.pending &= !bit;
        let mut cancel = 0;
        if self.outcome.is_none() && result != -libc::ECANCELED {
            self.outcome = Some(if result == -libc::ETIME {
                Outcome::TimedOut
            } else {
                Outcome::Ready(fd)
            });
            cancel = self.pending;
        }
        let resume = (self.pending == 0).then(|| self.outcome.unwrap_or(Outcome::Cancelled));
        Next { cancel, resume }
    }
}

/// The indices of the bits set in `mask`.
fn indices(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |i| mask & (1u64 << i) != 0)
}

impl Worker {
    /// Parks the running response on `wait`: one poll per fd; the first carries the timeout
    /// (one timer per wait).
    pub(super) fn park(&mut self, slot: u32, conn: &mut Conn, wait: &PendingWait) {
        if conn.eof {
            // The client went away while the response ran (or was on a pool thread): nobody
            // would notice it again while it waits.
            self.close_now(slot, conn);
            return;
        }
        let generation = conn.generation;
        let State::App(running) = &mut conn.state else {
            return;
        };
        for (i, &(fd, interest)) in wait.fds.iter().enumerate() {
            let timeout = if i == 0 { wait.timeout } else { None };
            self.driver
                .poll_fd(fd, interest, timeout, Op::wait(i).token(slot, generation));
        }
        conn.ops += wait.fds.len() as u32;
        running.parked = Some(InFlight::new(wait.fds.iter().map(|&(fd, _)| fd), self.now));
    }

    /// Cancels every poll of the parked wait that has not reported; the response stays parked
    /// until they have (each reports `-ECANCELED` or its natural result).
    pub(super) fn cancel_wait(&mut self, slot: u32, conn: &Conn) {
        let State::App(running) = &conn.state else {
            return;
        };
        if let Some(wait) = &running.parked {
            for i in indices(wait.pending()) {
                self.driver.cancel(Op::wait(i).token(slot, conn.generation));
            }
        }
    }

    /// A poll of the parked wait reported: once the wait is over, the response resumes with
    /// its outcome in the request's timeout flag.
    pub(super) fn on_wait(&mut self, slot: u32, conn: &mut Conn, index: u8, result: i32) {
        let generation = conn.generation;
        let State::App(running) = &mut conn.state else {
            return;
        };
        let Some(wait) = &mut running.parked else {
            return;
        };
        let next = wait.complete(index as usize, result);
        for i in indices(next.cancel) {
            self.driver.cancel(Op::wait(i).token(slot, generation));
        }
        let Some(outcome) = next.resume else {
            return; // the other polls of the wait have yet to report
        };
        let parked = self.now.saturating_duration_since(wait.since);
        self.parked_micros += parked.as_micros() as u64;
        running.parked = None;
        let flag = running.response.timeout_flag.get();
        match outcome {
            Outcome::Ready(fd) => flag.set_outcome(Some(fd)),
            Outcome::TimedOut => flag.set_outcome(None),
            Outcome::Cancelled => return,
        }
        self.drive(slot, conn);
        self.advance(slot, conn);
        self.arm_recv(slot, conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_fd_resumes_at_once() {
        let mut w = InFlight::new(vec![7], Instant::now());
        let next = w.complete(0, libc::POLLIN as i32);
        assert_eq!(next.cancel, 0);
        assert_eq!(next.resume, Some(Outcome::Ready(7)));
    }

    #[test]
    fn single_fd_timeout() {
        let mut w = InFlight::new(vec![7], Instant::now());
        assert_eq!(w.complete(0, -libc::ETIME).resume, Some(Outcome::TimedOut));
    }

    #[test]
    fn first_wins_others_are_cancelled_and_resume_waits_for_them() {
        let mut w = InFlight::new(vec![3, 4, 5], Instant::now());
        let next = w.complete(1, libc::POLLIN as i32);
        assert_eq!(indices(next.cancel).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(next.resume, None);
        // A loser that completed naturally before its cancel landed changes nothing.
        let next = w.complete(2, libc::POLLIN as i32);
        assert_eq!(
            next,
            Next {
                cancel: 0,
                resume: None
            }
        );
        let next = w.complete(0, -libc::ECANCELED);
        assert_eq!(next.resume, Some(Outcome::Ready(4)));
    }

    #[test]
    fn timeout_first_wins() {
        let mut w = InFlight::new(vec![3, 4], Instant::now());
        let next = w.complete(0, -libc::ETIME);
        assert_eq!(next.cancel, 0b10);
        assert_eq!(
            w.complete(1, -libc::ECANCELED).resume,
            Some(Outcome::TimedOut)
        );
    }

    #[test]
    fn all_cancelled_resumes_nothing() {
        let mut w = InFlight::new(vec![3, 4], Instant::now());
        assert_eq!(w.complete(0, -libc::ECANCELED).resume, None);
        assert_eq!(
            w.complete(1, -libc::ECANCELED).resume,
            Some(Outcome::Cancelled)
        );
    }

    #[test]
    fn duplicate_and_foreign_reports_are_ignored() {
        let mut w = InFlight::new(vec![3, 4], Instant::now());
        w.complete(0, libc::POLLIN as i32);
        assert_eq!(
            w.complete(0, libc::POLLIN as i32),
            Next {
                cancel: 0,
                resume: None
            }
        );
        assert_eq!(
            w.complete(9, libc::POLLIN as i32),
            Next {
                cancel: 0,
                resume: None
            }
        );
        assert_eq!(w.pending(), 0b10);
    }

    #[test]
    fn an_error_counts_as_ready() {
        let mut w = InFlight::new(vec![3], Instant::now());
        assert_eq!(w.complete(0, -libc::EBADF).resume, Some(Outcome::Ready(3)));
    }

    #[test]
    fn sixty_four_fds() {
        let mut w = InFlight::new(0..64, Instant::now());
        assert_eq!(w.pending(), u64::MAX);
        let next = w.complete(63, 1);
        assert_eq!(next.cancel.count_ones(), 63);
    }
}
