//! A cached IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for the Date header, rebuilt once a second.

/// Holds the current Date header value.
pub struct DateCache {
    _private: (),
}

impl DateCache {
    pub fn new() -> DateCache {
        todo!()
    }
    /// Rebuilds the value if the second changed since the last call. Call once per loop turn.
    pub fn refresh(&mut self) {
        todo!()
    }
    /// The 29-byte IMF-fixdate.
    pub fn get(&self) -> &[u8] {
        todo!()
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}
