//! The frames one WebSocket has waiting for the loop, in order: encoded for it alone, or a
//! frame encoded once and shared by every WebSocket a broadcast reached. The loop sends them
//! from where they are, so an idle WebSocket keeps no send buffer.

use std::sync::Arc;

/// A run of frames.
pub enum Frames {
    /// Encoded for this WebSocket alone; frames queued one after another share the buffer.
    Own(Vec<u8>),
    /// One frame encoded once for many WebSockets (an uncompressed broadcast): immutable, so
    /// the threads and connections holding it never race.
    Shared(Arc<[u8]>),
}

impl Frames {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Frames::Own(bytes) => bytes,
            Frames::Shared(bytes) => bytes,
        }
    }
}

/// The frames a taken outbox hands over, in order.
pub type Taken = std::iter::Chain<std::option::IntoIter<Frames>, std::vec::IntoIter<Frames>>;

/// The queued frames. The first run is kept inline: it is most often the only one until the
/// loop takes it (a message between two wakes of the loop), so queueing it and taking it
/// allocate nothing.
#[derive(Default)]
pub struct Outbox {
    first: Option<Frames>,
    /// The runs after the first, in order; empty while `first` is.
    more: Vec<Frames>,
}

impl Outbox {
    /// Bytes queued (the loop takes the runs at every wake: there are few).
    pub fn len(&self) -> usize {
        self.runs().map(|run| run.bytes().len()).sum()
    }

    fn runs(&self) -> impl Iterator<Item = &Frames> {
        self.first.iter().chain(&self.more)
    }

    /// Appends what `encode` writes, `size_hint` bytes or so, after the frames queued.
    pub fn encode(&mut self, size_hint: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        match self.more.last_mut().or(self.first.as_mut()) {
            Some(Frames::Own(buf)) => encode(buf),
            _ => {
                let mut buf = Vec::with_capacity(size_hint);
                encode(&mut buf);
                if !buf.is_empty() {
                    self.push(Frames::Own(buf));
                }
            }
        }
    }

    /// Appends a frame shared with other WebSockets.
    pub fn push_shared(&mut self, frame: Arc<[u8]>) {
        self.push(Frames::Shared(frame));
    }

    fn push(&mut self, frames: Frames) {
        if self.first.is_none() {
            self.first = Some(frames);
        } else {
            self.more.push(frames);
        }
    }

    /// Takes every frame queued, leaving the outbox empty and holding no memory.
    pub fn take(&mut self) -> Taken {
        let first = self.first.take();
        first.into_iter().chain(std::mem::take(&mut self.more))
    }

    /// Drops what is queued, and the memory with it.
    pub fn clear(&mut self) {
        self.first = None;
        self.more = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(runs: &[Frames]) -> Vec<u8> {
        runs.iter().flat_map(|r| r.bytes().to_vec()).collect()
    }

    #[test]
    fn frames_keep_their_order_and_own_ones_share_a_buffer() {
        let mut outbox = Outbox::default();
        outbox.encode(4, |b| b.extend_from_slice(b"ab"));
        outbox.encode(4, |b| b.extend_from_slice(b"cd"));
        let shared: Arc<[u8]> = Arc::from(&b"XY"[..]);
        outbox.push_shared(shared.clone());
        outbox.encode(4, |b| b.extend_from_slice(b"ef"));
        assert_eq!(outbox.len(), 8);
        let runs: Vec<Frames> = outbox.take().collect();
        assert_eq!(runs.len(), 3, "abcd, XY, ef");
        assert_eq!(flat(&runs), b"abcdXYef");
        assert_eq!(Arc::strong_count(&shared), 2);
        assert_eq!(outbox.len(), 0);
        assert_eq!(outbox.take().count(), 0);
    }

    #[test]
    fn encoding_nothing_queues_nothing() {
        let mut outbox = Outbox::default();
        outbox.encode(16, |_| {});
        assert_eq!(outbox.take().count(), 0);
    }
}
