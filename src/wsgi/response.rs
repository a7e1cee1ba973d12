//! Drives one WSGI response: calls the application, pulls chunks from its iterable while the
//! output is under its high-water mark, frames them (Content-Length, chunked or
//! close-delimited), stops at fdevent waits, hands files to sendfile, and calls `close()`
//! exactly once. It never sends: what must happen next is the [`Step`] it returns.

use super::fdevent::{PendingWait, TimeoutFlag, Waits};
use super::file_wrapper::FileSend;
use super::head::write_app_head;
use super::output::Output;
use super::recycle::{RequestObjects, Spent};
use super::source::Source;
use super::start_response::Starter;
use super::upgrade::{yielded_on_websocket, Upgraded};
use crate::log::Log;
use crate::websocket::py::WebSocketRequest;
use evserver_http::encode::{
    finish_head, write_chunk, write_chunk_size, write_error_response, BodySize, Exchange, Framing,
    CHUNK_END, LAST_CHUNK,
};
use evserver_ws::CloseCode;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

/// Pull the next chunk only while less than this is waiting to be sent.
pub const HIGH_WATER_MARK: usize = 64 * 1024;
/// The same for a list or tuple: its items are in memory already and large ones are sent in
/// place, so queueing more costs little and lets one gathered send carry many items.
const SEQUENCE_HIGH_WATER_MARK: usize = 4 * 1024 * 1024;
/// Chunks up to this size are copied into the send buffer; larger ones are sent in place.
const COPY_LIMIT: usize = 4096;

/// What the connection must do next for this response.
pub enum Step {
    /// Hand what is queued to the kernel, and drive again once it is sent: after a streamed
    /// block (PEP 3333: a block is on its way before the application makes the next), or when
    /// the output passed its high-water mark (a slow reader costs bounded memory).
    Send,
    /// Park until one of the wait's fds is ready or its timeout passes.
    Park(PendingWait),
    /// Send the file (see [`Response::file`]) once the output is empty, then call
    /// [`Response::end_body`].
    SendFile,
    /// The response is complete and `close()` was called.
    Done { keep_alive: bool },
    /// The application took the connection over (`handoff.rs`): nothing is sent, and the
    /// server closes its copy of the socket. `close()` was called.
    TakenOver,
    /// The response failed after its head went out: send what is queued, then close the
    /// connection without the body's proper end. `close()` was called.
    Abort,
}

/// Per-thread things a response uses while it runs.
pub struct Ctx<'a> {
    pub log: &'a Log,
    /// This thread's fdevent wait slot.
    pub waits: &'a Waits,
    /// The current Date header value.
    pub date: &'a [u8],
    /// Set when the application raised KeyboardInterrupt or SystemExit.
    pub stop_requested: &'a mut bool,
}

/// One response in progress.
pub struct Response {
    pub(super) result: Option<Py<PyAny>>,
    source: Source,
    /// `None` once the response became a WebSocket conversation: released then (the 101 is
    /// out, and the conversation may last hours).
    pub(super) start_response: Option<Starter>,
    /// The request's `x-wsgiorg.fdevent.timeout`, set on every resume.
    pub timeout_flag: Py<TimeoutFlag>,
    pub(super) exchange: Exchange,
    known_length: Option<u64>,
    pub(super) framing: Option<Framing>,
    body_sent: u64,
    pub status: u16,
    /// Body bytes beyond the application's Content-Length were dropped.
    overrun: bool,
    /// The application recorded an fdevent wait it never yielded; it was dropped (the worker
    /// logs a warning naming the request).
    pub stale_wait: bool,
    /// `evserver.websocket`, on an upgrade request.
    pub(super) websocket: Option<Py<WebSocketRequest>>,
    /// The application accepted the WebSocket: the `101` is out (see `upgrade.rs`).
    pub(super) upgraded: Option<Upgraded>,
    /// `environ['gunicorn.socket']`, offered in thread mode (see `handoff.rs`).
    pub(super) handed_socket: Option<Py<PyAny>>,
}

fn is_fatal(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py)
}

