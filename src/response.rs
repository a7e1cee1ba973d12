//! Drives one WSGI response: pulls chunks from the application's iterable while the send queue
//! is under its high-water mark, frames them (Content-Length, chunked or close-delimited),
//! parks on fdevent waits, sends files with sendfile, and calls `close()` exactly once.

use crate::fdwait::InFlight;
use crate::outq::OutQueue;
use crate::pylog::Log;
use crate::wsgi::fdevent::{PendingWait, TimeoutFlag, WaitSlot};
use crate::wsgi::file_wrapper::FileWrapper;
use crate::wsgi::head::write_app_head;
use crate::wsgi::start_response::Starter;
use evserver_http::response::{response_has_body, write_error_response};
use evserver_http::Version;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::os::fd::RawFd;

/// Pull the next chunk only while less than this is waiting to be sent.
pub const HIGH_WATER_MARK: usize = 64 * 1024;
/// The same for a list or tuple: its items are in memory already and large ones are sent in
/// place, so queueing more costs little and lets one gathered send carry many items.
const SEQUENCE_HIGH_WATER_MARK: usize = 4 * 1024 * 1024;
/// Chunks up to this size are copied into the send buffer; larger ones are sent in place.
const COPY_LIMIT: usize = 4096;

/// Keeps a borrowed chunk alive until it is sent.
pub type Keep = Py<PyAny>;

/// Where the body comes from.
enum Source {
    /// A list or tuple: items by index, total length known.
    Sequence {
        obj: Py<PyAny>,
        index: usize,
        len: usize,
    },
    /// Any other iterable.
    Iter(Py<PyAny>),
    /// A `wsgi.file_wrapper` over a regular file: sent with sendfile.
    File(FileSend),
    Exhausted,
}

/// A file being sent with sendfile.
pub struct FileSend {
    pub fd: RawFd,
    pub offset: i64,
    pub remaining: u64,
}

/// How the body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    NoBody,
    Length { declared: u64 },
    Chunked,
    UntilClose,
}

/// What the connection must do next for this response.
pub enum Step {
    /// Start a send (if none is in flight) and submit it, then drive again.
    Flush,
    /// Park until the application's fd is ready or the wait times out.
    Park(PendingWait),
    /// Wait until the send queue drains below the high-water mark.
    AwaitSend,
    /// Send `file` with sendfile once the queue is empty.
    SendFile,
    /// The response is complete and `close()` was called.
    Done { keep_alive: bool },
    /// The response failed after its head went out: close the connection. `close()` was called.
    Abort,
}

/// Everything about the request a response needs.
pub struct RequestInfo {
    pub version: Version,
    pub is_head: bool,
    pub keep_alive: bool,
}

/// Shared per-worker things a response uses while it runs.
pub struct Ctx<'a> {
    pub log: &'a Log,
    pub wait_slot: &'a WaitSlot,
    pub date: &'a [u8],
    /// Set when the application raised KeyboardInterrupt or SystemExit.
    pub stop_requested: &'a mut bool,
}

/// One response in progress.
pub struct Response {
    result: Option<Py<PyAny>>,
    source: Source,
    start_response: Starter,
    pub timeout_flag: Py<TimeoutFlag>,
    request: RequestInfo,
    known_length: Option<u64>,
    framing: Option<Framing>,
    body_sent: u64,
    pub status: u16,
    /// Body bytes beyond the application's Content-Length were dropped.
    overrun: bool,
    /// The fdevent wait in flight while the request is parked.
    pub parked: Option<InFlight>,
    /// What the access log needs of the request, when the access log is on.
    pub access: Option<Box<AccessRecord>>,
}

/// The request's side of an access-log line, captured when the request arrived.
pub struct AccessRecord {
    pub captured: Vec<String>,
    pub started: std::time::Instant,
    /// Kept when the format reads environ values.
    pub environ: Option<Py<pyo3::types::PyDict>>,
}

fn is_fatal(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py)
}

