//! Where a response's bytes go, as the response driver sees it: copied or kept (sent in place
//! from a Python bytes object), and how much is still unsent. The worker's send queue is the
//! one implementation; the driver never sends anything itself.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

pub trait Output {
    /// Appends a copy of `bytes`.
    fn push_copy(&mut self, bytes: &[u8]);
    /// Appends the first `len` bytes of `bytes` without copying them; the output holds the
    /// object (immutable, so its buffer never moves) until they are sent.
    fn push_kept(&mut self, bytes: &Bound<'_, PyBytes>, len: usize);
    /// Appends `bytes`, which the output takes and sends from where they are.
    fn push_owned(&mut self, bytes: Vec<u8>);
    /// Appends what `f` writes at the end of the copy buffer.
    fn write_with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R;
    /// Bytes appended and not yet confirmed sent.
    fn unsent(&self) -> usize;
}