impl Response {
    /// Calls the application and prepares to drive what it returned. Errors in the call
    /// itself produce a 500 response here (the step is then `Some`).
    pub fn start(
        py: Python<'_>,
        app: &Bound<'_, PyAny>,
        environ: &Bound<'_, PyAny>,
        objects: RequestObjects,
        exchange: Exchange,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
    ) -> (Response, Option<Step>) {
        let start_response = objects.start_response.callable.bind(py).clone();
        let mut response = Response {
            result: None,
            source: Source::Exhausted,
            start_response: Some(objects.start_response),
            timeout_flag: objects.timeout_flag,
            exchange,
            known_length: None,
            framing: None,
            body_sent: 0,
            status: 0,
            overrun: false,
            stale_wait: false,
            websocket: objects.websocket,
            upgraded: None,
            handed_socket: objects.handed_socket,
        };
        let called = ctx.waits.driving(|| app.call1((environ, start_response)));
        if let Some(step) = response.taken_over(py, &called, ctx) {
            return (response, Some(step));
        }
        match called {
            Ok(result) => {
                let prepared = response.prepare(py, &result);
                response.result = Some(result.unbind());
                if let Err(err) = prepared {
                    let step = response.fail(py, ctx, out, "the application's response", err);
                    return (response, Some(step));
                }
                if let Err(step) = response.check_accepted(py, ctx, out) {
                    return (response, Some(step));
                }
                (response, None)
            }
            Err(err) => {
                let step = response.fail(py, ctx, out, "the application", err);
                (response, Some(step))
            }
        }
    }

    /// Chooses how to walk the result.
    fn prepare(&mut self, py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        let (source, known_length) = Source::of(py, result)?;
        self.source = source;
        self.known_length = known_length;
        Ok(())
    }

    /// The value of a response header the application gave (case-insensitive `name`), for
    /// the access log.
    pub fn response_header(&self, py: Python<'_>, name: &str) -> Option<String> {
        let sr = self.start_response.as_ref()?.obj.bind(py).borrow();
        let headers = sr.headers.as_ref()?.bind(py).clone();
        for item in headers.iter() {
            let Ok((n, v)) = item.extract::<(String, String)>() else {
                continue;
            };
            if n.eq_ignore_ascii_case(name) {
                return Some(v);
            }
        }
        None
    }

    /// The per-request objects, once the response is over; the iterable and everything it
    /// held are released first.
    pub fn into_objects(self) -> Spent {
        let Response {
            result,
            source,
            start_response,
            timeout_flag,
            ..
        } = self;
        drop((result, source));
        Spent {
            start_response,
            timeout_flag,
        }
    }

    /// The file to send, once the head is out.
    pub fn file(&mut self) -> Option<&mut FileSend> {
        match &mut self.source {
            Source::File(f) => Some(f),
            _ => None,
        }
    }

    pub fn body_bytes(&self) -> u64 {
        self.body_sent
    }

    /// Counts file bytes sent with sendfile.
    pub fn add_file_bytes(&mut self, n: u64) {
        self.body_sent += n;
    }

    /// Pulls and queues chunks until something must wait. Never blocks.
    pub fn drive(&mut self, py: Python<'_>, ctx: &mut Ctx<'_>, out: &mut impl Output) -> Step {
        loop {
            let mark = match self.source {
                Source::Sequence { .. } => SEQUENCE_HIGH_WATER_MARK,
                _ => HIGH_WATER_MARK,
            };
            if out.unsent() >= mark {
                return Step::Send;
            }
            // The wait the application recorded, taken right after the call that could.
            let mut wait = None;
            let chunk = match &mut self.source {
                Source::Sequence { obj, index, len } => {
                    wait = ctx.waits.take();
                    if *index < *len {
                        let item = obj.bind(py).get_item(*index);
                        *index += 1;
                        if *index == *len && wait.take().is_some() {
                            // Nothing follows the last item: no one yields this wait.
                            self.stale_wait = true;
                        }
                        Some(item)
                    } else {
                        None
                    }
                }
                Source::Iter(iter) => {
                    let next = ctx.waits.driving(|| {
                        // SAFETY: `iter` came from `try_iter`, so it is an iterator object.
                        unsafe {
                            Bound::from_owned_ptr_or_opt(py, pyo3::ffi::PyIter_Next(iter.as_ptr()))
                        }
                    });
                    wait = ctx.waits.take();
                    match next {
                        Some(item) => Some(Ok(item)),
                        None => PyErr::take(py).map(Err),
                    }
                }
                Source::File(_) => {
                    if let Err(step) = self.ensure_head(py, ctx, out) {
                        return step;
                    }
                    return Step::SendFile;
                }
                Source::Exhausted => None,
            };
            if let Err(step) = self.check_accepted(py, ctx, out) {
                return step;
            }
            if let Err(step) = self.flush_written(py, ctx, out) {
                return step;
            }
            let chunk = match chunk {
                None => {
                    // The iterable ended: a wait it recorded was never yielded.
                    self.stale_wait |= wait.is_some();
                    return self.finish(py, ctx, out);
                }
                Some(Err(err)) => return self.fail(py, ctx, out, "the response iterable", err),
                Some(Ok(chunk)) => chunk,
            };
            let bytes = match chunk.cast_into::<PyBytes>() {
                Ok(b) => b,
                Err(e) => {
                    let err = PyTypeError::new_err(format!(
                        "the response iterable must yield bytes, not {}",
                        e.into_inner()
                            .get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ));
                    return self.fail(py, ctx, out, "the response iterable", err);
                }
            };
            let sent = !bytes.as_bytes().is_empty();
            if sent && self.framing == Some(Framing::Upgraded) {
                return self.fail(
                    py,
                    ctx,
                    out,
                    "the WebSocket application",
                    yielded_on_websocket(),
                );
            }
            if sent {
                if let Err(step) = self.ensure_head(py, ctx, out) {
                    return step;
                }
                self.queue_body(&bytes, out);
            }
            if self.framing == Some(Framing::NoBody) {
                // HEAD, 204, 304: nothing more will be sent, so stop pulling.
                return self.end_body(py, ctx, out);
            }
            if let Some(wait) = wait {
                return Step::Park(wait);
            }
            if sent && matches!(self.source, Source::Iter(_)) {
                // PEP 3333: a block must be on its way before the application makes the next.
                return Step::Send;
            }
        }
    }

