//! One client connection: its framer, body and send buffers, its state in the request cycle,
//! and the count of operations the kernel still holds for it (the slot is freed only when
//! that is zero).

use super::accesslog::Ending;
use super::body::BodySink;
use super::fdwait::InFlight;
use super::outq::{Keep, OutQueue};
use super::websocket::WsConn;
use crate::wsgi::peer::PeerStrings;
use crate::wsgi::response::Response;
use evserver_http::Framer;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Instant;

/// Where a connection is in the request cycle.
pub enum State {
    /// Reading a request (head or body, as the framer knows) or waiting for one.
    Reading,
    /// The application's response is in progress (on the loop: driven inline, or in thread
    /// mode parked, sending or waiting for a thread).
    App(Box<Running>),
    /// Thread mode: a pool thread holds the response and the send queue, and writes to the
    /// socket. `close`: the connection ended meanwhile, and closes once the job is back.
    OnThread { close: Option<Ending> },
    /// No further request will be read; close once the output is sent.
    Done,
    /// Write side shut down; waiting briefly for the client's end of file before closing,
    /// so unread input does not turn into a reset that destroys the response.
    Lingering,
    /// The fd is closed; waiting for outstanding operations to finish.
    Closed,
}

/// A response in progress and what the worker keeps beside it.
pub struct Running {
    pub response: Response,
    /// The fdevent wait in flight while the request is parked.
    pub parked: Option<InFlight>,
    /// What the access log needs of the request, when the access log is on.
    pub access: Option<Box<super::accesslog::Record>>,
}

/// A client connection.
pub struct Conn {
    pub fd: RawFd,
    pub generation: u32,
    pub listener: usize,
    /// Splits the received bytes into requests.
    pub framer: Framer,
    /// The body of the request being read.
    pub body: BodySink,
    pub out: OutQueue<Keep>,
    pub state: State,
    pub recv_armed: bool,
    /// Thread mode: the socket is offered to the application (`gunicorn.socket`) while a
    /// thread runs it, so the loop reads nothing from it meanwhile.
    pub socket_offered: bool,
    /// `--certfile`: the connection's TLS.
    pub tls: Option<Box<super::tls::TlsConn>>,
    /// A send is in flight (counted in `ops`).
    pub sending: bool,
    /// A wait for the socket to become writable (sendfile) is pending.
    pub awaiting_writable: bool,
    /// The response is not driven until everything queued was sent (see `Step::Send`).
    pub awaiting_sent: bool,
    /// Operations the kernel holds for this slot.
    pub ops: u32,
    /// The client finished sending (or the connection broke).
    pub eof: bool,
    pub deadline: Option<Instant>,
    /// When the current request was dispatched to the application (for its duration).
    pub request_started: Instant,
    /// The peer's address, looked up on the first request (`None` for a unix socket).
    pub peer: Option<Option<SocketAddr>>,
    pub peer_strings: Option<PeerStrings>,
    /// The client asked for the connection to close after a request that was read whole:
    /// once the response is out it can be closed at once, without lingering.
    pub client_asked_close: bool,
    /// The WebSocket the connection switched to, while its conversation runs.
    pub ws: Option<Box<WsConn>>,
    /// `--proxy-protocol`, from an allowed peer: a PROXY header may still come; the bytes
    /// received so far, until it is whole (or turns out to be absent).
    pub proxy_pending: Option<Vec<u8>>,
}

/// Unconsumed input beyond which a connection stops reading while a response runs.
pub const MAX_BUFFERED_INPUT: usize = 1 << 20;

impl Conn {
    pub fn new(
        fd: RawFd,
        generation: u32,
        listener: usize,
        framer: Framer,
        body: BodySink,
        now: Instant,
    ) -> Conn {
        Conn {
            fd,
            generation,
            listener,
            framer,
            body,
            out: OutQueue::new(),
            state: State::Reading,
            recv_armed: false,
            socket_offered: false,
            tls: None,
            sending: false,
            awaiting_writable: false,
            awaiting_sent: false,
            ops: 0,
            eof: false,
            deadline: None,
            request_started: now,
            peer: None,
            peer_strings: None,
            client_asked_close: false,
            ws: None,
            proxy_pending: None,
        }
    }

    /// Whether the connection wants more input now.
    pub fn wants_input(&self) -> bool {
        match &self.state {
            State::Reading | State::Lingering => true,
            State::App(_) | State::OnThread { .. } => {
                !self.socket_offered && self.framer.buffered() < MAX_BUFFERED_INPUT
            }
            State::Done | State::Closed => false,
        }
    }

    /// Whether a response is parked on an fdevent wait.
    pub fn is_parked(&self) -> bool {
        matches!(&self.state, State::App(r) if r.parked.is_some())
    }

    /// The peer's address, looked up once.
    pub fn peer(&mut self) -> Option<SocketAddr> {
        *self.peer.get_or_insert_with(|| {
            // SAFETY: the fd is open for as long as the connection is not closed.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
            socket2::SockRef::from(&fd)
                .peer_addr()
                .ok()
                .and_then(|a| a.as_socket())
        })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The socket a pool thread may write to itself: none under TLS (the loop encrypts).
    pub fn fd_for_threads(&self) -> RawFd {
        if self.tls.is_some() {
            -1
        } else {
            self.fd
        }
    }

    /// Everything queued went to the kernel (under TLS: encrypted and sent).
    pub fn all_sent(&self) -> bool {
        self.out.is_empty() && self.tls.as_ref().map_or(true, |t| t.idle())
    }
}
