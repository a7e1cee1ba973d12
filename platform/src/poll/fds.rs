//! Per-fd bookkeeping: which operations wait on each fd, and the one mio registration (with
//! the union of their interests) that serves them all.
//!
//! An fd is registered exactly while some operation waits on it. epoll refuses a second
//! registration of one fd (EEXIST), so several waits on one fd share this registration and
//! an event wakes every operation in the fd's list that it concerns.

use mio::unix::SourceFd;
use mio::Registry;
use std::io;
use std::os::fd::RawFd;

/// Waits for readability.
pub(super) const READ: u8 = 1;
/// Waits for writability.
pub(super) const WRITE: u8 = 2;
/// Waits for exceptional conditions (`POLLPRI`); only epoll can ask for them on their own.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) const PRI: u8 = 4;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) const PRI: u8 = 0;

const KINDS: [u8; 3] = [READ, WRITE, PRI];

#[derive(Default)]
pub(super) struct FdEntry {
    /// Slots of the operations attached to this fd, in no particular order.
    pub(super) ops: Vec<u32>,
    /// How many attached operations want each of `KINDS`.
    counts: [u32; 3],
    /// The interest registered with mio (0: not registered).
    registered: u8,
}

impl FdEntry {
    fn wanted(&self) -> u8 {
        KINDS
            .iter()
            .zip(self.counts)
            .filter(|&(_, n)| n > 0)
            .fold(0, |acc, (&bit, _)| acc | bit)
    }

    #[cfg(test)]
    pub(super) fn is_registered(&self) -> bool {
        self.registered != 0
    }
}

/// Fd numbers are small and dense, so the table is a vector indexed by fd; entries keep their
/// list's capacity when they go idle, so a busy loop allocates nothing here.
#[derive(Default)]
pub(super) struct FdTable {
    entries: Vec<FdEntry>,
}

impl FdTable {
    pub(super) fn get(&self, fd: RawFd) -> Option<&FdEntry> {
        usize::try_from(fd).ok().and_then(|i| self.entries.get(i))
    }

    /// The entry of `fd`, which must be non-negative.
    fn entry(&mut self, fd: RawFd) -> &mut FdEntry {
        let i = usize::try_from(fd).unwrap_or_default();
        debug_assert!(fd >= 0);
        if i >= self.entries.len() {
            self.entries.resize_with(i + 1, FdEntry::default);
        }
        &mut self.entries[i]
    }

    /// Adds operation `idx`, waiting for `bits`, to `fd`'s list; returns its position.
    pub(super) fn attach(&mut self, fd: RawFd, idx: u32, bits: u8) -> u32 {
        let e = self.entry(fd);
        for (count, kind) in e.counts.iter_mut().zip(KINDS) {
            if bits & kind != 0 {
                *count += 1;
            }
        }
        e.ops.push(idx);
        u32::try_from(e.ops.len() - 1).unwrap_or(u32::MAX)
    }

    /// Removes the operation at `pos` (waiting for `bits`) from `fd`'s list. Returns the slot
    /// of the operation moved into `pos`, whose recorded position the caller must update.
    pub(super) fn detach(&mut self, fd: RawFd, pos: u32, bits: u8) -> Option<u32> {
        let e = self.entry(fd);
        for (count, kind) in e.counts.iter_mut().zip(KINDS) {
            if bits & kind != 0 {
                *count = count.saturating_sub(1);
            }
        }
        let pos = pos as usize;
        e.ops.swap_remove(pos);
        e.ops.get(pos).copied()
    }

    /// Brings `fd`'s registration in line with what its operations wait for: registers,
    /// changes or deregisters. With `reassert` (an operation was just attached), an existing
    /// registration is renewed even if unchanged: if the fd was closed and its number reused
    /// behind the loop's back, the kernel dropped the old registration, and this makes a new
    /// one. Returns whether a fresh registration was made (the kernel then reports the fd's
    /// current readiness by itself).
    pub(super) fn sync(
        &mut self,
        registry: &Registry,
        fd: RawFd,
        reassert: bool,
    ) -> io::Result<bool> {
        let e = self.entry(fd);
        let want = e.wanted();
        if want == e.registered && !(reassert && want != 0) {
            return Ok(false);
        }
        let token = mio::Token(fd as usize);
        let Some(interest) = to_mio(want) else {
            // Errors are moot: the fd may already be closed, which removed it anyway.
            let _ = registry.deregister(&mut SourceFd(&fd));
            e.registered = 0;
            return Ok(false);
        };
        let fresh = if e.registered == 0 {
            match registry.register(&mut SourceFd(&fd), token, interest) {
                Ok(()) => true,
                // A registration this table lost track of (an fd number reused while a
                // duplicate of the old file kept the old registration alive).
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                    registry.reregister(&mut SourceFd(&fd), token, interest)?;
                    false
                }
                Err(err) => return Err(err),
            }
        } else {
            match registry.reregister(&mut SourceFd(&fd), token, interest) {
                Ok(()) => false,
                // The fd was closed (and its number maybe reused) behind the loop's back:
                // the kernel dropped the old registration.
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                    registry.register(&mut SourceFd(&fd), token, interest)?;
                    true
                }
                Err(err) => return Err(err),
            }
        };
        e.registered = want;
        Ok(fresh)
    }

    /// Drops `fd`'s registration whatever waits on it (before the fd is closed).
    pub(super) fn deregister(&mut self, registry: &Registry, fd: RawFd) {
        let e = self.entry(fd);
        if e.registered != 0 {
            // Errors are moot: the fd is about to be closed, which removes it anyway.
            let _ = registry.deregister(&mut SourceFd(&fd));
            e.registered = 0;
        }
    }
}

fn to_mio(bits: u8) -> Option<mio::Interest> {
    let mut interest: Option<mio::Interest> = None;
    let mut add = |i: mio::Interest| interest = Some(interest.map_or(i, |have| have | i));
    if bits & READ != 0 {
        add(mio::Interest::READABLE);
    }
    if bits & WRITE != 0 {
        add(mio::Interest::WRITABLE);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if bits & PRI != 0 {
        add(mio::Interest::PRIORITY);
    }
    interest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_is_the_union_of_attached_operations() {
        let mut t = FdTable::default();
        let a = t.attach(5, 10, READ);
        let b = t.attach(5, 11, WRITE | PRI);
        assert_eq!(t.get(5).map(FdEntry::wanted), Some(READ | WRITE | PRI));
        let moved = t.detach(5, a, READ);
        assert_eq!(moved, Some(11), "the last op moves into the freed position");
        assert_eq!(b, 1);
        assert_eq!(t.get(5).map(FdEntry::wanted), Some(WRITE | PRI));
        assert_eq!(t.detach(5, 0, WRITE | PRI), None);
        assert_eq!(t.get(5).map(FdEntry::wanted), Some(0));
        assert!(t.get(-1).is_none());
    }
}
