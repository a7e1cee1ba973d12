//! A response that became a WebSocket conversation: after each call into the application an
//! accepted upgrade puts the `101` head out, and the conversation's end queues the close frame
//! (1000 when the iterable ends, 1011 when it fails, 1001 when the server stops).

use super::output::Output;
use super::response::{Ctx, Response, Step};
use crate::websocket::shared::WsShared;
use evserver_http::encode::{write_switching_protocols, Framing};
use evserver_ws::{CloseCode, DeflateConfig};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::Arc;

/// Room for a typical `101` head.
const HEAD_SIZE: usize = 256;

/// The WebSocket a response switched to.
pub struct Upgraded {
    shared: Arc<WsShared>,
    deflate: Option<DeflateConfig>,
    max_message: usize,
    /// The loop took it over.
    adopted: bool,
}

/// What the loop needs to take a WebSocket connection over.
pub struct Takeover {
    pub shared: Arc<WsShared>,
    pub deflate: Option<DeflateConfig>,
    pub max_message: usize,
}

/// The error for bytes yielded after `accept()`.
pub fn yielded_on_websocket() -> PyErr {
    PyRuntimeError::new_err(
        "a WebSocket application yielded bytes after accept(): send messages with ws.send()",
    )
}

/// Whether `err` is `evserver.websocket.ConnectionClosed`: the peer closed, which ends a
/// conversation normally.
fn is_connection_closed(py: Python<'_>, err: &PyErr) -> bool {
    py.import("evserver.websocket")
        .and_then(|m| m.getattr("ConnectionClosed"))
        .is_ok_and(|cls| err.get_type(py).is_subclass(&cls).unwrap_or(false))
}

impl Response {
    /// After a call into the application: if it accepted the WebSocket, queues the `101` and
    /// switches the response to [`Framing::Upgraded`].
    pub(super) fn check_accepted(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
    ) -> Result<(), Step> {
        let Some(request) = &self.websocket else {
            return Ok(());
        };
        let Some(accepted) = request.get().take_accepted() else {
            return Ok(());
        };
        let started = (self.start_response.as_ref())
            .is_some_and(|starter| starter.obj.bind(py).borrow().status.is_some());
        if self.framing.is_some() || started {
            let err = PyRuntimeError::new_err(
                "accept() after start_response(): a WebSocket answers 101 by itself",
            );
            return Err(self.fail(py, ctx, out, "the application", err));
        }
        let headers: Vec<(&str, &str)> = accepted
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // In a buffer of its own, the size of the head, rather than the send queue's first
        // kilobyte: given back once sent, it leaves no gap among what the conversation keeps.
        let mut head = Vec::with_capacity(HEAD_SIZE);
        write_switching_protocols(&mut head, &headers, ctx.date);
        out.push_owned(head);
        self.status = 101;
        self.framing = Some(Framing::Upgraded);
        self.exchange.keep_alive = false;
        // A later call (the application kept start_response) raises as after any head; the
        // response lets go of it: nothing it records matters any more.
        if let Some(starter) = self.start_response.take() {
            starter.obj.bind(py).borrow_mut().headers_sent = true;
        }
        self.upgraded = Some(Upgraded {
            shared: accepted.shared,
            deflate: accepted.deflate,
            max_message: accepted.max_message,
            adopted: false,
        });
        Ok(())
    }

    /// For the loop, once: the WebSocket this response switched to.
    pub fn take_upgrade(&mut self) -> Option<Takeover> {
        let up = self.upgraded.as_mut().filter(|up| !up.adopted)?;
        up.adopted = true;
        Some(Takeover {
            shared: up.shared.clone(),
            deflate: up.deflate,
            max_message: up.max_message,
        })
    }

    /// Queues what the WebSocket's outbox holds, then its close frame unless one went already.
    pub(super) fn close_websocket(&mut self, code: CloseCode, reason: &str, out: &mut impl Output) {
        if let Some(up) = &self.upgraded {
            out.write_with(|buf| up.shared.close_into(code, reason, buf));
        }
    }

    /// The conversation raised: `ConnectionClosed` (the peer closed) ends it normally; any
    /// other exception is logged and closes with 1011.
    pub(super) fn fail_websocket(
        &mut self,
        py: Python<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
        place: &str,
        err: PyErr,
    ) -> Step {
        if is_connection_closed(py, &err) {
            self.close_websocket(CloseCode::Normal, "", out);
        } else {
            ctx.log.exception(&format!("Error in {place}"), &err);
            self.close_websocket(CloseCode::InternalError, "the application failed", out);
        }
        self.close_iterable(py, ctx);
        ctx.waits.take();
        Step::Done { keep_alive: false }
    }
}
