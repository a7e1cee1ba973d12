//! The receive buffer pool: `count` buffers of `size` bytes in one allocation, handed out by id.

use std::io;

pub(super) struct BufferPool {
    memory: Box<[u8]>,
    size: usize,
    /// Ids ready for a receive, used as a stack (the most recently released buffer is the
    /// warmest in cache).
    free: Vec<u16>,
    /// `lent[id]` while buffer `id` holds data the caller has not released yet.
    lent: Vec<bool>,
}

impl BufferPool {
    pub(super) fn new(size: usize, count: u16) -> io::Result<BufferPool> {
        let total = size.checked_mul(usize::from(count)).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "receive buffer pool too large")
        })?;
        if size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_buffer_size must be positive",
            ));
        }
        Ok(BufferPool {
            memory: vec![0u8; total].into_boxed_slice(),
            size,
            free: (0..count).rev().collect(),
            lent: vec![false; usize::from(count)],
        })
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Takes a free buffer, marking it lent. `None` when every buffer is lent.
    pub(super) fn take(&mut self) -> Option<u16> {
        let id = self.free.pop()?;
        self.lent[usize::from(id)] = true;
        Some(id)
    }

    /// Returns buffer `id` to the pool. Unknown ids and buffers already free are ignored, so a
    /// double release cannot hand one buffer to two receives.
    pub(super) fn put(&mut self, id: u16) {
        match self.lent.get_mut(usize::from(id)) {
            Some(lent) if *lent => {
                *lent = false;
                self.free.push(id);
            }
            _ => debug_assert!(false, "release of buffer {id}, which is not lent"),
        }
    }

    /// The whole of buffer `id`, to receive into.
    pub(super) fn slot_mut(&mut self, id: u16) -> &mut [u8] {
        let start = usize::from(id) * self.size;
        &mut self.memory[start..start + self.size]
    }

    /// The first `len` bytes of buffer `id` (empty for an unknown id; `len` is capped at the
    /// buffer size).
    pub(super) fn get(&self, id: u16, len: usize) -> &[u8] {
        let start = usize::from(id) * self.size;
        self.memory
            .get(start..start + len.min(self.size))
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_each_buffer_once_until_released() {
        let mut pool = BufferPool::new(8, 2).expect("pool");
        let a = pool.take().expect("first");
        let b = pool.take().expect("second");
        assert_ne!(a, b);
        assert_eq!(pool.take(), None);
        pool.put(a);
        assert_eq!(pool.take(), Some(a));
    }

    #[test]
    fn buffers_do_not_overlap() {
        let mut pool = BufferPool::new(4, 3).expect("pool");
        for id in 0..3u16 {
            pool.slot_mut(id).fill(id as u8 + 1);
        }
        for id in 0..3u16 {
            assert_eq!(pool.get(id, 4), &[id as u8 + 1; 4]);
        }
        assert_eq!(pool.get(1, 100).len(), 4);
        assert!(pool.get(3, 1).is_empty());
    }

    #[test]
    fn rejects_a_zero_size() {
        assert!(BufferPool::new(0, 4).is_err());
    }
}
