//! The worker's list of WebSocket connections with frames waiting in their outbox, and the fd
//! that wakes the loop when the list stops being empty.

use evserver_platform::notify::Notifier;
use std::io;
use std::sync::Mutex;

/// A connection, as the loop names it: slot and generation.
pub type ConnId = (u32, u32);

/// Shared by every WebSocket of a worker (an `Arc` in each) and the loop. The mutex guards a
/// list that application threads push to and the loop empties; neither holds it for more than
/// a push or a swap.
pub struct Hub {
    dirty: Mutex<Vec<ConnId>>,
    wake: Notifier,
}

impl Hub {
    pub fn new() -> io::Result<Hub> {
        Ok(Hub {
            dirty: Mutex::new(Vec::new()),
            wake: Notifier::new()?,
        })
    }

    /// The fd the loop polls: readable while some outbox waits.
    pub fn wake_fd(&self) -> std::os::fd::RawFd {
        self.wake.fd()
    }

    /// Notes that connection `id` has frames to send.
    pub fn mark(&self, id: ConnId) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        if dirty.is_empty() {
            self.wake.raise();
        }
        dirty.push(id);
    }

    /// Notes that each of `ids` has frames to send: one lock for many.
    fn mark_all(&self, ids: &[ConnId]) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        if dirty.is_empty() {
            self.wake.raise();
        }
        dirty.extend_from_slice(ids);
    }

    /// Takes the marked connections (into `into`, which the loop reuses).
    pub fn take(&self, into: &mut Vec<ConnId>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.lower();
        std::mem::swap(&mut *dirty, into);
    }
}

/// Marks made in a run (a broadcast's), handed to their hub a block at a time: a lock per
/// block instead of one per WebSocket, and the loop (on its own thread, in thread mode) can
/// start sending to the first block while the rest is queued.
pub struct MarkBatch<'a> {
    hub: Option<&'a Hub>,
    ids: Vec<ConnId>,
}

impl<'a> MarkBatch<'a> {
    const BLOCK: usize = 256;

    pub fn new() -> Self {
        MarkBatch {
            hub: None,
            ids: Vec::new(),
        }
    }

    /// Notes that connection `id` of `hub` has frames to send.
    pub fn mark(&mut self, hub: &'a Hub, id: ConnId) {
        if self.hub.is_some_and(|h| !std::ptr::eq(h, hub)) {
            self.flush();
        }
        self.hub = Some(hub);
        if self.ids.capacity() == 0 {
            self.ids.reserve_exact(Self::BLOCK);
        }
        self.ids.push(id);
        if self.ids.len() >= Self::BLOCK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(hub) = self.hub {
            if !self.ids.is_empty() {
                hub.mark_all(&self.ids);
            }
        }
        self.ids.clear();
    }
}

impl Drop for MarkBatch<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_hands_every_mark_to_its_hub_in_order() {
        let (a, b) = (Hub::new().unwrap(), Hub::new().unwrap());
        {
            let mut batch = MarkBatch::new();
            for i in 0..300 {
                batch.mark(&a, (i, 0));
            }
            batch.mark(&b, (7, 1));
            batch.mark(&a, (300, 0));
        }
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        a.take(&mut got_a);
        b.take(&mut got_b);
        let want: Vec<ConnId> = (0..=300).map(|i| (i, 0)).collect();
        assert_eq!(got_a, want);
        assert_eq!(got_b, vec![(7, 1)]);
    }
}
