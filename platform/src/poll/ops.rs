//! The operations in flight: a slab of slots reused without allocation, each with a generation
//! so that a stale reference (a timer or retry entry of a finished operation) is recognised.

use crate::{Interest, Token};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::RawFd;
use std::time::Instant;

/// What an operation does.
pub(super) enum Kind {
    Accept,
    Recv,
    /// `started`: the non-blocking `connect(2)` was made and is in progress.
    Connect {
        addr: *const libc::sockaddr,
        addr_len: libc::socklen_t,
        started: bool,
    },
    Send {
        buf: *const u8,
        len: usize,
    },
    SendMsg {
        msg: *const libc::msghdr,
    },
    Wait {
        interest: Interest,
        deadline: Option<Instant>,
    },
}

impl Kind {
    pub(super) fn is_send(&self) -> bool {
        matches!(self, Kind::Send { .. } | Kind::SendMsg { .. })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum State {
    Free,
    /// Issued, not yet armed: nothing happens before `submit` or `wait`.
    Queued,
    /// Armed: waiting on its fd, or done with it and about to end.
    Armed,
}

pub(super) struct Op {
    pub(super) generation: u32,
    pub(super) state: State,
    pub(super) token: Token,
    pub(super) fd: RawFd,
    pub(super) kind: Kind,
    /// Issue order, so that sends on one fd go out in the order they were issued.
    pub(super) seq: u64,
    /// Set by `cancel` on a queued operation: arming ends it with `-ECANCELED` instead.
    pub(super) cancelled: bool,
    /// The readiness bits it waits for while attached to its fd's list (0: not attached).
    pub(super) bits: u8,
    /// Its index in its fd's list while attached.
    pub(super) pos: u32,
    /// Its deadline sits in the timer heap.
    pub(super) timed: bool,
    /// It sits in the retry list (a multishot operation stopped at its burst with data
    /// left), which serves it next: events for it wait until then.
    pub(super) retrying: bool,
}

#[derive(Default)]
pub(super) struct Slab {
    ops: Vec<Op>,
    free: Vec<u32>,
}

impl Slab {
    /// Stores a new queued operation and returns its slot.
    pub(super) fn insert(&mut self, token: Token, fd: RawFd, kind: Kind, seq: u64) -> u32 {
        let fresh = |generation| Op {
            generation,
            state: State::Queued,
            token,
            fd,
            kind,
            seq,
            cancelled: false,
            bits: 0,
            pos: 0,
            timed: false,
            retrying: false,
        };
        match self.free.pop() {
            Some(idx) => {
                let op = &mut self.ops[idx as usize];
                *op = fresh(op.generation);
                idx
            }
            None => {
                let idx = u32::try_from(self.ops.len()).unwrap_or(u32::MAX);
                self.ops.push(fresh(0));
                idx
            }
        }
    }

    /// Frees slot `idx`, bumping its generation.
    pub(super) fn remove(&mut self, idx: u32) {
        let op = &mut self.ops[idx as usize];
        debug_assert!(op.state != State::Free, "double free of op {idx}");
        op.state = State::Free;
        op.generation = op.generation.wrapping_add(1);
        self.free.push(idx);
    }

    /// Whether `idx` still holds the operation that had `generation`.
    pub(super) fn is_live(&self, idx: u32, generation: u32) -> bool {
        self.ops
            .get(idx as usize)
            .is_some_and(|op| op.generation == generation && op.state != State::Free)
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Op;
    fn index(&self, idx: u32) -> &Op {
        &self.ops[idx as usize]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    fn index_mut(&mut self, idx: u32) -> &mut Op {
        &mut self.ops[idx as usize]
    }
}

/// The live operation issued with each token, for `cancel`.
pub(super) type TokenMap = HashMap<Token, u32, BuildHasherDefault<TokenHasher>>;

/// A hasher for tokens: they are already well spread (slot, generation, kind), so one
/// multiply beats SipHash on every issue and completion.
#[derive(Default)]
pub(super) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_slots_with_a_new_generation() {
        let mut slab = Slab::default();
        let t = Token::new(1, 0, 0);
        let a = slab.insert(t, 3, Kind::Recv, 0);
        let gen_a = slab[a].generation;
        slab.remove(a);
        assert!(!slab.is_live(a, gen_a));
        let b = slab.insert(t, 4, Kind::Accept, 1);
        assert_eq!(a, b);
        assert!(slab.is_live(b, slab[b].generation));
        assert_ne!(slab[b].generation, gen_a);
        assert_eq!(slab[b].fd, 4);
    }
}
