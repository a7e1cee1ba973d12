//! The Python objects: `environ['evserver.websocket']` (an upgrade request the application may
//! accept) and the WebSocket `accept()` returns.

use super::hub::{ConnId, Hub};
use super::shared::{Closed, Message, SendError, WsShared};
use super::WsSettings;
use evserver_http::encode::{valid_header_name, valid_header_value};
use evserver_ws::{CloseCode, DeflateConfig, Upgrade};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// What `accept()` decided, for the response driver (the `101` head) and the loop (the
/// reader's settings).
pub struct Accepted {
    pub shared: Arc<WsShared>,
    pub headers: Vec<(String, String)>,
    pub deflate: Option<DeflateConfig>,
    pub max_message: usize,
}

/// What `accept()` needs, until it is called.
struct Open {
    upgrade: Upgrade,
    hub: Arc<Hub>,
    id: ConnId,
    settings: WsSettings,
}

/// Where the upgrade stands. Both payloads are boxed and dropped once used: the object lives
/// as long as the environ, the whole conversation, and should not keep them.
enum Offer {
    Open(Box<Open>),
    Accepted(Box<Accepted>),
    /// The driver wrote the `101`.
    Taken,
}

/// `environ['evserver.websocket']`, present only on a valid upgrade request.
#[pyclass(module = "evserver", name = "WebSocketRequest", frozen)]
pub struct WebSocketRequest {
    /// The subprotocols the client offered, in its order.
    protocols: Vec<String>,
    /// Written by `accept` (on the thread running the application), taken by the driver on
    /// that same thread right after the application's step: the mutex only makes the frozen
    /// object `Sync`, it is never contended.
    offer: Mutex<Offer>,
}

impl WebSocketRequest {
    pub fn new(mut upgrade: Upgrade, hub: Arc<Hub>, id: ConnId, settings: WsSettings) -> Self {
        WebSocketRequest {
            protocols: std::mem::take(&mut upgrade.protocols),
            offer: Mutex::new(Offer::Open(Box::new(Open {
                upgrade,
                hub,
                id,
                settings,
            }))),
        }
    }

    /// What `accept()` decided, once: the driver writes the `101` from it.
    pub fn take_accepted(&self) -> Option<Accepted> {
        let mut offer = self.offer.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *offer, Offer::Taken) {
            Offer::Accepted(a) => Some(*a),
            other => {
                *offer = other;
                None
            }
        }
    }
}

#[pymethods]
impl WebSocketRequest {
    /// The subprotocols the client offered, in its order.
    #[getter]
    fn protocols(&self) -> Vec<String> {
        self.protocols.clone()
    }

    /// Accepts the upgrade: the server answers `101 Switching Protocols` (with `subprotocol`,
    /// which must be one the client offered, and the extra `headers`) and the returned
    /// WebSocket is open.
    #[pyo3(signature = (subprotocol = None, headers = Vec::new()))]
    fn accept(
        &self,
        subprotocol: Option<String>,
        headers: Vec<(String, String)>,
    ) -> PyResult<WebSocket> {
        if let Some(p) = &subprotocol {
            if !self.protocols.contains(p) {
                return Err(PyValueError::new_err(format!(
                    "the client did not offer the subprotocol {p:?} (it offered {:?})",
                    self.protocols
                )));
            }
        }
        for (name, value) in &headers {
            if !valid_header_name(name.as_bytes()) || !valid_header_value(value.as_bytes()) {
                return Err(PyValueError::new_err(format!(
                    "invalid header for the 101 response: {name:?}: {value:?}"
                )));
            }
        }
        let mut offer = self.offer.lock().unwrap_or_else(|e| e.into_inner());
        let Offer::Open(open) = &*offer else {
            return Err(PyRuntimeError::new_err(
                "this WebSocket was accepted already",
            ));
        };
        let deflate = open.upgrade.deflate.as_ref().map(|(config, _)| *config);
        let shared = Arc::new(WsShared::new(
            open.hub.clone(),
            open.id,
            deflate.as_ref(),
            open.settings.max_queue,
        )?);
        let mut all: Vec<(String, String)> = open
            .upgrade
            .response_headers(subprotocol.as_deref())
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        all.extend(headers);
        let max_message = open.settings.max_message;
        *offer = Offer::Accepted(Box::new(Accepted {
            shared: shared.clone(),
            headers: all,
            deflate,
            max_message,
        }));
        Ok(WebSocket {
            shared,
            subprotocol,
        })
    }
}

/// An open WebSocket.
#[pyclass(module = "evserver", name = "WebSocket", frozen)]
pub struct WebSocket {
    shared: Arc<WsShared>,
    subprotocol: Option<String>,
}

