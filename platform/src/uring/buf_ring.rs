//! The provided-buffer ring: receive buffers the kernel picks from for multishot recv.
//!
//! All buffers are allocated once. A buffer is either on the ring (the kernel may fill it) or
//! held by the caller (a completion named it, and `release` has not been called yet); the
//! `held` bit set tracks which, so a buffer is never handed to the kernel twice and the caller
//! can only read buffers the kernel no longer writes.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

/// The buffer group id of our one ring (recv SQEs name it in `buf_group`).
pub(super) const GROUP: u16 = 0;

/// One ring slot, laid out as the kernel's `struct io_uring_buf`. The `resv` field of slot 0
/// is the ring's tail, which only we write.
#[repr(C)]
struct Slot {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// The byte offset of the tail (`resv` of slot 0) from the ring's start.
const TAIL_OFFSET: usize = std::mem::offset_of!(Slot, resv);

/// An anonymous, private, page-aligned memory mapping, unmapped on drop.
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    fn anonymous(len: usize) -> io::Result<Mmap> {
        // SAFETY: a fresh anonymous mapping touches no existing memory; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // A forked child (an app's subprocess) neither needs nor copies the buffers. Advisory:
        // a failure changes nothing else.
        // SAFETY: `ptr..ptr+len` is the mapping just made.
        unsafe { libc::madvise(ptr, len, libc::MADV_DONTFORK) };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mmap { ptr, len })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is exactly the mapping made in `anonymous`, unmapped once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The ring of provided receive buffers (one buffer group, `GROUP`).
pub(super) struct BufRing {
    /// `count` slots of 16 bytes, shared with the kernel (it reads slots and the tail).
    ring: Mmap,
    /// `count` buffers of `size` bytes each, buffer `id` at `id * size`.
    buffers: Mmap,
    size: usize,
    count: u16,
    /// The tail we last published (the kernel keeps the head).
    tail: u16,
    /// One bit per buffer: set while the caller holds it.
    held: Vec<u64>,
}

// SAFETY: `BufRing` owns both mappings outright; nothing in it is tied to the creating thread
// (the raw pointers only make it `!Send` by default).
unsafe impl Send for BufRing {}

impl BufRing {
    /// Allocates `count` buffers of `size` bytes and puts all of them on a new ring.
    /// `count` must be a power of two of at most 32768.
    pub(super) fn new(count: u16, size: usize) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_buffer_count must be a power of two of at most 32768",
            ));
        }
        if size == 0 || size > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_buffer_size must be between 1 and 4 GiB",
            ));
        }
        let total = size.checked_mul(count as usize).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "receive buffers too large")
        })?;
        let ring = Mmap::anonymous(count as usize * std::mem::size_of::<Slot>())?;
        let buffers = Mmap::anonymous(total)?;
        let mut this = BufRing {
            ring,
            buffers,
            size,
            count,
            tail: 0,
            held: vec![0; (count as usize).div_ceil(64)],
        };
        for id in 0..count {
            this.push(id);
        }
        this.publish();
        Ok(this)
    }

    /// The ring's address, for `register_buf_ring`.
    pub(super) fn ring_addr(&self) -> u64 {
        self.ring.ptr.as_ptr() as u64
    }

    /// The number of ring slots (= buffers).
    pub(super) fn entries(&self) -> u16 {
        self.count
    }

    /// Records that a completion handed buffer `id` to the caller.
    #[inline]
    pub(super) fn mark_held(&mut self, id: u16) {
        if id < self.count {
            self.held[id as usize / 64] |= 1 << (id % 64);
        }
    }

    #[inline]
    fn is_held(&self, id: u16) -> bool {
        id < self.count && self.held[id as usize / 64] & (1 << (id % 64)) != 0
    }

    /// The first `len` bytes (at most the buffer size) of buffer `id`; empty unless the caller
    /// holds `id`.
    #[inline]
    pub(super) fn get(&self, id: u16, len: usize) -> &[u8] {
        if !self.is_held(id) {
            debug_assert!(false, "buffer {id} is not held by the caller");
            return &[];
        }
        let len = len.min(self.size);
        // SAFETY: `id < count`, so the range lies inside the buffer mapping; the caller holds
        // the buffer, so the kernel does not write it until `release`, which takes `&mut self`
        // and so cannot run while this borrow lives.
        unsafe {
            std::slice::from_raw_parts(self.buffers.ptr.as_ptr().add(id as usize * self.size), len)
        }
    }

    /// Puts buffer `id` back on the ring. Releasing a buffer the caller does not hold is
    /// ignored (it would hand the kernel one buffer twice).
    #[inline]
    pub(super) fn release(&mut self, id: u16) {
        if !self.is_held(id) {
            debug_assert!(
                false,
                "release of buffer {id}, which is not held by the caller"
            );
            return;
        }
        self.held[id as usize / 64] &= !(1 << (id % 64));
        self.push(id);
        self.publish();
    }

    /// Writes buffer `id` into the slot after the tail (not yet visible to the kernel).
    fn push(&mut self, id: u16) {
        let index = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `index < count`, inside the ring mapping. The kernel reads a slot only once
        // the published tail covers it, and this one is past the tail (each buffer is on the
        // ring at most once, so the ring never holds more than `count` slots). Fields are
        // written one by one so slot 0's `resv` (the tail) is never touched here.
        unsafe {
            let slot = self.ring.ptr.as_ptr().cast::<Slot>().add(index);
            let addr = self.buffers.ptr.as_ptr().add(id as usize * self.size);
            ptr::addr_of_mut!((*slot).addr).write(addr as u64);
            ptr::addr_of_mut!((*slot).len).write(self.size as u32);
            ptr::addr_of_mut!((*slot).bid).write(id);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every slot pushed so far visible to the kernel.
    #[inline]
    fn publish(&self) {
        // SAFETY: the tail is a naturally aligned u16 inside the ring mapping, which lives as
        // long as `self`; the kernel reads it with an acquire load, we are its only writer.
        let tail = unsafe { &*self.ring.ptr.as_ptr().add(TAIL_OFFSET).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// The number of buffers the caller holds (tests).
    #[cfg(test)]
    pub(super) fn held_count(&self) -> u32 {
        self.held.iter().map(|w| w.count_ones()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_counts_that_are_not_powers_of_two() {
        assert!(BufRing::new(3, 16).is_err());
        assert!(BufRing::new(0, 16).is_err());
        assert!(BufRing::new(4, 0).is_err());
    }

    #[test]
    fn fills_every_slot_and_publishes_the_tail() {
        let ring = BufRing::new(4, 8).expect("allocate");
        // SAFETY: the ring mapping holds 4 slots; nothing else accesses it in this test.
        let slots = unsafe { std::slice::from_raw_parts(ring.ring.ptr.as_ptr().cast::<Slot>(), 4) };
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(slot.bid, i as u16);
            assert_eq!(slot.len, 8);
            assert_eq!(slot.addr, ring.buffers.ptr.as_ptr() as u64 + 8 * i as u64);
        }
        assert_eq!(slots[0].resv, 4, "tail covers all four buffers");
    }

    #[test]
    fn only_held_buffers_are_readable_and_releasable() {
        let mut ring = BufRing::new(2, 8).expect("allocate");
        ring.mark_held(1);
        assert_eq!(
            ring.get(1, 100).len(),
            8,
            "length is clamped to the buffer size"
        );
        assert_eq!(ring.held_count(), 1);
        ring.release(1);
        assert_eq!(ring.held_count(), 0);
        assert_eq!(ring.tail, 3);
    }
}
