//! The outgoing byte queue of one connection: small pieces copied, large ones borrowed without
//! copying, sent as one gathered write at a time, with short sends resumed.
//!
//! Two halves alternate: `pending` collects what the response adds; when no send is in
//! flight it becomes the `flight`, whose memory stays untouched until the kernel reports the
//! send complete. One send per connection is in flight at a time, so bytes never reorder.

use crate::websocket::outbox::Frames;
use crate::wsgi::output::Output;
use evserver_platform::Gather;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

/// What keeps a borrowed segment's bytes alive (and unmoved) until they are sent: held,
/// never read.
#[allow(dead_code)]
pub enum Keep {
    /// The Python bytes object they are in (immutable, so its buffer stays put).
    Object(Py<PyAny>),
    /// Bytes made for this connection alone (a `101` head, WebSocket frames).
    Owned(Vec<u8>),
    /// Bytes shared with other connections (a WebSocket broadcast's frame).
    Shared(Arc<[u8]>),
}

/// Bytes and segments a half reserves when it is first written to.
const FIRST_COPY_CAPACITY: usize = 1024;
const FIRST_SEGMENTS: usize = 4;
/// The largest segment list an idle queue keeps (see `release_memory`).
const KEPT_SEGMENTS: usize = 2;

enum Segment<K> {
    /// `len` bytes starting at `start` of the half's own copy buffer.
    Copied { start: usize, len: usize },
    /// `len` bytes at `ptr`, kept alive by `keep` until the segment is sent.
    Borrowed {
        _keep: K,
        ptr: *const u8,
        len: usize,
    },
}

impl<K> Segment<K> {
    fn len(&self) -> usize {
        match self {
            Segment::Copied { len, .. } | Segment::Borrowed { len, .. } => *len,
        }
    }
}

struct Half<K> {
    copied: Vec<u8>,
    segments: Vec<Segment<K>>,
    bytes: usize,
}

impl<K> Half<K> {
    fn new() -> Self {
        Half {
            copied: Vec::new(),
            segments: Vec::new(),
            bytes: 0,
        }
    }

    /// A new connection's first response: room for a typical head and small body at once,
    /// rather than growing the buffers step by step (each a reallocation and a copy).
    fn reserve_first(&mut self) {
        if self.copied.capacity() == 0 {
            self.copied.reserve(FIRST_COPY_CAPACITY);
            self.segments.reserve(FIRST_SEGMENTS);
        }
    }

    fn clear(&mut self) {
        self.copied.clear();
        self.segments.clear();
        self.bytes = 0;
    }
}

/// What the connection must hand to the driver to send the flight.
pub enum SendOp {
    /// One contiguous buffer: use `send`.
    Single(*const u8, usize),
    /// Several buffers: use `sendmsg` with [`OutQueue::gather`].
    Gathered,
}

/// The queue. `K` keeps borrowed memory alive (a Python bytes object in the server).
///
/// A queue is owned by one thread at a time: the worker's loop, or a pool thread holding the
/// connection's job (see `worker::pool`); it moves between them only when no send of its
/// flight is in the kernel.
pub struct OutQueue<K> {
    pending: Half<K>,
    flight: Half<K>,
    /// First segment of the flight not completely sent, and bytes of it already sent.
    flight_index: usize,
    flight_offset: usize,
    in_flight: bool,
    /// The flight's buffers when it has several; made on the first such flight (a connection
    /// that only ever sends one buffer at a time, as an idle WebSocket, goes without).
    gather: Option<Box<Gather>>,
}

// SAFETY: the raw pointers of a queue point into its own copy buffers or into memory kept
// alive by its `K`s, all of which it owns and which move with it; nothing else aliases them.
// The kernel reads them only while a send is in flight, and a queue changes threads only when
// none is (see the struct's docs).
unsafe impl<K: Send> Send for OutQueue<K> {}

impl<K> Default for OutQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> OutQueue<K> {
    pub fn new() -> Self {
        OutQueue {
            pending: Half::new(),
            flight: Half::new(),
            flight_index: 0,
            flight_offset: 0,
            in_flight: false,
            gather: None,
        }
    }