    /// Queues what the application gave to `write()`.
    fn flush_written(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
    ) -> Result<(), Step> {
        let written = {
            let Some(starter) = &self.start_response else {
                return Ok(());
            };
            let mut sr = starter.obj.bind(py).borrow_mut();
            if sr.written.is_empty() {
                return Ok(());
            }
            std::mem::take(&mut sr.written)
        };
        if self.framing.is_none() {
            // Bytes given to write() before the head are part of a known total length.
            if let Some(known) = &mut self.known_length {
                *known += written
                    .iter()
                    .map(|c| c.bind(py).as_bytes().len() as u64)
                    .sum::<u64>();
            }
        }
        self.ensure_head(py, ctx, out)?;
        for chunk in written {
            self.queue_body(chunk.bind(py), out);
        }
        Ok(())
    }

    fn queue_body(&mut self, bytes: &Bound<'_, PyBytes>, out: &mut impl Output) {
        let framing = self.framing.unwrap_or(Framing::NoBody);
        let data = bytes.as_bytes();
        let data = match framing {
            Framing::NoBody | Framing::Upgraded => return,
            Framing::Length { declared } => {
                let room = declared.saturating_sub(self.body_sent);
                if (data.len() as u64) > room {
                    self.overrun = true;
                    &data[..room as usize]
                } else {
                    data
                }
            }
            Framing::Chunked | Framing::UntilClose => data,
        };
        if data.is_empty() {
            return;
        }
        self.body_sent += data.len() as u64;
        let chunked = framing == Framing::Chunked;
        if data.len() <= COPY_LIMIT {
            out.write_with(|buf| {
                if chunked {
                    write_chunk(buf, data);
                } else {
                    buf.extend_from_slice(data);
                }
            });
        } else {
            if chunked {
                out.write_with(|buf| write_chunk_size(buf, data.len()));
            }
            out.push_kept(bytes, data.len());
            if chunked {
                out.push_copy(CHUNK_END);
            }
        }
    }

    /// Queues the head if it is not out yet.
    fn ensure_head(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
    ) -> Result<(), Step> {
        if self.framing.is_some() {
            return Ok(());
        }
        let (status, headers) = {
            let Some(starter) = &self.start_response else {
                return Ok(());
            };
            let sr = starter.obj.bind(py).borrow();
            match (&sr.status, &sr.headers) {
                (Some(s), Some(h)) => (s.clone_ref(py), h.clone_ref(py)),
                _ => {
                    drop(sr);
                    let err = pyo3::exceptions::PyRuntimeError::new_err(
                        "the application returned a body without calling start_response()",
                    );
                    return Err(self.fail(py, ctx, out, "the application", err));
                }
            }
        };
        let body = match (self.known_length, &self.source) {
            (Some(n), _) => BodySize::Known(n),
            (None, Source::Exhausted) => BodySize::Ended,
            (None, _) => BodySize::Streamed,
        };
        let exchange = self.exchange;
        let written = out.write_with(|buf| {
            let mark = buf.len();
            let head = write_app_head(buf, status.bind(py), headers.bind(py));
            match head {
                Ok(app) => Ok((app, finish_head(buf, &app, exchange, body, ctx.date))),
                Err(e) => {
                    buf.truncate(mark);
                    Err(e)
                }
            }
        });
        let (app, end) = match written {
            Ok(done) => done,
            Err(e) => {
                let err = pyo3::exceptions::PyValueError::new_err(e.0);
                return Err(self.fail(py, ctx, out, "the application's headers", err));
            }
        };
        self.status = app.status;
        self.exchange.keep_alive = end.keep_alive;
        if let Source::File(file) = &mut self.source {
            file.remaining = match end.framing {
                Framing::Length { declared } => file.remaining.min(declared),
                Framing::NoBody => 0,
                _ => file.remaining,
            };
        }
        self.framing = Some(end.framing);
        if let Some(starter) = &self.start_response {
            starter.obj.bind(py).borrow_mut().headers_sent = true;
        }
        Ok(())
    }

