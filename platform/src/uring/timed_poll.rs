//! Timed `poll_fd`s: a `PollAdd` linked to a `LinkTimeout` posts two CQEs, in either order.
//! This slab keeps each pair until both arrived and turns them into the caller's one completion.

use crate::Token;
use io_uring::types::Timespec;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

/// One timed poll in flight.
struct Slot {
    /// The caller's token, to which the one completion goes.
    token: Token,
    /// The deadline handed to `LinkTimeout`. Boxed so it never moves while the kernel may read it.
    timespec: Box<Timespec>,
    /// The poll's CQE result, once it arrived.
    poll: Option<i32>,
    /// The linked timeout's CQE result, once it arrived.
    timeout: Option<i32>,
}

/// The timed polls in flight, indexed by the slot number carried in their internal user_data.
#[derive(Default)]
pub(super) struct TimedPolls {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Caller token -> slot, so `cancel(token)` can find the poll's internal user_data.
    by_token: HashMap<u64, u32, BuildHasherDefault<TokenHasher>>,
}

impl TimedPolls {
    /// Takes a slot for a poll with `token` and deadline `timeout`. Returns the slot index and
    /// the timespec's address, valid until the slot is freed (after both CQEs).
    pub(super) fn insert(&mut self, token: Token, timeout: Duration) -> (u32, *const Timespec) {
        let timespec = timespec(timeout);
        let index = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.token = token;
                *slot.timespec = timespec;
                slot.poll = None;
                slot.timeout = None;
                index
            }
            None => {
                self.slots.push(Slot {
                    token,
                    timespec: Box::new(timespec),
                    poll: None,
                    timeout: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.by_token.insert(token.to_u64(), index);
        (index, &*self.slots[index as usize].timespec)
    }

    /// The slot of the timed poll issued with `token`, if one is in flight.
    #[inline]
    pub(super) fn find(&self, token: Token) -> Option<u32> {
        self.by_token.get(&token.to_u64()).copied()
    }

    /// Records the poll's CQE; returns the caller's completion once both CQEs are in.
    pub(super) fn poll_done(&mut self, index: u32, result: i32) -> Option<(Token, i32)> {
        let slot = self.slots.get_mut(index as usize)?;
        slot.poll = Some(result);
        self.finish_if_complete(index)
    }

    /// Records the linked timeout's CQE; returns the caller's completion once both CQEs are in.
    pub(super) fn timeout_done(&mut self, index: u32, result: i32) -> Option<(Token, i32)> {
        let slot = self.slots.get_mut(index as usize)?;
        slot.timeout = Some(result);
        self.finish_if_complete(index)
    }

    fn finish_if_complete(&mut self, index: u32) -> Option<(Token, i32)> {
        let slot = &mut self.slots[index as usize];
        let (Some(poll), Some(timeout)) = (slot.poll, slot.timeout) else {
            return None;
        };
        slot.poll = None;
        slot.timeout = None;
        let token = slot.token;
        if self.by_token.get(&token.to_u64()) == Some(&index) {
            self.by_token.remove(&token.to_u64());
        }
        self.free.push(index);
        Some((token, resolve(poll, timeout)))
    }

    /// The number of timed polls in flight (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// The caller's result from the poll's and the timeout's CQE results: the ready mask if the
/// poll won, `-ETIME` if the timeout cancelled it, else the poll's own error (`-ECANCELED`
/// after a cancel).
pub(super) fn resolve(poll: i32, timeout: i32) -> i32 {
    if poll == -libc::ECANCELED && timeout == -libc::ETIME {
        -libc::ETIME
    } else {
        poll
    }
}

/// A kernel timespec for `d`, saturating instead of turning negative.
pub(super) fn timespec(d: Duration) -> Timespec {
    Timespec::new()
        .sec(d.as_secs().min(i64::MAX as u64))
        .nsec(d.subsec_nanos())
}

/// A cheap hasher for token keys: tokens are distinct small slots with a generation on top,
/// so a multiply mixes them well enough and costs far less than SipHash.
#[derive(Default)]
pub(super) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n ^ (n >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: i32 = libc::POLLIN as i32;

    #[test]
    fn ready_poll_wins_whatever_the_order() {
        let mut polls = TimedPolls::default();
        let t = Token::new(1, 2, 3);
        let (i, _) = polls.insert(t, Duration::from_secs(1));
        assert_eq!(polls.poll_done(i, MASK), None);
        assert_eq!(polls.timeout_done(i, -libc::ECANCELED), Some((t, MASK)));

        let (i, _) = polls.insert(t, Duration::from_secs(1));
        assert_eq!(polls.timeout_done(i, -libc::ECANCELED), None);
        assert_eq!(polls.poll_done(i, MASK), Some((t, MASK)));
        assert_eq!(polls.len(), 0);
    }

    #[test]
    fn fired_timeout_gives_etime_whatever_the_order() {
        let mut polls = TimedPolls::default();
        let t = Token::new(7, 0, 1);
        let (i, _) = polls.insert(t, Duration::from_millis(5));
        assert_eq!(polls.timeout_done(i, -libc::ETIME), None);
        assert_eq!(
            polls.poll_done(i, -libc::ECANCELED),
            Some((t, -libc::ETIME))
        );

        let (i, _) = polls.insert(t, Duration::from_millis(5));
        assert_eq!(polls.poll_done(i, -libc::ECANCELED), None);
        assert_eq!(polls.timeout_done(i, -libc::ETIME), Some((t, -libc::ETIME)));
    }

    #[test]
    fn cancelled_poll_gives_ecanceled() {
        assert_eq!(
            resolve(-libc::ECANCELED, -libc::ECANCELED),
            -libc::ECANCELED
        );
        // The timeout fired too late to cancel a poll that was already done.
        assert_eq!(resolve(MASK, -libc::EALREADY), MASK);
        assert_eq!(resolve(MASK, -libc::ETIME), MASK);
        assert_eq!(resolve(-libc::EBADF, -libc::ECANCELED), -libc::EBADF);
    }

    #[test]
    fn slots_are_reused_and_found_by_token() {
        let mut polls = TimedPolls::default();
        let a = Token::new(1, 0, 1);
        let b = Token::new(2, 0, 1);
        let (ia, ts_a) = polls.insert(a, Duration::from_secs(1));
        let (ib, _) = polls.insert(b, Duration::from_secs(2));
        assert_ne!(ia, ib);
        assert_eq!(polls.find(a), Some(ia));
        assert_eq!(polls.find(b), Some(ib));
        polls.poll_done(ia, MASK);
        polls.timeout_done(ia, -libc::ECANCELED);
        assert_eq!(polls.find(a), None);
        let c = Token::new(3, 0, 1);
        let (ic, ts_c) = polls.insert(c, Duration::from_secs(3));
        assert_eq!(ic, ia, "the freed slot is reused");
        assert_eq!(ts_c, ts_a, "and so is its timespec, which never moved");
    }

    #[test]
    fn huge_timeouts_saturate() {
        let ts = timespec(Duration::MAX);
        // SAFETY: Timespec is a transparent wrapper over two i64-sized fields.
        let raw: [i64; 2] = unsafe { std::mem::transmute(ts) };
        assert_eq!(raw[0], i64::MAX);
        assert!(raw[1] >= 0);
    }
}