    /// Hands every byte not yet sent to `sink`, in order, and empties the queue: for a layer
    /// that transforms them on their way out (TLS encrypts them all at once). No send of the
    /// flight may be on its way to the kernel.
    pub fn drain_to(&mut self, mut sink: impl FnMut(&[u8])) {
        if self.in_flight {
            for index in self.flight_index..self.flight.segments.len() {
                let offset = if index == self.flight_index {
                    self.flight_offset
                } else {
                    0
                };
                let (ptr, len) = self.segment_slice(index, offset);
                // SAFETY: segment_slice gives a range inside the flight's live memory.
                sink(unsafe { std::slice::from_raw_parts(ptr, len) });
            }
            self.flight.clear();
            self.in_flight = false;
        }
        let half = &self.pending;
        for segment in &half.segments {
            match segment {
                Segment::Copied { start, len } => sink(&half.copied[*start..*start + *len]),
                // SAFETY: ptr..ptr+len stays valid while the segment's `keep` lives.
                Segment::Borrowed { ptr, len, .. } => {
                    sink(unsafe { std::slice::from_raw_parts(*ptr, *len) })
                }
            }
        }
        self.pending.clear();
    }

    /// The flight's buffers, for a [`SendOp::Gathered`]; they stay valid until `complete`
    /// reports the flight done, or the queue is dropped.
    pub fn gather(&mut self) -> &mut Gather {
        self.gather.get_or_insert_with(Box::default)
    }

    /// Appends a copy of `bytes`.
    pub fn push_copy(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let half = &mut self.pending;
        half.reserve_first();
        let start = half.copied.len();
        half.copied.extend_from_slice(bytes);
        half.bytes += bytes.len();
        if let Some(Segment::Copied { start: s, len }) = half.segments.last_mut() {
            if *s + *len == start {
                *len += bytes.len();
                return;
            }
        }
        half.segments.push(Segment::Copied {
            start,
            len: bytes.len(),
        });
    }

    /// Appends `len` bytes at `ptr` without copying; `keep` must keep them alive and unmoved
    /// until dropped, which happens once they are sent or the queue is dropped.
    pub fn push_borrowed(&mut self, keep: K, ptr: *const u8, len: usize) {
        if len == 0 {
            return;
        }
        self.pending.bytes += len;
        if self.pending.segments.capacity() == 0 {
            // A queue that starts with a borrowed segment is most often a WebSocket's, sending
            // one frame: room for just that (a small allocation, the cheapest to make and free).
            self.pending.segments.reserve_exact(1);
        }
        self.pending.segments.push(Segment::Borrowed {
            _keep: keep,
            ptr,
            len,
        });
    }

