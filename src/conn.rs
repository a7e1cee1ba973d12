//! One client connection: its buffers, its state in the request cycle, and the count of
//! operations the kernel still holds for it (the slot is freed only when that is zero).

use crate::body::BodyReader;
use crate::outq::OutQueue;
use crate::response::{Keep, Response};
use evserver_http::Head;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::os::fd::RawFd;
use std::time::Instant;

/// Where a connection is in the request cycle.
pub enum State {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Pre-reading the body of the parsed head.
    Body(BodyReader),
    /// The application's response is in progress.
    App(Box<Response>),
    /// No further request will be read; close once the output is sent.
    Done,
    /// Write side shut down; waiting briefly for the client's end of file before closing,
    /// so unread input does not turn into a reset that destroys the response.
    Lingering,
    /// The fd is closed; waiting for outstanding operations to finish.
    Closed,
}

/// A client connection.
pub struct Conn {
    pub fd: RawFd,
    pub generation: u32,
    pub listener: usize,
    /// Received bytes; `inbuf[start..]` is not consumed yet.
    pub inbuf: Vec<u8>,
    pub start: usize,
    /// The head being processed (its spans point into `inbuf[start..]`).
    pub head: Head,
    pub out: OutQueue<Keep>,
    pub state: State,
    pub recv_armed: bool,
    /// A send is in flight (counted in `ops`).
    pub sending: bool,
    /// A wait for the socket to become writable (sendfile) is pending.
    pub awaiting_writable: bool,
    /// Operations the kernel holds for this slot.
    pub ops: u32,
    /// The client finished sending (or the connection broke).
    pub eof: bool,
    /// `100 Continue` was sent for the current request.
    pub sent_continue: bool,
    pub deadline: Option<Instant>,
    pub peer: Option<(Py<PyString>, Py<PyString>)>,
    /// The client asked for the connection to close after a request that was read whole:
    /// once the response is out it can be closed at once, without lingering.
    pub client_asked_close: bool,
}

/// Unconsumed input beyond which a connection stops reading while a response runs.
pub const MAX_BUFFERED_INPUT: usize = 1 << 20;

impl Conn {
    pub fn new(fd: RawFd, generation: u32, listener: usize) -> Conn {
        Conn {
            fd,
            generation,
            listener,
            inbuf: Vec::new(),
            start: 0,
            head: Head::default(),
            out: OutQueue::new(),
            state: State::Head,
            recv_armed: false,
            sending: false,
            awaiting_writable: false,
            ops: 0,
            eof: false,
            sent_continue: false,
            deadline: None,
            peer: None,
            client_asked_close: false,
        }
    }

    /// The bytes not consumed yet.
    pub fn input(&self) -> &[u8] {
        &self.inbuf[self.start..]
    }

    /// Marks `n` more bytes consumed, reclaiming the buffer when all are.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.inbuf.len() {
            self.inbuf.clear();
            self.start = 0;
        }
    }

    /// Removes `n` bytes at offset `at` of the unconsumed input (body bytes behind a head).
    pub fn remove(&mut self, at: usize, n: usize) {
        let from = self.start + at;
        self.inbuf.drain(from..from + n);
    }

    /// Feeds received bytes straight into the body being read, when no input is buffered
    /// ahead of them and the body takes them without error (declared length, in memory):
    /// they are not copied through `inbuf` first. Returns how many it took; the rest (a
    /// pipelined request) goes to `inbuf` as usual, and `advance` sees a complete body.
    pub fn feed_body_directly(&mut self, data: &[u8]) -> usize {
        let State::Body(reader) = &mut self.state else {
            return 0;
        };
        if self.inbuf.len() != self.start + self.head.len || !reader.takes_in_memory(data.len()) {
            return 0;
        }
        reader.feed(data).map_or(0, |(consumed, _)| consumed)
    }

    /// Whether the connection wants more input now.
    pub fn wants_input(&self) -> bool {
        match &self.state {
            State::Head | State::Body(_) | State::Lingering => true,
            State::App(_) => self.input().len() < MAX_BUFFERED_INPUT,
            State::Done | State::Closed => false,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }
}
