//! The environ template of one listener: the keys every request on it shares (WSGI version,
//! scheme, streams, the fdevent callables, server name and port), copied for each request.

use super::environ::add_request_placeholders;
use super::fdevent::{FdeventSelect, FdeventWait};
use super::file_wrapper::FileWrapper;
use evserver_platform::Interest;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What the environ needs to know of a listener.
pub struct ListenerInfo {
    pub server_name: String,
    pub server_port: String,
}

/// What every environ of this worker shares.
pub struct Shared {
    pub multiprocess: bool,
    pub multithread: bool,
    /// The listeners speak TLS: `wsgi.url_scheme` is https and `HTTPS` is on.
    pub tls: bool,
}

/// Builds the template of each listener (in order).
pub fn templates(
    py: Python<'_>,
    listeners: &[ListenerInfo],
    shared: &Shared,
) -> PyResult<Vec<Py<PyDict>>> {
    let readable = Py::new(py, FdeventWait::new(Interest::Readable))?;
    let writable = Py::new(py, FdeventWait::new(Interest::Writable))?;
    let select = Py::new(py, FdeventSelect)?;
    let stderr = py.import("sys")?.getattr("stderr")?;
    let mut out = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let t = PyDict::new(py);
        t.set_item("wsgi.version", (1, 0))?;
        t.set_item("wsgi.url_scheme", if shared.tls { "https" } else { "http" })?;
        if shared.tls {
            t.set_item("HTTPS", "on")?;
        }
        t.set_item("wsgi.errors", &stderr)?;
        t.set_item("wsgi.multithread", shared.multithread)?;
        t.set_item("wsgi.multiprocess", shared.multiprocess)?;
        t.set_item("wsgi.run_once", false)?;
        t.set_item("wsgi.input_terminated", true)?;
        t.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        t.set_item("x-wsgiorg.fdevent.readable", &readable)?;
        t.set_item("x-wsgiorg.fdevent.writable", &writable)?;
        t.set_item("x-evserver.fdevent.select", &select)?;
        t.set_item("SCRIPT_NAME", "")?;
        t.set_item("SERVER_NAME", &listener.server_name)?;
        t.set_item("SERVER_PORT", &listener.server_port)?;
        t.set_item(
            "SERVER_SOFTWARE",
            concat!("evserver/", env!("CARGO_PKG_VERSION")),
        )?;
        add_request_placeholders(&t)?;
        out.push(t.unbind());
    }
    Ok(out)
}