    /// Appends what `f` writes at the end of the copy buffer (formatting in place).
    pub fn write_with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let half = &mut self.pending;
        half.reserve_first();
        let start = half.copied.len();
        let result = f(&mut half.copied);
        let added = half.copied.len() - start;
        if added > 0 {
            half.bytes += added;
            match half.segments.last_mut() {
                Some(Segment::Copied { start: s, len }) if *s + *len == start => *len += added,
                _ => half.segments.push(Segment::Copied { start, len: added }),
            }
        }
        result
    }

    /// Bytes not yet confirmed sent (pending and the unsent rest of the flight).
    pub fn unsent(&self) -> usize {
        self.pending.bytes + self.flight_unsent()
    }

    fn flight_unsent(&self) -> usize {
        if !self.in_flight {
            return 0;
        }
        let sent_before: usize = self.flight.segments[..self.flight_index]
            .iter()
            .map(Segment::len)
            .sum();
        self.flight.bytes - sent_before - self.flight_offset
    }

    pub fn is_empty(&self) -> bool {
        !self.in_flight && self.pending.bytes == 0
    }

    /// Gives the buffers back if nothing is queued: for a connection that will sit idle for a
    /// long time with nothing to send (a WebSocket between messages). A segment list of one
    /// or two entries stays (a WebSocket's messages go out one frame at a time): sending the
    /// next one allocates nothing, for less memory than the allocator's own bookkeeping of
    /// freeing it thousands of times per broadcast.
    pub fn release_memory(&mut self) {
        if !self.is_empty() {
            return;
        }
        let mut segments = std::mem::take(&mut self.pending.segments);
        if segments.capacity() == 0 {
            segments = std::mem::take(&mut self.flight.segments);
        }
        if segments.capacity() > KEPT_SEGMENTS {
            segments = Vec::new();
        }
        *self = Self::new();
        self.pending.segments = segments;
    }

    /// The send to issue next: the rest of a flight that was started and not finished (sent
    /// in part without a send still on its way, as a pool thread leaves it), else a new flight.
    pub fn next_send(&mut self) -> Option<SendOp> {
        if self.in_flight {
            return Some(self.build_op());
        }
        self.start_flight()
    }

    /// If nothing is in flight and something is pending, makes the pending bytes the flight
    /// and returns the send to issue. The memory the op points to stays valid until
    /// `complete` reports the flight done, or the queue is dropped.
    pub fn start_flight(&mut self) -> Option<SendOp> {
        if self.in_flight || self.pending.bytes == 0 {
            return None;
        }
        std::mem::swap(&mut self.pending, &mut self.flight);
        self.pending.clear();
        self.flight_index = 0;
        self.flight_offset = 0;
        self.in_flight = true;
        Some(self.build_op())
    }

    /// Records that the in-flight send wrote `sent` bytes. Returns the op to issue for the
    /// rest of the flight after a short send, or `None` when the flight is done.
    pub fn complete(&mut self, sent: usize) -> Option<SendOp> {
        debug_assert!(self.in_flight);
        let mut left = sent;
        while left > 0 && self.flight_index < self.flight.segments.len() {
            let seg_rest = self.flight.segments[self.flight_index].len() - self.flight_offset;
            if left >= seg_rest {
                left -= seg_rest;
                self.flight_index += 1;
                self.flight_offset = 0;
            } else {
                self.flight_offset += left;
                left = 0;
            }
        }
        if self.flight_index >= self.flight.segments.len() {
            self.flight.clear();
            self.in_flight = false;
            return None;
        }
        Some(self.build_op())
    }

    fn segment_slice(&self, index: usize, offset: usize) -> (*const u8, usize) {
        match &self.flight.segments[index] {
            Segment::Copied { start, len } => (
                // SAFETY: start + offset <= start + len <= copied.len(): in bounds.
                unsafe { self.flight.copied.as_ptr().add(start + offset) },
                len - offset,
            ),
            // SAFETY: offset < len, and ptr..ptr+len is valid while `keep` lives.
            Segment::Borrowed { ptr, len, .. } => (unsafe { ptr.add(offset) }, len - offset),
        }
    }

    fn build_op(&mut self) -> SendOp {
        let remaining = self.flight.segments.len() - self.flight_index;
        if remaining == 1 {
            let (p, l) = self.segment_slice(self.flight_index, self.flight_offset);
            return SendOp::Single(p, l);
        }
        // Taken out while the flight's slices are read; boxed, so its iovecs stay in place.
        let mut gather = self.gather.take().unwrap_or_default();
        gather.clear();
        let end =
            (self.flight_index + evserver_platform::MAX_BUFFERS).min(self.flight.segments.len());
        for index in self.flight_index..end {
            let offset = if index == self.flight_index {
                self.flight_offset
            } else {
                0
            };
            let (p, l) = self.segment_slice(index, offset);
            gather.push(p, l);
        }
        self.gather = Some(gather);
        SendOp::Gathered
    }
}

impl OutQueue<Keep> {
    /// Appends WebSocket frames, sent from where they are.
    pub fn push_frames(&mut self, frames: Frames) {
        match frames {
            Frames::Own(bytes) => self.push_owned(bytes),
            Frames::Shared(bytes) => {
                let (ptr, len) = (bytes.as_ptr(), bytes.len());
                self.push_borrowed(Keep::Shared(bytes), ptr, len);
            }
        }
    }

    /// Appends bytes the queue takes, sent from where they are (no copy).
    fn push_owned(&mut self, bytes: Vec<u8>) {
        let (ptr, len) = (bytes.as_ptr(), bytes.len());
        // The bytes are on the heap: moving the vector into the segment leaves them in place.
        self.push_borrowed(Keep::Owned(bytes), ptr, len);
    }
}

impl Output for OutQueue<Keep> {
    fn push_copy(&mut self, bytes: &[u8]) {
        OutQueue::push_copy(self, bytes);
    }

    fn push_kept(&mut self, bytes: &Bound<'_, PyBytes>, len: usize) {
        let data = bytes.as_bytes();
        let len = len.min(data.len());
        // The object is immutable and kept until the segment is sent: its buffer stays put.
        let keep = Keep::Object(bytes.clone().into_any().unbind());
        self.push_borrowed(keep, data.as_ptr(), len);
    }