/// `evserver.websocket.broadcast(websockets, message)`: queues one message on every open
/// WebSocket of `websockets` (an iterable) and answers on how many. Closed ones, and clients
/// too far behind (`--websocket-max-queue`, which fails them as `send` does), are skipped
/// without an error. One call instead of a `send` per WebSocket: the interpreter is released
/// while the frames are queued.
#[pyfunction]
pub fn broadcast(
    py: Python<'_>,
    websockets: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let (text, payload) = message_of(message, "broadcast() sends")?;
    let mut targets = Vec::with_capacity(websockets.len().unwrap_or(0));
    for item in websockets.try_iter()? {
        let item = item?;
        let ws = item.cast::<WebSocket>().map_err(|_| {
            PyTypeError::new_err(format!(
                "broadcast() sends to WebSockets, not {}",
                item.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        targets.push(ws.get().shared.clone());
    }
    Ok(py.detach(|| WsShared::send_to_all(&targets, text, &payload)))
}

/// A message to send: text for `str`, binary for bytes-like data; `what` starts the error
/// for anything else ("send() takes").
fn message_of<'a>(data: &'a Bound<'_, PyAny>, what: &str) -> PyResult<(bool, Cow<'a, [u8]>)> {
    if let Ok(text) = data.cast::<PyString>() {
        Ok((true, Cow::Borrowed(text.to_str()?.as_bytes())))
    } else if let Ok(bytes) = data.cast::<PyBytes>() {
        Ok((false, Cow::Borrowed(bytes.as_bytes())))
    } else if let Ok(buffer) = data.extract::<Vec<u8>>() {
        Ok((false, Cow::Owned(buffer)))
    } else {
        Err(PyTypeError::new_err(format!(
            "{what} str or bytes, not {}",
            data.get_type().name()?
        )))
    }
}

/// `evserver.websocket.ConnectionClosed(code, reason)`.
fn connection_closed(py: Python<'_>, closed: Closed) -> PyErr {
    let made = py
        .import("evserver.websocket")
        .and_then(|m| m.getattr("ConnectionClosed"))
        .and_then(|cls| cls.call1((closed.code, closed.reason)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

#[pymethods]
impl WebSocket {
    /// The next whole message (`str` for text, `bytes` for binary), or `None` if none is
    /// waiting; raises `ConnectionClosed` once the peer closed and every message before the
    /// close was taken.
    fn receive(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.shared.receive() {
            Ok(Some(Message::Text(t))) => Ok(Some(PyString::new(py, &t).into_any().unbind())),
            Ok(Some(Message::Binary(b))) => Ok(Some(PyBytes::new(py, &b).into_any().unbind())),
            Ok(None) => Ok(None),
            Err(closed) => Err(connection_closed(py, closed)),
        }
    }

    /// Queues a message: text for `str`, binary for bytes-like data. Never waits; any thread
    /// of the worker may call it.
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let (text, payload) = message_of(data, "send() takes")?;
        self.shared
            .send(text, &payload)
            .map_err(|SendError(closed)| connection_closed(py, closed))
    }

    /// Sends a ping (the server answers the client's pings itself).
    #[pyo3(signature = (data = Vec::new()))]
    fn ping(&self, py: Python<'_>, data: Vec<u8>) -> PyResult<()> {
        if data.len() > 125 {
            return Err(PyValueError::new_err("a ping carries at most 125 bytes"));
        }
        self.shared
            .ping(&data)
            .map_err(|SendError(closed)| connection_closed(py, closed))
    }

    /// Starts the closing handshake with `code` and `reason`.
    #[pyo3(signature = (code = 1000, reason = String::new()))]
    fn close(&self, code: u16, reason: String) -> PyResult<()> {
        if !(code == 1000
            || (3000..=4999).contains(&code)
            || evserver_ws::close::valid_on_the_wire(code))
        {
            return Err(PyValueError::new_err(format!(
                "{code} is not a close code one may send"
            )));
        }
        self.shared.close(CloseCode::Other(code), &reason);
        Ok(())
    }

    /// The fd to wait on (`x-wsgiorg.fdevent.readable`): readable while a message or the close
    /// waits.
    fn fileno(&self) -> i32 {
        self.shared.inbox_fd()
    }

    /// Whether the conversation is closing or closed.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Bytes sent that the client has not taken yet (the browser's `bufferedAmount`).
    #[getter]
    fn buffered_amount(&self) -> usize {
        self.shared.buffered()
    }

    /// The subprotocol accepted, if any.
    #[getter]
    fn subprotocol(&self) -> Option<String> {
        self.subprotocol.clone()
    }
}