    /// The iterable is exhausted: finish the framing and call `close()`.
    fn finish(&mut self, py: Python<'_>, ctx: &mut Ctx<'_>, out: &mut impl Output) -> Step {
        self.source = Source::Exhausted;
        if let Err(step) = self.ensure_head(py, ctx, out) {
            return step;
        }
        self.end_body(py, ctx, out)
    }

    /// Completes the body after the last chunk (or the file) and closes the iterable.
    pub fn end_body(&mut self, py: Python<'_>, ctx: &mut Ctx<'_>, out: &mut impl Output) -> Step {
        self.source = Source::Exhausted;
        match self.framing {
            Some(Framing::Chunked) => out.push_copy(LAST_CHUNK),
            Some(Framing::Length { declared }) if self.body_sent < declared => {
                ctx.log.error(&format!(
                        "the application sent {} bytes of its Content-Length {}; closing the connection",
                        self.body_sent, declared
                    ),
                );
                self.exchange.keep_alive = false;
            }
            Some(Framing::UntilClose) => self.exchange.keep_alive = false,
            Some(Framing::Upgraded) => self.close_websocket(CloseCode::Normal, "", out),
            _ => {}
        }
        if self.overrun {
            ctx.log.error("the application sent more than its Content-Length; the rest was dropped and the connection closed",
            );
            self.exchange.keep_alive = false;
        }
        self.close_iterable(py, ctx);
        Step::Done {
            keep_alive: self.exchange.keep_alive,
        }
    }

    /// Handles an exception from the application: a 500 before the head went out, an
    /// aborted connection after.
    pub(super) fn fail(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
        place: &str,
        err: PyErr,
    ) -> Step {
        if is_fatal(py, &err) {
            *ctx.stop_requested = true;
        }
        if self.framing == Some(Framing::Upgraded) {
            return self.fail_websocket(py, ctx, out, place, err);
        }
        ctx.log.exception(&format!("Error in {place}"), &err);
        self.source = Source::Exhausted;
        self.close_iterable(py, ctx);
        ctx.waits.take();
        if self.framing.is_some() {
            return Step::Abort;
        }
        self.answer_by_server(500, "the application failed; see the server log", ctx, out)
    }

    /// The head has not gone out: the server answers instead (and closes).
    fn answer_by_server(
        &mut self,
        code: u16,
        detail: &str,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
    ) -> Step {
        self.status = code;
        out.write_with(|buf| write_error_response(buf, code, detail, ctx.date));
        self.framing = Some(Framing::NoBody);
        self.exchange.keep_alive = false;
        Step::Done { keep_alive: false }
    }

    /// The worker is stopping: this response must not keep its connection alive. Takes
    /// effect in the head if it has not gone out yet (`Connection: close`).
    pub fn refuse_keep_alive(&mut self) {
        self.exchange.keep_alive = false;
    }

    /// Ends a parked response because the worker is stopping: `close()` is called, a chunked
    /// body gets its last chunk, and a response whose head has not gone out becomes a 503.
    /// Its fdevent wait must already be cancelled.
    pub fn end_for_shutdown(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
    ) -> Step {
        self.exchange.keep_alive = false;
        self.source = Source::Exhausted;
        self.close_iterable(py, ctx);
        match self.framing {
            None => self.answer_by_server(503, "the server is restarting; try again", ctx, out),
            Some(Framing::Chunked) => {
                out.push_copy(LAST_CHUNK);
                Step::Done { keep_alive: false }
            }
            Some(Framing::Length { declared }) if self.body_sent < declared => Step::Abort,
            Some(Framing::Upgraded) => {
                self.close_websocket(CloseCode::GoingAway, "the server is stopping", out);
                Step::Done { keep_alive: false }
            }
            Some(_) => Step::Done { keep_alive: false },
        }
    }

    /// Calls the iterable's `close()` if it has one; at most once.
    pub fn close_iterable(&mut self, py: Python<'_>, ctx: &mut Ctx<'_>) {
        let Some(result) = self.result.take() else {
            return;
        };
        self.source = Source::Exhausted;
        let result = result.into_bound(py);
        if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
            return;
        }
        match result.getattr_opt(pyo3::intern!(py, "close")) {
            Ok(Some(close)) => {
                let r = ctx.waits.driving(|| close.call0());
                ctx.waits.take();
                if let Err(err) = r {
                    if is_fatal(py, &err) {
                        *ctx.stop_requested = true;
                    }
                    ctx.log
                        .exception("Error in the response iterable's close()", &err);
                }
            }
            Ok(None) => {}
            Err(err) => ctx.log.exception("Error looking up close()", &err),
        }
    }
}