    fn write_with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        OutQueue::write_with(self, f)
    }

    fn push_owned(&mut self, bytes: Vec<u8>) {
        OutQueue::push_owned(self, bytes);
    }

    fn unsent(&self) -> usize {
        OutQueue::unsent(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what an op would send.
    fn bytes_of<K>(q: &mut OutQueue<K>, op: &SendOp) -> Vec<u8> {
        match *op {
            // SAFETY: the op points into the live queue under test.
            SendOp::Single(p, l) => unsafe { std::slice::from_raw_parts(p, l) }.to_vec(),
            SendOp::Gathered => {
                let mut out = Vec::new();
                for (p, l) in q.gather().buffers() {
                    // SAFETY: as above; the buffers live in the queue.
                    out.extend_from_slice(unsafe { std::slice::from_raw_parts(p, l) });
                }
                out
            }
        }
    }

    #[test]
    fn copies_merge_into_one_single_send() {
        let mut q: OutQueue<Vec<u8>> = OutQueue::new();
        q.push_copy(b"HTTP/1.1 200 OK\r\n\r\n");
        q.push_copy(b"hello");
        let op = q.start_flight().unwrap();
        assert!(matches!(op, SendOp::Single(..)));
        assert_eq!(bytes_of(&mut q, &op), b"HTTP/1.1 200 OK\r\n\r\nhello");
        assert!(q.complete(24).is_none());
        assert!(q.is_empty());
    }

    #[test]
    fn memory_is_released_only_when_nothing_waits() {
        let mut q: OutQueue<Vec<u8>> = OutQueue::new();
        q.push_copy(b"frame");
        q.start_flight().unwrap();
        q.push_copy(b"next");
        q.release_memory(); // a send is in flight and bytes are pending: kept
        assert_eq!(q.unsent(), 9);
        assert!(q.complete(5).is_none());
        let op = q.start_flight().unwrap();
        assert_eq!(bytes_of(&mut q, &op), b"next");
        assert!(q.complete(4).is_none());
        q.release_memory();
        assert_eq!(q.pending.copied.capacity() + q.flight.copied.capacity(), 0);
        assert!(q.pending.segments.capacity() + q.flight.segments.capacity() <= KEPT_SEGMENTS);
        q.push_copy(b"again"); // and the queue works on
        let op = q.start_flight().unwrap();
        assert_eq!(bytes_of(&mut q, &op), b"again");
    }

    #[test]
    fn a_queue_sending_one_frame_at_a_time_keeps_its_one_entry_segment_list() {
        let mut q: OutQueue<Vec<u8>> = OutQueue::new();
        for frame in [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()] {
            let (ptr, len) = (frame.as_ptr(), frame.len());
            q.push_borrowed(frame, ptr, len);
            let op = q.start_flight().unwrap();
            assert!(matches!(op, SendOp::Single(_, l) if l == len));
            assert!(q.complete(len).is_none());
            q.release_memory();
            assert_eq!(q.pending.segments.capacity(), 1, "kept for the next frame");
            assert_eq!(q.flight.segments.capacity(), 0);
        }
    }

    #[test]
    fn borrowed_segments_are_gathered_in_order() {
        let mut q: OutQueue<Vec<u8>> = OutQueue::new();
        let big = vec![b'x'; 10];
        let ptr = big.as_ptr();
        q.push_copy(b"head|");
        q.push_borrowed(big, ptr, 10);
        q.push_copy(b"|tail");
        let op = q.start_flight().unwrap();
        assert!(matches!(op, SendOp::Gathered));
        assert_eq!(bytes_of(&mut q, &op), b"head|xxxxxxxxxx|tail");
    }

    #[test]
    fn short_sends_resume_where_they_stopped() {
        let mut q: OutQueue<Vec<u8>> = OutQueue::new();
        let big = b"0123456789".to_vec();
        let ptr = big.as_ptr();
        q.push_copy(b"ab");
        q.push_borrowed(big, ptr, 10);
        q.push_copy(b"yz");
        q.start_flight().unwrap();
        let op = q.complete(5).unwrap();
        assert_eq!(bytes_of(&mut q, &op), b"3456789yz");
        assert_eq!(q.unsent(), 9);
        let op = q.complete(8).unwrap();
        assert_eq!(bytes_of(&mut q, &op), b"z");
        assert!(q.complete(1).is_none());
        assert_eq!(q.unsent(), 0);
    }

    #[test]
    fn pending_waits_behind_the_flight() {
        let mut q: OutQueue<Vec<u8>> = OutQueue::new();
        q.push_copy(b"first");
        q.start_flight().unwrap();
        q.push_copy(b"second");
        assert!(q.start_flight().is_none(), "one flight at a time");
        assert_eq!(q.unsent(), 11);
        assert!(q.complete(5).is_none());
        let op = q.start_flight().unwrap();
        assert_eq!(bytes_of(&mut q, &op), b"second");
    }

    #[test]
    fn write_with_appends_formatted_bytes() {
        let mut q: OutQueue<Vec<u8>> = OutQueue::new();
        q.push_copy(b"a");
        q.write_with(|buf| buf.extend_from_slice(b"bc"));
        let op = q.start_flight().unwrap();
        assert_eq!(bytes_of(&mut q, &op), b"abc");
    }
}