impl Response {
    /// Calls the application and prepares to drive what it returned. Errors in the call
    /// itself produce a 500 response here.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        py: Python<'_>,
        app: &Bound<'_, PyAny>,
        environ: &Bound<'_, PyAny>,
        start_response: Starter,
        timeout_flag: Py<TimeoutFlag>,
        request: RequestInfo,
        ctx: &mut Ctx<'_>,
        out: &mut OutQueue<Keep>,
    ) -> (Response, Option<Step>) {
        let mut response = Response {
            result: None,
            source: Source::Exhausted,
            start_response,
            timeout_flag,
            request,
            known_length: None,
            framing: None,
            body_sent: 0,
            status: 0,
            overrun: false,
            parked: None,
            access: None,
        };
        ctx.wait_slot.set_driving(true);
        let called = app.call1((environ, response.start_response.callable.bind(py)));
        ctx.wait_slot.set_driving(false);
        match called {
            Ok(result) => {
                if let Err(err) = response.prepare(py, &result) {
                    response.result = Some(result.unbind());
                    let step = response.fail(py, ctx, out, "the application's response", err);
                    return (response, Some(step));
                }
                response.result = Some(result.unbind());
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
        if let Ok(list) = result.cast_exact::<PyList>() {
            self.known_length = sequence_length(list.iter());
            self.source = Source::Sequence {
                obj: result.clone().unbind(),
                index: 0,
                len: list.len(),
            };
        } else if let Ok(tuple) = result.cast_exact::<PyTuple>() {
            self.known_length = sequence_length(tuple.iter());
            self.source = Source::Sequence {
                obj: result.clone().unbind(),
                index: 0,
                len: tuple.len(),
            };
        } else if let Ok(wrapper) = result.cast::<FileWrapper>() {
            match file_to_send(py, &wrapper.borrow().filelike.bind(py).clone()) {
                Some(file) => {
                    self.known_length = Some(file.remaining);
                    self.source = Source::File(file);
                }
                None => self.source = Source::Iter(result.try_iter()?.into_any().unbind()),
            }
        } else {
            self.source = Source::Iter(result.try_iter()?.into_any().unbind());
        }
        Ok(())
    }

    /// The value of a response header the application gave (case-insensitive `name`), for
    /// the access log.
    pub fn response_header(&self, py: Python<'_>, name: &str) -> Option<String> {
        let sr = self.start_response.obj.bind(py).borrow();
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
    pub fn into_parts(self) -> (Starter, Py<TimeoutFlag>) {
        let Response {
            result,
            source,
            start_response,
            timeout_flag,
            ..
        } = self;
        drop((result, source));
        (start_response, timeout_flag)
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
    pub fn drive(&mut self, py: Python<'_>, ctx: &mut Ctx<'_>, out: &mut OutQueue<Keep>) -> Step {
        loop {
            let mark = match self.source {
                Source::Sequence { .. } => SEQUENCE_HIGH_WATER_MARK,
                _ => HIGH_WATER_MARK,
            };
            if out.unsent() >= mark {
                return Step::AwaitSend;
            }
            let chunk = match &mut self.source {
                Source::Sequence { obj, index, len } => {
                    if *index < *len {
                        let item = obj.bind(py).get_item(*index);
                        *index += 1;
                        Some(item)
                    } else {
                        None
                    }
                }
                Source::Iter(iter) => {
                    ctx.wait_slot.set_driving(true);
                    // SAFETY: `iter` came from `try_iter`, so it is an iterator object.
                    let next = unsafe {
                        Bound::from_owned_ptr_or_opt(py, pyo3::ffi::PyIter_Next(iter.as_ptr()))
                    };
                    ctx.wait_slot.set_driving(false);
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
            if let Err(step) = self.flush_written(py, ctx, out) {
                return step;
            }
            let chunk = match chunk {
                None => return self.finish(py, ctx, out),
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
            let data = bytes.as_bytes();
            if !data.is_empty() {
                if let Err(step) = self.ensure_head(py, ctx, out) {
                    return step;
                }
                self.queue_body(bytes.as_any(), data, out);
            }
            if self.framing == Some(Framing::NoBody) {
                // HEAD, 204, 304: nothing more will be sent, so stop pulling.
                return self.end_body(py, ctx, out);
            }
            if let Some(wait) = ctx.wait_slot.take() {
                return Step::Park(wait);
            }
            if !data.is_empty() && matches!(self.source, Source::Iter(_)) && !out.in_flight() {
                // PEP 3333: a block must be on its way before the application makes the next.
                return Step::Flush;
            }
        }
    }

    /// Queues what the application gave to `write()`.
    fn flush_written(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut OutQueue<Keep>,
    ) -> Result<(), Step> {
        let written = {
            let mut sr = self.start_response.obj.bind(py).borrow_mut();
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
            let chunk = chunk.into_bound(py);
            self.queue_body(chunk.as_any(), chunk.as_bytes(), out);
        }
        Ok(())
    }

    fn queue_body(&mut self, keep: &Bound<'_, PyAny>, data: &[u8], out: &mut OutQueue<Keep>) {
        let framing = self.framing.unwrap_or(Framing::NoBody);
        let data = match framing {
            Framing::NoBody => return,
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
            let mut w = out.copy_buffer();
            let buf = w.buf();
            if chunked {
                write_chunk_size(buf, data.len());
            }
            buf.extend_from_slice(data);
            if chunked {
                buf.extend_from_slice(b"\r\n");
            }
        } else {
            if chunked {
                let mut w = out.copy_buffer();
                write_chunk_size(w.buf(), data.len());
            }
            out.push_borrowed(keep.clone().unbind(), data.as_ptr(), data.len());
            if chunked {
                out.push_copy(b"\r\n");
            }
        }
    }

    /// Sends the head if it is not out yet.
    fn ensure_head(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut OutQueue<Keep>,
    ) -> Result<(), Step> {
        if self.framing.is_some() {
            return Ok(());
        }
        let (status, headers) = {
            let sr = self.start_response.obj.bind(py).borrow();
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
        let mut w = out.copy_buffer();
        let buf = w.buf();
        let mark = buf.len();
        let app = match write_app_head(buf, status.bind(py), headers.bind(py)) {
            Ok(app) => app,
            Err(e) => {
                buf.truncate(mark);
                drop(w);
                let err = pyo3::exceptions::PyValueError::new_err(e.0);
                return Err(self.fail(py, ctx, out, "the application's headers", err));
            }
        };
        self.status = app.status;
        if app.close {
            self.request.keep_alive = false;
        }
        let has_body = response_has_body(self.request.is_head, app.status);
        let framing = match (app.content_length, self.known_length) {
            (Some(n), _) => Framing::Length { declared: n },
            (None, Some(n)) => {
                if app.status >= 200 && app.status != 204 {
                    write_length(buf, n);
                }
                Framing::Length { declared: n }
            }
            (None, None) if !has_body => Framing::NoBody,
            (None, None) if matches!(self.source, Source::Exhausted) => {
                // The iterable ended before any body: an empty body of known length.
                if app.status >= 200 && app.status != 204 {
                    write_length(buf, 0);
                }
                Framing::Length { declared: 0 }
            }
            (None, None) if self.request.version == Version::Http11 => {
                buf.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                Framing::Chunked
            }
            (None, None) => {
                self.request.keep_alive = false;
                Framing::UntilClose
            }
        };
        let framing = if has_body { framing } else { Framing::NoBody };
        if let Source::File(file) = &mut self.source {
            file.remaining = match framing {
                Framing::Length { declared } => file.remaining.min(declared),
                Framing::NoBody => 0,
                _ => file.remaining,
            };
        }
        if !app.has_date {
            buf.extend_from_slice(b"Date: ");
            buf.extend_from_slice(ctx.date);
            buf.extend_from_slice(b"\r\n");
        }
        if !app.has_server {
            buf.extend_from_slice(b"Server: evserver\r\n");
        }
        if !self.request.keep_alive {
            buf.extend_from_slice(b"Connection: close\r\n");
        } else if self.request.version == Version::Http10 {
            buf.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        buf.extend_from_slice(b"\r\n");
        drop(w);
        self.framing = Some(framing);
        self.start_response.obj.bind(py).borrow_mut().headers_sent = true;
        Ok(())
    }

    /// The iterable is exhausted: finish the framing and call `close()`.
    fn finish(&mut self, py: Python<'_>, ctx: &mut Ctx<'_>, out: &mut OutQueue<Keep>) -> Step {
        self.source = Source::Exhausted;
        if let Err(step) = self.ensure_head(py, ctx, out) {
            return step;
        }
        self.end_body(py, ctx, out)
    }

    /// Completes the body after the last chunk (or the file) and closes the iterable.
    pub fn end_body(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut OutQueue<Keep>,
    ) -> Step {
        self.source = Source::Exhausted;
        match self.framing {
            Some(Framing::Chunked) => out.push_copy(b"0\r\n\r\n"),
            Some(Framing::Length { declared }) if self.body_sent < declared => {
                ctx.log.error(
                    py,
                    &format!(
                        "the application sent {} bytes of its Content-Length {}; closing the connection",
                        self.body_sent, declared
                    ),
                );
                self.request.keep_alive = false;
            }
            Some(Framing::UntilClose) => self.request.keep_alive = false,
            _ => {}
        }
        if self.overrun {
            ctx.log.error(
                py,
                "the application sent more than its Content-Length; the rest was dropped and the connection closed",
            );
            self.request.keep_alive = false;
        }
        self.close_iterable(py, ctx);
        Step::Done {
            keep_alive: self.request.keep_alive,
        }
    }

    /// Handles an exception from the application: a 500 before the head went out, an
    /// aborted connection after.
    fn fail(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut OutQueue<Keep>,
        place: &str,
        err: PyErr,
    ) -> Step {
        if is_fatal(py, &err) {
            *ctx.stop_requested = true;
        }
        ctx.log.exception(py, &format!("Error in {place}"), &err);
        self.source = Source::Exhausted;
        self.close_iterable(py, ctx);
        ctx.wait_slot.take();
        if self.framing.is_some() {
            return Step::Abort;
        }
        self.status = 500;
        let mut w = out.copy_buffer();
        write_error_response(
            w.buf(),
            500,
            "Internal Server Error",
            "the application failed; see the server log",
            ctx.date,
        );
        drop(w);
        self.framing = Some(Framing::NoBody);
        self.request.keep_alive = false;
        Step::Done { keep_alive: false }
    }

    /// The worker is stopping: this response must not keep its connection alive. Takes
    /// effect in the head if it has not gone out yet (`Connection: close`).
    pub fn refuse_keep_alive(&mut self) {
        self.request.keep_alive = false;
    }

    /// Ends a parked response because the worker is stopping: `close()` is called, a chunked
    /// body gets its last chunk, and a response whose head has not gone out becomes a 503.
    /// Its fdevent wait must already be cancelled.
    pub fn end_for_shutdown(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut OutQueue<Keep>,
    ) -> Step {
        self.parked = None;
        self.request.keep_alive = false;
        self.source = Source::Exhausted;
        self.close_iterable(py, ctx);
        ctx.wait_slot.take();
        match self.framing {
            None => {
                self.status = 503;
                let mut w = out.copy_buffer();
                write_error_response(
                    w.buf(),
                    503,
                    "Service Unavailable",
                    "the server is restarting; try again",
                    ctx.date,
                );
                drop(w);
                self.framing = Some(Framing::NoBody);
                Step::Done { keep_alive: false }
            }
            Some(Framing::Chunked) => {
                out.push_copy(b"0\r\n\r\n");
                Step::Done { keep_alive: false }
            }
            Some(Framing::Length { declared }) if self.body_sent < declared => Step::Abort,
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
                ctx.wait_slot.set_driving(true);
                let r = close.call0();
                ctx.wait_slot.set_driving(false);
                ctx.wait_slot.take();
                if let Err(err) = r {
                    if is_fatal(py, &err) {
                        *ctx.stop_requested = true;
                    }
                    ctx.log
                        .exception(py, "Error in the response iterable's close()", &err);
                }
            }
            Ok(None) => {}
            Err(err) => ctx.log.exception(py, "Error looking up close()", &err),
        }
    }
}

/// The total length of a list or tuple of bytes, if every item is bytes.
fn sequence_length<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>) -> Option<u64> {
    let mut total = 0u64;
    for item in items {
        total += item.cast::<PyBytes>().ok()?.as_bytes().len() as u64;
    }
    Some(total)
}

/// A regular file behind a file-like object, from its current position to its end.
fn file_to_send(py: Python<'_>, filelike: &Bound<'_, PyAny>) -> Option<FileSend> {
    let fd: RawFd = filelike
        .call_method0(pyo3::intern!(py, "fileno"))
        .ok()?
        .extract()
        .ok()?;
    // SAFETY: fstat/lseek on an fd the application gave us; failures are reported as errors
    // and we fall back to reading the file through Python.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            return None;
        }
        let offset = match filelike.call_method0(pyo3::intern!(py, "tell")) {
            Ok(pos) => pos.extract::<i64>().ok()?,
            Err(_) => libc::lseek(fd, 0, libc::SEEK_CUR) as i64,
        };
        if offset < 0 {
            return None;
        }
        let size = st.st_size as i64;
        Some(FileSend {
            fd,
            offset,
            remaining: size.saturating_sub(offset).max(0) as u64,
        })
    }
}

fn write_chunk_size(buf: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xF];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
    buf.extend_from_slice(b"\r\n");
}

fn write_length(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(b"Content-Length: ");
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::write_chunk_size;

    #[test]
    fn chunk_sizes_are_lowercase_hex_lines() {
        let mut b = Vec::new();
        write_chunk_size(&mut b, 0);
        write_chunk_size(&mut b, 255);
        write_chunk_size(&mut b, 4096);
        assert_eq!(b, b"0\r\nff\r\n1000\r\n");
    }
}
