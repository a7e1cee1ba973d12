//! A parked request's fdevent wait in flight: one poll per fd, the first to complete wins, the
//! others are cancelled, and the request resumes once every poll has reported (so no stale
//! completion can reach the next wait).

use crate::wsgi::fdevent::MAX_WAIT_FDS;
use std::os::fd::RawFd;

/// The operation kind of the poll for fd number `index` of a wait: `FIRST_OP + index`.
pub const FIRST_OP: u8 = 0x40;

const _: () = assert!(FIRST_OP as usize + MAX_WAIT_FDS <= 0xFF && MAX_WAIT_FDS <= 64);

/// The operation kind for the poll of the wait's `index`-th fd.
pub fn op_for(index: usize) -> u8 {
    debug_assert!(index < MAX_WAIT_FDS);
    FIRST_OP + index as u8
}

/// The index of the wait's fd that an operation kind polls, if it is a wait's poll.
pub fn index_of(op: u8) -> Option<usize> {
    let index = op.checked_sub(FIRST_OP)? as usize;
    (index < MAX_WAIT_FDS).then_some(index)
}

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
    fds: Vec<RawFd>,
    /// Bit i: the poll of fd index i has not reported yet.
    pending: u64,
    outcome: Option<Outcome>,
}

impl InFlight {
    /// A wait whose polls, one per fd of `fds` (at most [`MAX_WAIT_FDS`]), were all issued.
    pub fn new(fds: Vec<RawFd>) -> InFlight {
        debug_assert!(!fds.is_empty() && fds.len() <= MAX_WAIT_FDS);
        let pending = if fds.len() == 64 {
            u64::MAX
        } else {
            (1u64 << fds.len()) - 1
        };
        InFlight {
            fds,
            pending,
            outcome: None,
        }
    }

    /// The polls that have not reported (bit i: fd index i).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Records the completion of poll `index` with `result` (an event mask, `-ETIME` or
    /// `-ECANCELED`, or another negated errno, which counts as ready as `select` would).
    pub fn complete(&mut self, index: usize, result: i32) -> Next {
        let bit = 1u64 << index;
        if index >= self.fds.len() || self.pending & bit == 0 {
            // Not ours, or reported already: nothing changes.
            return Next {
                cancel: 0,
                resume: None,
            };
        }
        self.pending &= !bit;
        let mut cancel = 0;
        if self.outcome.is_none() && result != -libc::ECANCELED {
            self.outcome = Some(if result == -libc::ETIME {
                Outcome::TimedOut
            } else {
                Outcome::Ready(self.fds[index])
            });
            cancel = self.pending;
        }
        let resume = (self.pending == 0).then(|| self.outcome.unwrap_or(Outcome::Cancelled));
        Next { cancel, resume }
    }
}

/// The indices of the bits set in `mask`.
pub fn indices(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |i| mask & (1u64 << i) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        for i in 0..MAX_WAIT_FDS {
            assert_eq!(index_of(op_for(i)), Some(i));
        }
        assert_eq!(index_of(FIRST_OP - 1), None);
        assert_eq!(index_of(FIRST_OP + MAX_WAIT_FDS as u8), None);
        assert_eq!(index_of(0xFF), None);
    }

    #[test]
    fn single_fd_resumes_at_once() {
        let mut w = InFlight::new(vec![7]);
        let next = w.complete(0, libc::POLLIN as i32);
        assert_eq!(next.cancel, 0);
        assert_eq!(next.resume, Some(Outcome::Ready(7)));
    }

    #[test]
    fn single_fd_timeout() {
        let mut w = InFlight::new(vec![7]);
        assert_eq!(w.complete(0, -libc::ETIME).resume, Some(Outcome::TimedOut));
    }

    #[test]
    fn first_wins_others_are_cancelled_and_resume_waits_for_them() {
        let mut w = InFlight::new(vec![3, 4, 5]);
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
        let mut w = InFlight::new(vec![3, 4]);
        let next = w.complete(0, -libc::ETIME);
        assert_eq!(next.cancel, 0b10);
        assert_eq!(
            w.complete(1, -libc::ECANCELED).resume,
            Some(Outcome::TimedOut)
        );
    }

    #[test]
    fn all_cancelled_resumes_nothing() {
        let mut w = InFlight::new(vec![3, 4]);
        assert_eq!(w.complete(0, -libc::ECANCELED).resume, None);
        assert_eq!(
            w.complete(1, -libc::ECANCELED).resume,
            Some(Outcome::Cancelled)
        );
    }

    #[test]
    fn duplicate_and_foreign_reports_are_ignored() {
        let mut w = InFlight::new(vec![3, 4]);
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
        let mut w = InFlight::new(vec![3]);
        assert_eq!(w.complete(0, -libc::EBADF).resume, Some(Outcome::Ready(3)));
    }

    #[test]
    fn sixty_four_fds() {
        let mut w = InFlight::new((0..64).collect());
        assert_eq!(w.pending(), u64::MAX);
        let next = w.complete(63, 1);
        assert_eq!(next.cancel.count_ones(), 63);
    }
}
