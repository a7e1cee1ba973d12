//! evserver's HTTP/1.1 codec: parsing and writing on plain bytes, no I/O, no Python.
//!
//! Parsing answers complete / need more / a typed [`HttpError`]; the connection layer owns
//! buffers, limits and end of file.

pub mod chunked;
pub mod date;
pub mod encode;
pub mod error;
pub mod framing;
pub mod percent;
pub mod proxy;
pub mod request;
pub mod status;

mod fields;
mod scan;
mod target;
mod token;

pub use chunked::{ChunkedDecoder, Decoded};
pub use date::DateCache;
pub use error::HttpError;
pub use framing::{Event, Framer};
pub use request::{parse_head, BodyFraming, Head, Limits, Parsed, Span, Version};
