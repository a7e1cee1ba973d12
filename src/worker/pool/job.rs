//! What crosses between the loop and a pool thread: a job (a response and its send queue,
//! and what to do with them) and what comes back. Whoever holds one owns everything in it.

use super::super::accesslog::Ending;
use super::super::accesslog::Record;
use super::super::conn::Running;
use super::super::outq::{Keep, OutQueue};
use crate::websocket::py::WebSocketRequest;
use crate::wsgi::fdevent::PendingWait;
use crate::wsgi::input::Body;
use crate::wsgi::peer::PeerStrings;
use evserver_http::Head;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// A request to start: the parts of it the environ is built from.
pub struct Start {
    pub listener: usize,
    pub head: Head,
    /// The bytes `head`'s spans point into.
    pub head_bytes: Vec<u8>,
    pub body: Option<(Body, u64)>,
    pub peer: Option<SocketAddr>,
    pub peer_strings: Option<PeerStrings>,
    pub keep_alive: bool,
    /// The access log's record of the request, when the access log is on.
    pub access: Option<Box<Record>>,
    /// A valid WebSocket upgrade request.
    pub websocket: Option<WebSocketRequest>,
    /// The socket is offered as `environ['gunicorn.socket']`, with these bytes received
    /// after the request (the loop stopped reading it).
    pub offer_socket: Option<Vec<u8>>,
}

/// What a pool thread does for the job.
pub enum Task {
    /// Call the application.
    Start(Box<Start>),
    /// Go on with the job's response.
    Resume(Resume),
}

/// How a response goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Its wait ended, or its send queue drained: drive it.
    Drive,
    /// Its file was sent: finish the body.
    EndBody,
    /// The worker stops: end the parked response.
    EndForStop,
    /// The connection ended: call `close()` and write the access-log line. Nothing comes back.
    Close(Ending),
}

/// One piece of work for a pool thread.
pub struct Job {
    /// The connection's slot and generation, to find it again when the job comes back.
    pub slot: u32,
    pub generation: u32,
    /// The socket, which the thread writes to directly while it holds the job (the loop does
    /// not write to it meanwhile, and does not close it before the job came back); -1 when
    /// the loop does the sending (TLS: it encrypts).
    pub fd: RawFd,
    pub task: Task,
    /// The response (for `Resume`).
    pub running: Option<Box<Running>>,
    /// The connection's send queue, with nothing in flight.
    pub out: OutQueue<Keep>,
    /// Body bytes the kernel did not take yet when a `Close` was decided (the access log).
    pub unsent: u64,
}

/// What the loop must do once a job came back.
pub enum Handed {
    /// The socket took only part of what was queued: send the rest, then drive on.
    Send,
    /// Park the response on this wait.
    Park(PendingWait),
    /// Send the response's file, then finish its body.
    SendFile,
    /// The response ended (logged and recycled on the thread); send what is left.
    Done { keep_alive: bool, stale_wait: bool },
    /// The client went away while the thread sent (logged and recycled): close.
    Gone,
}

/// A job that came back.
pub struct Returned {
    pub slot: u32,
    pub generation: u32,
    pub running: Option<Box<Running>>,
    pub out: OutQueue<Keep>,
    pub peer_strings: Option<PeerStrings>,
    pub handed: Handed,
    /// The application raised KeyboardInterrupt or SystemExit.
    pub stop_requested: bool,
}
