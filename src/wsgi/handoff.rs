//! Thread mode: a WebSocket upgrade request offers the connection's socket in
//! `environ['gunicorn.socket']` (where simple-websocket, and so Flask-Sock, looks for it); an
//! application that used it took the connection over, and its call's outcome is not answered.

use super::response::{Ctx, Response, Step};
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::os::fd::RawFd;

/// The environ key simple-websocket looks for (as under gunicorn).
pub const ENVIRON_KEY: &str = "gunicorn.socket";

/// Puts `environ['gunicorn.socket']` over `fd` (a duplicate of the connection's socket, which
/// the Python socket object owns from here on) with the bytes received after the request.
pub fn offer(
    py: Python<'_>,
    environ: &Bound<'_, PyDict>,
    fd: RawFd,
    received: &[u8],
) -> PyResult<Py<PyAny>> {
    let make = py
        .import(pyo3::intern!(py, "evserver._handoff"))?
        .getattr(pyo3::intern!(py, "handed_socket"))?;
    let socket = match make.call1((fd, pyo3::types::PyBytes::new(py, received))) {
        Ok(socket) => socket,
        Err(err) => {
            evserver_platform::sys::close(fd);
            return Err(err);
        }
    };
    environ.set_item(ENVIRON_KEY, &socket)?;
    Ok(socket.unbind())
}

impl Response {
    /// Right after the application call: if it used the offered socket, the connection is
    /// its own (the library answered the client); the server sends nothing, calls the
    /// result's `close()`, and logs an exception other than `StopIteration` (which Flask-Sock
    /// raises to say so, as gunicorn expects). An offer left unused is closed.
    pub(super) fn taken_over(
        &mut self,
        py: Python<'_>,
        called: &PyResult<Bound<'_, PyAny>>,
        ctx: &mut Ctx<'_>,
    ) -> Option<Step> {
        let socket = self.handed_socket.take()?.into_bound(py);
        let taken = socket
            .getattr(pyo3::intern!(py, "taken"))
            .and_then(|t| t.is_truthy())
            .unwrap_or(false);
        if !taken {
            if let Err(err) = socket.call_method0(pyo3::intern!(py, "close")) {
                ctx.log
                    .exception("cannot close the unused gunicorn.socket", &err);
            }
            return None;
        }
        self.status = 101;
        match called {
            Ok(result) => self.result = Some(result.clone().unbind()),
            Err(err) if err.is_instance_of::<PyStopIteration>(py) => {}
            Err(err) => ctx.log.exception(
                "Error in the application (after it took the connection over)",
                err,
            ),
        }
        self.close_iterable(py, ctx);
        Some(Step::TakenOver)
    }
}
