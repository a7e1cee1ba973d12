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

    /// Takes the marked connections (into `into`, which the loop reuses).
    pub fn take(&self, into: &mut Vec<ConnId>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.lower();
        std::mem::swap(&mut *dirty, into);
    }
}
