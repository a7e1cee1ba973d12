//! The loop's own timer: a min-heap of `poll_fd` deadlines consulted by `wait`, so a timed
//! wait costs no syscall. Entries of operations that ended first are dropped lazily.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Entry {
    at: Instant,
    idx: u32,
    generation: u32,
}

#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Entries whose operation still waits; the rest are stale.
    live: usize,
}

impl Timers {
    pub(super) fn push(&mut self, at: Instant, idx: u32, generation: u32) {
        self.heap.push(Reverse(Entry {
            at,
            idx,
            generation,
        }));
        self.live += 1;
    }

    /// An operation with a deadline in the heap ended: its entry is stale from now on. When
    /// stale entries outnumber live ones (long timeouts, waits that end early), the heap is
    /// rebuilt with the live ones so it stays proportional to what actually waits.
    pub(super) fn forget(&mut self, is_live: impl Fn(u32, u32) -> bool) {
        self.live = self.live.saturating_sub(1);
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
            self.heap.retain(|Reverse(e)| is_live(e.idx, e.generation));
        }
    }

    /// The earliest deadline of a live entry, dropping stale entries on top.
    pub(super) fn next(&mut self, is_live: impl Fn(u32, u32) -> bool) -> Option<Instant> {
        while let Some(Reverse(e)) = self.heap.peek() {
            if is_live(e.idx, e.generation) {
                return Some(e.at);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops the next entry due at `now`, stale or not: `(idx, generation)`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(u32, u32)> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => {
                let e = *e;
                self.heap.pop();
                Some((e.idx, e.generation))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_due_entries_in_deadline_order() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.push(now + Duration::from_millis(20), 2, 0);
        t.push(now + Duration::from_millis(10), 1, 0);
        t.push(now + Duration::from_secs(60), 3, 0);
        assert_eq!(t.next(|_, _| true), Some(now + Duration::from_millis(10)));
        let later = now + Duration::from_millis(30);
        assert_eq!(t.pop_due(later), Some((1, 0)));
        assert_eq!(t.pop_due(later), Some((2, 0)));
        assert_eq!(t.pop_due(later), None);
    }

    #[test]
    fn skips_stale_entries_when_looking_for_the_next_deadline() {
        let now = Instant::now();
        let mut t = Timers::default();
        t.push(now, 1, 0);
        t.push(now + Duration::from_secs(1), 2, 0);
        t.forget(|idx, _| idx != 1);
        assert_eq!(
            t.next(|idx, _| idx != 1),
            Some(now + Duration::from_secs(1))
        );
    }

    #[test]
    fn compacts_when_most_entries_are_stale() {
        let now = Instant::now();
        let mut t = Timers::default();
        for idx in 0..200 {
            t.push(now + Duration::from_secs(60), idx, 0);
        }
        for _ in 0..150 {
            t.forget(|idx, _| idx >= 150);
        }
        assert!(t.len() <= 2 * 50 + 1, "heap kept {} entries", t.len());
    }
}
