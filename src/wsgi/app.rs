//! The application as one thread calls it: builds a request's environ from its parsed head,
//! body and peer, calls the application, and takes back the per-request objects once the
//! response is over. Each thread that runs application code owns one `App`.

use super::environ::{EnvironBuilder, RequestParts};
use super::input::{Body, Input};
use super::output::Output;
use super::peer::{PeerCache, PeerStrings};
use super::recycle::{Recycler, RequestObjects};
use super::response::{Ctx, Response, Step};
use crate::allow::AllowList;
use crate::websocket::py::WebSocketRequest;
use evserver_http::encode::Exchange;
use evserver_http::{Head, Version};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

/// A request as the connection read it.
pub struct Request<'a> {
    /// Which listener it came in on (its environ template).
    pub listener: usize,
    pub head: &'a Head,
    /// The bytes `head`'s spans point into.
    pub head_bytes: &'a [u8],
    /// The body read in advance, and its length.
    pub body: Option<(Body, u64)>,
    pub peer: Option<SocketAddr>,
    /// The connection's peer strings, made on its first request.
    pub peer_strings: &'a mut Option<PeerStrings>,
    /// Whether the connection may stay open after this request (the client's wish, unless
    /// the server stops).
    pub keep_alive: bool,
    /// A valid WebSocket upgrade request: `environ['evserver.websocket']`.
    pub websocket: Option<WebSocketRequest>,
    /// Thread mode, on an upgrade request: a duplicate of the connection's socket and the
    /// bytes received after the request, offered as `environ['gunicorn.socket']`.
    pub handed_socket: Option<(RawFd, Vec<u8>)>,
}

/// A response that started: the application was called.
pub struct Started {
    pub response: Response,
    /// Set when the call already decided the next step (the application failed: a 500).
    pub step: Option<Step>,
    pub environ: Py<PyDict>,
}

/// The environ could not be made (memory exhausted): the server answers 500.
pub struct PrepareError(pub PyErr);

/// The application and what one thread keeps to call it cheaply.
pub struct App {
    app: Py<PyAny>,
    templates: Vec<Py<PyDict>>,
    environ: EnvironBuilder,
    recycler: Recycler,
    peers: PeerCache,
    empty_input: Py<Input>,
    /// `--forwarded-allow-ips`: whose `X-Forwarded-*` fields count.
    forwarded: Arc<AllowList>,
}

impl App {
    pub fn new(
        py: Python<'_>,
        app: Py<PyAny>,
        templates: Vec<Py<PyDict>>,
        forwarded: Arc<AllowList>,
    ) -> PyResult<App> {
        Ok(App {
            app,
            templates,
            forwarded,
            environ: EnvironBuilder::default(),
            recycler: Recycler::default(),
            peers: PeerCache::default(),
            empty_input: Py::new(py, Input::empty())?,
        })
    }

    /// Builds the environ and calls the application; its first bytes (or its 500) go to
    /// `out`.
    pub fn start(
        &mut self,
        py: Python<'_>,
        request: Request<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut impl Output,
    ) -> Result<Started, PrepareError> {
        let head = request.head;
        let exchange = Exchange {
            version: head.version.unwrap_or(Version::Http11),
            is_head: head.method.of(request.head_bytes) == b"HEAD",
            keep_alive: request.keep_alive,
        };
        let mut objects = self.recycler.objects(py).map_err(PrepareError)?;
        let environ = self
            .build_environ(py, request, &mut objects)
            .map_err(PrepareError)?;
        let (response, step) = Response::start(
            py,
            self.app.bind(py),
            environ.as_any(),
            objects,
            exchange,
            ctx,
            out,
        );
        Ok(Started {
            response,
            step,
            environ: environ.unbind(),
        })
    }

    fn build_environ<'py>(
        &mut self,
        py: Python<'py>,
        request: Request<'_>,
        objects: &mut RequestObjects,
    ) -> PyResult<Bound<'py, PyDict>> {
        let timeout_flag = &objects.timeout_flag;
        let (input, body_length) = match request.body {
            Some((body, length)) => (Py::new(py, Input::new(body))?, Some(length)),
            None => (self.empty_input.clone_ref(py), None),
        };
        let (remote_addr, remote_port, trusted) =
            self.peers
                .strings(py, request.peer, &self.forwarded, request.peer_strings);
        let environ = self.templates[request.listener].bind(py).copy()?;
        environ.set_item(pyo3::intern!(py, "wsgi.input"), input)?;
        environ.set_item(pyo3::intern!(py, "x-wsgiorg.fdevent.timeout"), timeout_flag)?;
        environ.set_item(pyo3::intern!(py, "x-evserver.fdevent.ready"), timeout_flag)?;
        if let Some(websocket) = request.websocket {
            let websocket = Py::new(py, websocket)?;
            environ.set_item(pyo3::intern!(py, "evserver.websocket"), &websocket)?;
            objects.websocket = Some(websocket);
        }
        if let Some((fd, received)) = request.handed_socket {
            objects.handed_socket = Some(super::handoff::offer(py, &environ, fd, &received)?);
        }
        self.environ.fill(
            &environ,
            &RequestParts {
                buf: request.head_bytes,
                head: request.head,
                remote_addr: &remote_addr,
                remote_port: &remote_port,
                body_length,
                forwarded: trusted.then_some(&*self.forwarded),
            },
        )?;
        Ok(environ)
    }

    /// Takes back the per-request objects of a finished response for the next request.
    pub fn recycle(&mut self, py: Python<'_>, response: Response) {
        self.recycler.recycle(py, response.into_objects());
    }
}
