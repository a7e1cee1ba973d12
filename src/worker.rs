//! The worker's event loop: one thread that holds the GIL except while it waits in the kernel,
//! turning completions into progress of each connection's request cycle.

use crate::accesslog::{Entry, Format};
use crate::body::{BodyError, BodyReader};
use crate::conn::{Conn, State};
use crate::fdwait::{self, InFlight, Outcome};
use crate::listen::Endpoint;
use crate::outq::SendOp;
use crate::pylog::Log;
use crate::response::{AccessRecord, Ctx, RequestInfo, Response, Step};
use crate::scoreboard::{CellRef, BACKEND_IO_URING, BACKEND_POLL};
use crate::wsgi::environ::{EnvironBuilder, RequestParts};
use crate::wsgi::fdevent::{FdeventSelect, FdeventWait, TimeoutFlag, WaitSlot};
use crate::wsgi::file_wrapper::FileWrapper;
use crate::wsgi::input::{Body, Input};
use crate::wsgi::recycle::Recycler;
use evserver_http::response::write_error_response;
use evserver_http::{parse_head, BodyFraming, DateCache, HttpError, Limits, Parsed, Version};
use evserver_platform::{process, sys, Completion, Driver, Interest, Token};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

const OP_ACCEPT: u8 = 1;
const OP_RECV: u8 = 2;
const OP_SEND: u8 = 3;
const OP_WRITABLE: u8 = 5;
const OP_WAKEUP: u8 = 6;

/// How often timeouts are checked.
const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// How long a closing connection waits for the client's end of file.
const LINGER: Duration = Duration::from_secs(2);
/// While the worker stops, how long an idle keep-alive connection may still bring one more
/// request (answered with `Connection: close`) before it is closed. Closing it at once could
/// cross a request already on its way.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// Timeouts and limits of a worker.
pub struct Settings {
    pub limits: Limits,
    pub spill_body: usize,
    pub keep_alive: Duration,
    pub header_timeout: Duration,
    /// Stop (gracefully) after this many requests, so the master starts a fresh worker.
    pub max_requests: Option<u64>,
    /// Open connections beyond which the worker stops accepting (0: no limit).
    pub max_connections: usize,
    /// How long a graceful stop may take before the remaining connections are closed.
    pub graceful_timeout: Duration,
    /// The access log's line (used when the access log is on).
    pub access_format: Format,
}

struct Slot {
    generation: u32,
    conn: Option<Box<Conn>>,
}

struct ListenerState {
    listener: Endpoint,
    template: Py<PyDict>,
    armed: bool,
}

/// One worker: the driver, the listeners, the connections and the application.
pub struct Worker<'py> {
    py: Python<'py>,
    driver: Driver,
    app: Bound<'py, PyAny>,
    settings: Settings,
    listeners: Vec<ListenerState>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    completions: Vec<Completion>,
    environ: EnvironBuilder,
    recycler: Recycler,
    /// The address of the last client whose REMOTE_ADDR was made, with that string.
    last_peer_ip: Option<(std::net::IpAddr, Py<PyString>)>,
    wait_slot: Rc<WaitSlot>,
    empty_input: Py<Input>,
    log: Log,
    date: DateCache,
    now: Instant,
    next_sweep: Instant,
    stop: bool,
    /// A signal handler's exception, to end the loop with.
    signal_error: Option<PyErr>,
    /// The read end of the signal pipe (signal numbers as bytes).
    signal_fd: Option<RawFd>,
    /// Stopping gracefully since this instant; the loop ends when no connection is left or
    /// the graceful timeout passes.
    draining: Option<Instant>,
    /// Accepting is paused because `max_connections` are open.
    accept_paused: bool,
    open_connections: usize,
    requests_served: u64,
    scoreboard: Option<CellRef>,
    /// The master's pid: a worker whose parent changed lost its master and stops.
    master_pid: Option<i32>,
}

impl<'py> Worker<'py> {
    pub fn new(
        py: Python<'py>,
        driver: Driver,
        app: Bound<'py, PyAny>,
        listeners: Vec<Endpoint>,
        settings: Settings,
        log: Log,
        multiprocess: bool,
    ) -> PyResult<Worker<'py>> {
        let wait_slot = Rc::new(WaitSlot::default());
        let readable = Py::new(py, FdeventWait::new(Interest::Readable, wait_slot.clone()))?;
        let writable = Py::new(py, FdeventWait::new(Interest::Writable, wait_slot.clone()))?;
        let select = Py::new(py, FdeventSelect::new(wait_slot.clone()))?;
        let stderr = py.import("sys")?.getattr("stderr")?;
        let mut states = Vec::new();
        for listener in listeners {
            let (name, port) = listener.server_name_and_port();
            let t = PyDict::new(py);
            t.set_item("wsgi.version", (1, 0))?;
            t.set_item("wsgi.url_scheme", "http")?;
            t.set_item("wsgi.errors", &stderr)?;
            t.set_item("wsgi.multithread", false)?;
            t.set_item("wsgi.multiprocess", multiprocess)?;
            t.set_item("wsgi.run_once", false)?;
            t.set_item("wsgi.input_terminated", true)?;
            t.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
            t.set_item("x-wsgiorg.fdevent.readable", &readable)?;
            t.set_item("x-wsgiorg.fdevent.writable", &writable)?;
            t.set_item("x-evserver.fdevent.select", &select)?;
            t.set_item("SCRIPT_NAME", "")?;
            t.set_item("SERVER_NAME", name)?;
            t.set_item("SERVER_PORT", port)?;
            t.set_item(
                "SERVER_SOFTWARE",
                concat!("evserver/", env!("CARGO_PKG_VERSION")),
            )?;
            crate::wsgi::environ::add_request_placeholders(&t)?;
            states.push(ListenerState {
                listener,
                template: t.unbind(),
                armed: false,
            });
        }
        let now = Instant::now();
        Ok(Worker {
            py,
            driver,
            app,
            settings,
            listeners: states,
            slots: Vec::new(),
            free: Vec::new(),
            completions: Vec::with_capacity(1024),
            environ: EnvironBuilder::default(),
            recycler: Recycler::default(),
            last_peer_ip: None,
            wait_slot,
            empty_input: Py::new(py, Input::empty())?,
            log,
            date: DateCache::new(),
            now,
            next_sweep: now + SWEEP_INTERVAL,
            stop: false,
            signal_error: None,
            signal_fd: None,
            draining: None,
            accept_paused: false,
            open_connections: 0,
            requests_served: 0,
            scoreboard: None,
            master_pid: None,
        })
    }

    /// Watches `fd`, the read end of a pipe that receives signal numbers as bytes: SIGTERM
    /// and SIGINT stop gracefully, SIGQUIT at once.
    pub fn set_signal_fd(&mut self, fd: RawFd) {
        self.signal_fd = Some(fd);
    }

    /// Makes the worker stop gracefully when its parent is no longer `pid` (where the
    /// kernel's parent-death signal does not exist).
    pub fn set_master_pid(&mut self, pid: i32) {
        self.master_pid = Some(pid);
    }

    /// Reports the heartbeat and figures into `cell` for the master.
    pub fn set_scoreboard(&mut self, cell: CellRef) {
        let backend = if self.driver.name() == "io_uring" {
            BACKEND_IO_URING
        } else {
            BACKEND_POLL
        };
        cell.get()
            .backend
            .store(backend, std::sync::atomic::Ordering::Relaxed);
        self.scoreboard = Some(cell);
        // A first beat now: loading the application may have taken longer than --timeout.
        self.report_figures();
    }

    /// Runs until a signal handler raises (SIGINT, SIGTERM) or the application asks to stop.
    pub fn run(&mut self) -> PyResult<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        if let Some(fd) = self.signal_fd {
            self.driver
                .poll_fd(fd, Interest::Readable, None, Token::new(0, 0, OP_WAKEUP));
        }
        let mut result = Ok(());
        while !self.stop {
            let timeout = self.next_sweep.saturating_duration_since(self.now);
            // SAFETY: the GIL is released only around the kernel wait, during which this
            // thread touches no Python object; it is re-acquired before anything else.
            let waited = unsafe {
                let state = pyo3::ffi::PyEval_SaveThread();
                let r = self.driver.wait(Some(timeout));
                pyo3::ffi::PyEval_RestoreThread(state);
                r
            };
            if let Err(e) = waited {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    self.check_signals();
                } else {
                    result = Err(e.into());
                    break;
                }
            }
            self.now = Instant::now();
            self.date.refresh_at(self.now);
            let mut completions = std::mem::take(&mut self.completions);
            self.driver.drain(&mut completions);
            for c in completions.drain(..) {
                self.on_completion(c);
                if self.stop {
                    break;
                }
            }
            self.completions = completions;
            if self.now >= self.next_sweep {
                self.sweep();
                self.next_sweep = self.now + SWEEP_INTERVAL;
            }
            if let Some(since) = self.draining {
                if self.open_connections == 0 {
                    self.stop = true;
                } else if self.now >= since + self.settings.graceful_timeout {
                    self.log.warning(
                        self.py,
                        &format!(
                            "graceful stop timed out after {} s; closing {} connection(s)",
                            self.settings.graceful_timeout.as_secs(),
                            self.open_connections
                        ),
                    );
                    self.stop = true;
                }
            }
        }
        self.shutdown();
        match self.signal_error.take() {
            Some(err) if !is_stop_signal(self.py, &err) => Err(err),
            _ => result,
        }
    }

    /// Runs `f` with the per-worker context a response needs; a stop the application asked
    /// for (KeyboardInterrupt, SystemExit) stops the loop.
    fn with_ctx<R>(
        &mut self,
        f: impl FnOnce(Python<'py>, &Bound<'py, PyAny>, &mut Ctx<'_>) -> R,
    ) -> R {
        let mut stop = false;
        let result = {
            let mut ctx = Ctx {
                log: &self.log,
                wait_slot: &self.wait_slot,
                date: self.date.get(),
                stop_requested: &mut stop,
            };
            f(self.py, &self.app, &mut ctx)
        };
        if stop {
            self.stop = true;
        }
        result
    }

    /// Runs Python's signal handlers; an exception they raise stops the loop.
    fn check_signals(&mut self) {
        if let Err(err) = self.py.check_signals() {
            self.signal_error = Some(err);
            self.stop = true;
        }
    }

    fn on_completion(&mut self, c: Completion) {
        match c.token.op() {
            OP_ACCEPT => self.on_accept(c),
            OP_WAKEUP => self.on_wakeup(c),
            op if matches!(op, OP_RECV | OP_SEND | OP_WRITABLE)
                || fdwait::index_of(op).is_some() =>
            {
                let Some(mut conn) = self.take_conn(c.token) else {
                    // A stale completion of a freed slot carries nothing to act on, but a
                    // provided buffer must still go back.
                    if let Some(id) = c.buffer {
                        self.driver.release_buffer(id);
                    }
                    return;
                };
                if !c.more {
                    // A multishot recv keeps its operation until its final completion.
                    conn.ops -= 1;
                }
                match c.token.op() {
                    OP_RECV => self.on_recv(&mut conn, c),
                    OP_SEND => self.on_send(&mut conn, c),
                    OP_WRITABLE => self.on_writable(&mut conn, c),
                    _ => self.on_fdwait(&mut conn, c),
                }
                self.put_conn(c.token.slot(), conn);
            }
            _ => {}
        }
    }

    // ---- slots -------------------------------------------------------------------------

    fn take_conn(&mut self, token: Token) -> Option<Box<Conn>> {
        let slot = self.slots.get_mut(token.slot() as usize)?;
        if slot.generation != token.generation() {
            return None;
        }
        slot.conn.take()
    }

    /// Puts a connection back in its slot, or frees the slot once it is closed and the
    /// kernel holds nothing of it.
    fn put_conn(&mut self, slot: u32, conn: Box<Conn>) {
        let entry = &mut self.slots[slot as usize];
        if conn.is_closed() && conn.ops == 0 {
            entry.generation = Token::next_generation(entry.generation);
            self.free.push(slot);
            drop(conn);
            self.open_connections -= 1;
            if self.accept_paused && self.open_connections < self.settings.max_connections {
                self.accept_paused = false;
                self.log.info(
                    self.py,
                    "below --max-connections again; accepting new connections",
                );
                for i in 0..self.listeners.len() {
                    self.arm_accept(i);
                }
            }
        } else {
            entry.conn = Some(conn);
        }
    }

    fn token(slot: u32, conn: &Conn, op: u8) -> Token {
        Token::new(slot, conn.generation, op)
    }

    // ---- accepting ---------------------------------------------------------------------

    fn arm_accept(&mut self, index: usize) {
        if self.draining.is_some() || self.accept_paused {
            return;
        }
        let l = &mut self.listeners[index];
        if !l.armed {
            l.armed = true;
            self.driver
                .accept_multi(l.listener.fd, Token::new(index as u32, 0, OP_ACCEPT));
        }
    }

    fn on_accept(&mut self, c: Completion) {
        let index = c.token.slot() as usize;
        if !c.more {
            self.listeners[index].armed = false;
        }
        if c.result < 0 {
            let errno = -c.result;
            if errno != libc::ECANCELED {
                self.log.warning(
                    self.py,
                    &format!(
                        "accept failed: {}",
                        std::io::Error::from_raw_os_error(errno)
                    ),
                );
            }
            // Re-armed by the next sweep, so a persistent error (EMFILE) cannot spin.
            return;
        }
        let fd = c.result;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[slot as usize].generation;
        let mut conn = Box::new(Conn::new(fd, generation, index));
        conn.deadline = Some(self.now + self.settings.keep_alive);
        self.open_connections += 1;
        if self.draining.is_some() {
            // Accepted just before the accept was cancelled: take one request, then close.
            conn.deadline = Some(self.now + DRAIN_IDLE);
        }
        self.arm_recv(slot, &mut conn);
        self.slots[slot as usize].conn = Some(conn);
        let limit = self.settings.max_connections;
        if limit > 0 && self.open_connections >= limit && !self.accept_paused {
            self.pause_accepting();
        } else if !c.more {
            self.arm_accept(index);
        }
    }

    /// Stops accepting until a connection closes (`--max-connections` reached); new clients
    /// wait in the kernel's backlog meanwhile.
    fn pause_accepting(&mut self) {
        self.accept_paused = true;
        self.log.warning(
            self.py,
            &format!(
                "{} connections open (--max-connections); not accepting until one closes",
                self.open_connections
            ),
        );
        self.cancel_accepts();
    }

    fn cancel_accepts(&mut self) {
        for (i, l) in self.listeners.iter().enumerate() {
            if l.armed {
                self.driver.cancel(Token::new(i as u32, 0, OP_ACCEPT));
            }
        }
    }

    fn on_wakeup(&mut self, c: Completion) {
        let Some(fd) = self.signal_fd else { return };
        if c.result != -libc::ECANCELED {
            let mut signals = Vec::new();
            process::drain_pipe(fd, &mut signals);
            for sig in signals {
                match i32::from(sig) {
                    libc::SIGTERM | libc::SIGINT => self.begin_drain("a stop signal"),
                    libc::SIGQUIT => self.stop = true,
                    _ => {}
                }
            }
        }
        if !self.stop {
            self.driver
                .poll_fd(fd, Interest::Readable, None, Token::new(0, 0, OP_WAKEUP));
        }
    }

    // ---- receiving ---------------------------------------------------------------------

    fn arm_recv(&mut self, slot: u32, conn: &mut Conn) {
        if !conn.recv_armed && !conn.eof && conn.wants_input() {
            conn.recv_armed = true;
            conn.ops += 1;
            self.driver
                .recv_multi(conn.fd, Self::token(slot, conn, OP_RECV));
        }
    }

    fn on_recv(&mut self, conn: &mut Conn, c: Completion) {
        let slot = c.token.slot();
        if !c.more {
            conn.recv_armed = false;
        }
        if let Some(id) = c.buffer {
            let keep = c.result > 0
                && !matches!(conn.state, State::Lingering | State::Closed | State::Done);
            if keep {
                let was_empty = conn.input().is_empty();
                let data = self.driver.buffer(id, c.result as usize);
                let fed = conn.feed_body_directly(data);
                if fed > 0 {
                    conn.deadline = Some(self.now + self.settings.header_timeout);
                }
                conn.inbuf.extend_from_slice(&data[fed..]);
                if was_empty && matches!(conn.state, State::Head) {
                    conn.deadline = Some(self.now + self.settings.header_timeout);
                }
            }
            // Every buffer the kernel hands over goes back, whatever the result.
            self.driver.release_buffer(id);
        }
        if c.result == 0
            || (c.result < 0 && c.result != -libc::ENOBUFS && c.result != -libc::ECANCELED)
        {
            conn.eof = true;
        }
        match &conn.state {
            State::Closed => return,
            State::Lingering | State::Done => {
                if conn.eof && !conn.sending {
                    self.close_now(slot, conn);
                    return;
                }
            }
            State::App(resp) => {
                if conn.eof && resp.parked.is_some() {
                    // The client is gone while the request waits: end it now.
                    self.close_now(slot, conn);
                    return;
                }
                if conn.recv_armed && !conn.wants_input() {
                    // Too much pipelined input behind a running response: stop reading.
                    self.driver.cancel(Self::token(slot, conn, OP_RECV));
                }
            }
            State::Head | State::Body(_) => {
                if conn.eof && c.result <= 0 {
                    self.advance(slot, conn);
                    if matches!(conn.state, State::Head | State::Body(_)) {
                        // End of file before a complete request: nothing to answer.
                        self.close_now(slot, conn);
                    }
                    return;
                }
                self.advance(slot, conn);
            }
        }
        self.arm_recv(slot, conn);
    }

    // ---- the request cycle -------------------------------------------------------------

    /// Parses and dispatches as many requests as the buffered input holds, then sends.
    fn advance(&mut self, slot: u32, conn: &mut Conn) {
        loop {
            match &mut conn.state {
                State::Head => {
                    if conn.input().is_empty() {
                        if conn.deadline.is_none() {
                            conn.deadline = Some(self.now + self.settings.keep_alive);
                        }
                        break;
                    }
                    let start = conn.start;
                    match parse_head(&conn.inbuf[start..], &self.settings.limits, &mut conn.head) {
                        Ok(Parsed::Partial) => break,
                        Ok(Parsed::Complete) => {
                            conn.sent_continue = false;
                            match conn.head.body {
                                Some(BodyFraming::Length(n)) if n > 0 => {
                                    conn.state = State::Body(BodyReader::with_length(
                                        n,
                                        self.settings.spill_body,
                                    ));
                                    conn.deadline = Some(self.now + self.settings.header_timeout);
                                }
                                Some(BodyFraming::Chunked) => {
                                    conn.state = State::Body(BodyReader::chunked(
                                        self.settings.limits.max_body,
                                        self.settings.spill_body,
                                    ));
                                    conn.deadline = Some(self.now + self.settings.header_timeout);
                                }
                                _ => {
                                    conn.deadline = None;
                                    self.dispatch(slot, conn, None);
                                }
                            }
                        }
                        Err(e) => {
                            self.refuse(conn, e);
                            break;
                        }
                    }
                }
                State::Body(reader) => {
                    let head_len = conn.head.len;
                    let available = conn.inbuf.len() - conn.start - head_len;
                    if available == 0
                        && conn.head.expect_continue
                        && !conn.sent_continue
                        && reader.is_untouched()
                    {
                        conn.sent_continue = true;
                        conn.out.push_copy(b"HTTP/1.1 100 Continue\r\n\r\n");
                        break;
                    }
                    let from = conn.start + head_len;
                    match reader.feed(&conn.inbuf[from..]) {
                        Ok((consumed, done)) => {
                            conn.remove(head_len, consumed);
                            if consumed > 0 {
                                conn.deadline = Some(self.now + self.settings.header_timeout);
                            }
                            if !done {
                                break;
                            }
                            let State::Body(reader) =
                                std::mem::replace(&mut conn.state, State::Head)
                            else {
                                unreachable!("matched State::Body above")
                            };
                            let chunked_length = reader.is_chunked().then(|| reader.len());
                            match reader.finish() {
                                Ok(body) => {
                                    conn.deadline = None;
                                    self.dispatch(slot, conn, Some((body, chunked_length)));
                                }
                                Err(e) => {
                                    self.refuse_unstored_body(
                                        conn,
                                        &format!("cannot read back the request body: {e}"),
                                    );
                                    break;
                                }
                            }
                        }
                        Err(BodyError::Http(e)) => {
                            self.refuse(conn, e);
                            break;
                        }
                        Err(BodyError::Io(e)) => {
                            self.refuse_unstored_body(
                                conn,
                                &format!("cannot spill the request body to a temporary file: {e}"),
                            );
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        self.start_send(slot, conn);
        if matches!(conn.state, State::Done) && conn.out.is_empty() {
            self.begin_linger(slot, conn);
        }
    }

    /// Answers a refused request with its status and closes the connection afterwards.
    fn refuse(&mut self, conn: &mut Conn, e: HttpError) {
        let (status, reason) = e.status();
        self.log.debug(
            self.py,
            &format!("refused a request: {status} {reason}: {}", e.describe()),
        );
        self.refuse_with(conn, status, reason, e.describe());
    }

    /// The server could not keep a request body (a temporary file failed): logged, and a 500.
    fn refuse_unstored_body(&mut self, conn: &mut Conn, why: &str) {
        self.log.error(self.py, why);
        self.refuse_with(
            conn,
            500,
            "Internal Server Error",
            "the request body could not be stored",
        );
    }

    fn refuse_with(&mut self, conn: &mut Conn, status: u16, reason: &str, detail: &str) {
        let mut w = conn.out.copy_buffer();
        write_error_response(w.buf(), status, reason, detail, self.date.get());
        drop(w);
        conn.state = State::Done;
        conn.inbuf.clear();
        conn.start = 0;
    }

    /// The peer's address strings, looked up once per connection.
    fn peer(&mut self, conn: &mut Conn) -> (Bound<'py, PyString>, Bound<'py, PyString>) {
        let py = self.py;
        if conn.peer.is_none() {
            // SAFETY: the fd is open for as long as the connection is not closed.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(conn.fd) };
            let sock = socket2::SockRef::from(&fd);
            conn.peer = Some(match sock.peer_addr().ok().and_then(|a| a.as_socket()) {
                Some(a) => {
                    // Clients mostly come from few addresses: reuse the last one's string.
                    let ip = match &self.last_peer_ip {
                        Some((ip, text)) if *ip == a.ip() => text.clone_ref(py),
                        _ => {
                            let text = PyString::new(py, &a.ip().to_string()).unbind();
                            self.last_peer_ip = Some((a.ip(), text.clone_ref(py)));
                            text
                        }
                    };
                    let port = PyString::new(py, itoa::Buffer::new().format(a.port())).unbind();
                    (ip, port)
                }
                None => (
                    PyString::new(py, "").unbind(),
                    PyString::new(py, "").unbind(),
                ),
            });
        }
        let (a, p) = conn
            .peer
            .as_ref()
            .map(|(a, p)| (a.bind(py).clone(), p.bind(py).clone()))
            .unwrap_or_else(|| (PyString::new(py, ""), PyString::new(py, "")));
        (a, p)
    }

    /// Builds the environ, calls the application and drives its response.
    fn dispatch(&mut self, slot: u32, conn: &mut Conn, body: Option<(Body, Option<u64>)>) {
        let py = self.py;
        let (remote_addr, remote_port) = self.peer(conn);
        let (input, decoded_length) = match body {
            Some((body, decoded)) => match Py::new(py, Input::new(body)) {
                Ok(i) => (i, decoded),
                Err(e) => {
                    self.log.exception(py, "cannot create wsgi.input", &e);
                    self.refuse_with(conn, 500, "Internal Server Error", "out of memory");
                    return;
                }
            },
            None => (self.empty_input.clone_ref(py), None),
        };
        let head = &conn.head;
        let buf = &conn.inbuf[conn.start..];
        let request = RequestInfo {
            version: head.version.unwrap_or(Version::Http11),
            is_head: head.method.of(buf) == b"HEAD",
            keep_alive: head.keep_alive && !conn.eof && self.draining.is_none(),
        };
        let captured = self
            .log
            .access_enabled()
            .then(|| self.settings.access_format.capture(head, buf));
        let timeout_flag = match self.recycler.timeout_flag(py) {
            Ok(f) => f,
            Err(e) => {
                self.log.exception(py, "cannot create the fdevent flag", &e);
                return;
            }
        };
        let environ = self.build_environ(
            conn.listener,
            buf,
            head,
            &remote_addr,
            &remote_port,
            decoded_length,
            input,
            &timeout_flag,
        );
        let head_len = conn.head.len;
        conn.consume(head_len);
        let environ = match environ {
            Ok(e) => e,
            Err(e) => {
                self.log.exception(py, "cannot build the environ", &e);
                self.refuse_with(
                    conn,
                    500,
                    "Internal Server Error",
                    "the request could not be prepared",
                );
                return;
            }
        };
        let start_response = match self.recycler.start_response(py) {
            Ok(s) => s,
            Err(e) => {
                self.log.exception(py, "cannot create start_response", &e);
                return;
            }
        };
        let (mut response, step) = self.with_ctx(|py, app, ctx| {
            Response::start(
                py,
                app,
                environ.as_any(),
                start_response,
                timeout_flag,
                request,
                ctx,
                &mut conn.out,
            )
        });
        if let Some(captured) = captured {
            response.access = Some(Box::new(AccessRecord {
                captured,
                started: self.now,
                environ: self
                    .settings
                    .access_format
                    .uses_environ()
                    .then(|| environ.clone().unbind()),
            }));
        }
        conn.state = State::App(Box::new(response));
        match step {
            Some(step) => self.on_step(slot, conn, step),
            None => self.drive(slot, conn),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build_environ(
        &mut self,
        listener: usize,
        buf: &[u8],
        head: &evserver_http::Head,
        remote_addr: &Bound<'py, PyString>,
        remote_port: &Bound<'py, PyString>,
        decoded_length: Option<u64>,
        input: Py<Input>,
        timeout_flag: &Py<TimeoutFlag>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        let environ = self.listeners[listener].template.bind(py).copy()?;
        environ.set_item(pyo3::intern!(py, "wsgi.input"), input)?;
        environ.set_item(pyo3::intern!(py, "x-wsgiorg.fdevent.timeout"), timeout_flag)?;
        environ.set_item(pyo3::intern!(py, "x-evserver.fdevent.ready"), timeout_flag)?;
        self.environ.fill(
            &environ,
            &RequestParts {
                buf,
                head,
                remote_addr,
                remote_port,
                decoded_length,
            },
        )?;
        Ok(environ)
    }

    /// Drives the running response until it must wait.
    fn drive(&mut self, slot: u32, conn: &mut Conn) {
        loop {
            let State::App(response) = &mut conn.state else {
                return;
            };
            if response.parked.is_some() || conn.awaiting_writable {
                return;
            }
            let out = &mut conn.out;
            let step = self.with_ctx(|py, _, ctx| response.drive(py, ctx, out));
            if let Step::Flush = step {
                self.start_send(slot, conn);
                if let Err(e) = self.driver.submit() {
                    self.log.warning(self.py, &format!("submit failed: {e}"));
                }
                continue;
            }
            self.on_step(slot, conn, step);
            return;
        }
    }

    fn on_step(&mut self, slot: u32, conn: &mut Conn, step: Step) {
        match step {
            Step::Flush | Step::AwaitSend => self.start_send(slot, conn),
            Step::Park(_) if self.draining.is_some() => {
                self.end_parked(slot, conn);
            }
            Step::Park(wait) => {
                self.start_send(slot, conn);
                let generation = conn.generation;
                if let State::App(response) = &mut conn.state {
                    // One poll per fd; the first carries the timeout (one timer per wait).
                    for (i, &(fd, interest)) in wait.fds.iter().enumerate() {
                        let timeout = if i == 0 { wait.timeout } else { None };
                        let token = Token::new(slot, generation, fdwait::op_for(i));
                        self.driver.poll_fd(fd, interest, timeout, token);
                    }
                    conn.ops += wait.fds.len() as u32;
                    response.parked =
                        Some(InFlight::new(wait.fds.iter().map(|&(fd, _)| fd).collect()));
                }
            }
            Step::SendFile => self.send_file(slot, conn),
            Step::Done { keep_alive } => self.finish_request(conn, keep_alive),
            Step::Abort => self.close_now(slot, conn),
        }
    }

    /// Sends the response's file with sendfile once the queue ahead of it is empty.
    fn send_file(&mut self, slot: u32, conn: &mut Conn) {
        if !conn.out.is_empty() {
            self.start_send(slot, conn);
            return;
        }
        let State::App(response) = &mut conn.state else {
            return;
        };
        let fd = conn.fd;
        let mut sent_total = 0u64;
        let outcome = match response.file() {
            Some(file) => loop {
                if file.remaining == 0 {
                    break Ok(true);
                }
                let count = file.remaining.min(1 << 20) as usize;
                match sys::sendfile(fd, file.fd, &mut file.offset, count) {
                    Ok(0) => {
                        file.remaining = 0;
                        break Ok(true);
                    }
                    Ok(n) => {
                        file.remaining -= n as u64;
                        sent_total += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(false),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                }
            },
            None => Ok(true),
        };
        response.add_file_bytes(sent_total);
        match outcome {
            Ok(true) => {
                let out = &mut conn.out;
                let step = self.with_ctx(|py, _, ctx| response.end_body(py, ctx, out));
                self.on_step(slot, conn, step);
            }
            Ok(false) => {
                conn.awaiting_writable = true;
                conn.ops += 1;
                self.driver.poll_fd(
                    conn.fd,
                    Interest::Writable,
                    None,
                    Self::token(slot, conn, OP_WRITABLE),
                );
            }
            Err(e) => {
                self.log.debug(self.py, &format!("sendfile failed: {e}"));
                self.close_now(slot, conn);
            }
        }
    }

    /// A response completed: log it, then read the next request or close.
    fn finish_request(&mut self, conn: &mut Conn, keep_alive: bool) {
        let state = std::mem::replace(&mut conn.state, State::Head);
        if let State::App(response) = state {
            if response.access.is_some() {
                self.access_log(conn, &response);
            }
            let (start_response, timeout_flag) = response.into_parts();
            self.recycler.recycle(self.py, start_response, timeout_flag);
        }
        if !keep_alive || conn.eof {
            // The body was read whole before the application ran.
            conn.client_asked_close = !conn.head.keep_alive;
            conn.state = State::Done;
        } else {
            conn.deadline = Some(self.now + self.settings.keep_alive);
        }
        self.requests_served += 1;
        if let Some(cell) = &self.scoreboard {
            cell.get()
                .requests
                .store(self.requests_served, std::sync::atomic::Ordering::Relaxed);
        }
        if self
            .settings
            .max_requests
            .is_some_and(|max| self.requests_served >= max)
            && self.draining.is_none()
        {
            self.log.info(
                self.py,
                &format!(
                    "served {} requests (--max-requests); stopping for a fresh worker",
                    self.requests_served
                ),
            );
            self.begin_drain("--max-requests");
        }
    }

    /// Starts a graceful stop: no more accepting, `Connection: close` on every response,
    /// parked responses ended (their `close()` called), idle keep-alive connections closed
    /// after a moment. The loop ends when no connection is left.
    fn begin_drain(&mut self, why: &str) {
        if self.draining.is_some() {
            return;
        }
        self.log
            .debug(self.py, &format!("stopping gracefully on {why}"));
        self.draining = Some(self.now);
        self.cancel_accepts();
        // This worker's copies of the listeners: the master keeps its own (a successor
        // accepts from them); if the master is gone, this frees the port at once.
        for l in &mut self.listeners {
            if l.listener.fd >= 0 {
                self.driver.close(l.listener.fd);
                l.listener.fd = -1;
            }
        }
        let idle_deadline = self.now + DRAIN_IDLE;
        for slot in 0..self.slots.len() {
            let Some(mut conn) = self.slots[slot].conn.take() else {
                continue;
            };
            let slot = slot as u32;
            let idle = conn.input().is_empty();
            match &mut conn.state {
                State::Head if idle => {
                    conn.deadline = Some(
                        conn.deadline
                            .map_or(idle_deadline, |d| d.min(idle_deadline)),
                    );
                }
                State::App(response) if response.parked.is_some() => {
                    let pending = response.parked.as_ref().map_or(0, InFlight::pending);
                    for i in fdwait::indices(pending) {
                        self.driver
                            .cancel(Self::token(slot, &conn, fdwait::op_for(i)));
                    }
                    self.end_parked(slot, &mut conn);
                }
                State::App(response) => response.refuse_keep_alive(),
                _ => {}
            }
            self.put_conn(slot, conn);
        }
    }

    /// Ends a parked (or about to park) response because the worker stops.
    fn end_parked(&mut self, slot: u32, conn: &mut Conn) {
        let State::App(response) = &mut conn.state else {
            return;
        };
        let out = &mut conn.out;
        let step = self.with_ctx(|py, _, ctx| response.end_for_shutdown(py, ctx, out));
        self.on_step(slot, conn, step);
        self.start_send(slot, conn);
        if matches!(conn.state, State::Done) && conn.out.is_empty() {
            self.begin_linger(slot, conn);
        }
    }

    fn access_log(&self, conn: &Conn, response: &Response) {
        let py = self.py;
        let Some(record) = &response.access else {
            return;
        };
        let format = &self.settings.access_format;
        let remote = conn
            .peer
            .as_ref()
            .map(|(a, _)| a.bind(py).to_string())
            .unwrap_or_default();
        let time = format!(
            "[{}]",
            evserver_http::date::clf_date(evserver_http::date::now())
        );
        let response_headers: Vec<Option<String>> = format
            .response_headers()
            .map(|name| response.response_header(py, name))
            .collect();
        let environ_values: Vec<Option<String>> = match &record.environ {
            Some(environ) => {
                let environ = environ.bind(py);
                format
                    .environ_keys()
                    .map(|key| {
                        environ
                            .get_item(key)
                            .ok()
                            .flatten()
                            .and_then(|v| v.str().ok().map(|s| s.to_string()))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let line = format.render(&Entry {
            captured: &record.captured,
            remote: &remote,
            time: &time,
            status: response.status,
            bytes: response.body_bytes(),
            duration: Instant::now().saturating_duration_since(record.started),
            response_headers: &response_headers,
            environ_values: &environ_values,
        });
        self.log.access(py, &line);
    }

    // ---- sending -----------------------------------------------------------------------

    fn start_send(&mut self, slot: u32, conn: &mut Conn) {
        if conn.sending || conn.is_closed() {
            return;
        }
        if let Some(op) = conn.out.start_flight() {
            self.issue_send(slot, conn, op);
        }
    }

    fn issue_send(&mut self, slot: u32, conn: &mut Conn, op: SendOp) {
        conn.sending = true;
        conn.ops += 1;
        let token = Self::token(slot, conn, OP_SEND);
        // SAFETY: the op points into `conn.out`, which lives in the boxed connection and is
        // not touched until this send's completion; the slot is freed only after it.
        unsafe {
            match op {
                SendOp::Single(ptr, len) => self.driver.send(conn.fd, token, ptr, len),
                SendOp::Gathered(msg) => self.driver.sendmsg(conn.fd, token, msg),
            }
        }
    }

    fn on_send(&mut self, conn: &mut Conn, c: Completion) {
        let slot = c.token.slot();
        conn.sending = false;
        if conn.is_closed() {
            return;
        }
        if c.result < 0 {
            if c.result == -libc::EAGAIN || c.result == -libc::EINTR {
                if let Some(op) = conn.out.complete(0) {
                    self.issue_send(slot, conn, op);
                }
                return;
            }
            // The client is gone (EPIPE, ECONNRESET, ...).
            self.close_now(slot, conn);
            return;
        }
        if let Some(op) = conn.out.complete(c.result as usize) {
            self.issue_send(slot, conn, op);
            return;
        }
        self.start_send(slot, conn);
        if let State::App(_) = conn.state {
            self.drive(slot, conn);
            self.advance(slot, conn);
        }
        if matches!(conn.state, State::Done) && conn.out.is_empty() {
            self.begin_linger(slot, conn);
        }
        self.arm_recv(slot, conn);
    }

    fn on_fdwait(&mut self, conn: &mut Conn, c: Completion) {
        let slot = c.token.slot();
        let generation = conn.generation;
        let State::App(response) = &mut conn.state else {
            return;
        };
        let (Some(wait), Some(index)) = (&mut response.parked, fdwait::index_of(c.token.op()))
        else {
            return;
        };
        let next = wait.complete(index, c.result);
        for i in fdwait::indices(next.cancel) {
            self.driver
                .cancel(Token::new(slot, generation, fdwait::op_for(i)));
        }
        let Some(outcome) = next.resume else {
            return; // the other polls of the wait have yet to report
        };
        response.parked = None;
        match outcome {
            Outcome::Ready(fd) => response.timeout_flag.get().set_outcome(Some(fd)),
            Outcome::TimedOut => response.timeout_flag.get().set_outcome(None),
            Outcome::Cancelled => return,
        }
        self.drive(slot, conn);
        self.advance(slot, conn);
        self.arm_recv(slot, conn);
    }

    fn on_writable(&mut self, conn: &mut Conn, c: Completion) {
        let slot = c.token.slot();
        conn.awaiting_writable = false;
        if conn.is_closed() || c.result == -libc::ECANCELED {
            return;
        }
        self.drive(slot, conn);
        self.advance(slot, conn);
    }

    // ---- closing -----------------------------------------------------------------------

    /// Shuts down the write side and waits briefly for the client to close.
    fn begin_linger(&mut self, slot: u32, conn: &mut Conn) {
        // Lingering keeps unread input from turning into a reset that destroys the response;
        // a client that asked to close and sent nothing more has nothing left unread.
        if conn.eof || (conn.client_asked_close && conn.input().is_empty()) {
            self.close_now(slot, conn);
            return;
        }
        let _ = sys::shutdown_write(conn.fd);
        conn.state = State::Lingering;
        conn.deadline = Some(self.now + LINGER);
        self.arm_recv(slot, conn);
    }

    /// Cancels everything the connection has in flight, calls the iterable's `close()` if a
    /// response runs, and closes the fd. The slot is freed when the last operation reports.
    fn close_now(&mut self, slot: u32, conn: &mut Conn) {
        if conn.is_closed() {
            return;
        }
        let state = std::mem::replace(&mut conn.state, State::Closed);
        if let State::App(mut response) = state {
            if let Some(wait) = &response.parked {
                for i in fdwait::indices(wait.pending()) {
                    self.driver
                        .cancel(Self::token(slot, conn, fdwait::op_for(i)));
                }
            }
            self.with_ctx(|py, _, ctx| response.close_iterable(py, ctx));
        }
        if conn.recv_armed {
            self.driver.cancel(Self::token(slot, conn, OP_RECV));
        }
        if conn.sending {
            self.driver.cancel(Self::token(slot, conn, OP_SEND));
        }
        if conn.awaiting_writable {
            self.driver.cancel(Self::token(slot, conn, OP_WRITABLE));
        }
        self.driver.close(conn.fd);
        conn.fd = -1;
        conn.inbuf = Vec::new();
        conn.start = 0;
    }

    /// Closes connections whose deadline passed, re-arms listeners that stopped and reports
    /// the worker's figures.
    fn sweep(&mut self) {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.report_figures();
        if self
            .master_pid
            .is_some_and(|pid| process::parent_pid() != pid)
        {
            self.begin_drain("the loss of the master process");
        }
        let now = self.now;
        for slot in 0..self.slots.len() {
            let expired = match &self.slots[slot].conn {
                Some(conn) => {
                    conn.deadline.is_some_and(|d| d <= now)
                        && matches!(conn.state, State::Head | State::Body(_) | State::Lingering)
                }
                None => false,
            };
            if !expired {
                continue;
            }
            let Some(mut conn) = self.slots[slot].conn.take() else {
                continue;
            };
            let slot = slot as u32;
            conn.deadline = None;
            let started = !conn.input().is_empty() || matches!(conn.state, State::Body(_));
            if started && !matches!(conn.state, State::Lingering) {
                // A client too slow to send its request gets a 408 and is closed.
                self.refuse_with(
                    &mut conn,
                    408,
                    "Request Timeout",
                    "the request took too long to arrive",
                );
                self.start_send(slot, &mut conn);
                if conn.out.is_empty() {
                    self.begin_linger(slot, &mut conn);
                }
            } else {
                self.close_now(slot, &mut conn);
            }
            self.put_conn(slot, conn);
        }
    }

    /// Writes the heartbeat and the figures into the scoreboard. Called from the sweep, which
    /// runs every half second while the loop turns: the master's `--timeout` (whole seconds)
    /// needs no finer beat, so the loop's hot path reads no extra clock for it.
    fn report_figures(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(cell) = &self.scoreboard else {
            return;
        };
        cell.get()
            .heartbeat_ms
            .store(process::monotonic_millis(), Relaxed);
        let parked = self
            .slots
            .iter()
            .filter(|s| matches!(&s.conn, Some(c) if matches!(&c.state, State::App(r) if r.parked.is_some())))
            .count();
        let cell = cell.get();
        cell.connections
            .store(self.open_connections as u64, Relaxed);
        cell.parked.store(parked as u64, Relaxed);
        cell.cpu_micros.store(process::cpu_time_micros(), Relaxed);
        cell.rss_bytes.store(process::resident_bytes(), Relaxed);
    }

    /// Stops listening and ends every connection, calling `close()` on running responses.
    fn shutdown(&mut self) {
        for slot in 0..self.slots.len() {
            if let Some(mut conn) = self.slots[slot].conn.take() {
                self.close_now(slot as u32, &mut conn);
                drop(conn);
            }
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.armed {
                self.driver.cancel(Token::new(i as u32, 0, OP_ACCEPT));
            }
        }
        let _ = self.driver.submit();
    }
}

fn is_stop_signal(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
        || err.is_instance_of::<pyo3::exceptions::PySystemExit>(py)
}
