//! `REMOTE_ADDR` and `REMOTE_PORT` as Python strings: made once per connection, and the
//! address string shared while clients keep coming from the same address.

use pyo3::prelude::*;
use pyo3::types::PyString;
use std::net::{IpAddr, SocketAddr};

/// One connection's peer strings, kept by the connection between its requests.
pub struct PeerStrings {
    addr: Py<PyString>,
    port: Py<PyString>,
}

/// The strings of the last address seen (clients mostly come from few addresses).
#[derive(Default)]
pub struct PeerCache {
    last: Option<(IpAddr, Py<PyString>)>,
}

impl PeerCache {
    /// The strings of `peer` (empty ones for a peer with no IP address: a unix socket), made
    /// into `slot` on the connection's first request.
    pub fn strings<'py>(
        &mut self,
        py: Python<'py>,
        peer: Option<SocketAddr>,
        slot: &mut Option<PeerStrings>,
    ) -> (Bound<'py, PyString>, Bound<'py, PyString>) {
        let strings = slot.get_or_insert_with(|| match peer {
            Some(a) => {
                let addr = match &self.last {
                    Some((ip, text)) if *ip == a.ip() => text.clone_ref(py),
                    _ => {
                        let text = PyString::new(py, &a.ip().to_string()).unbind();
                        self.last = Some((a.ip(), text.clone_ref(py)));
                        text
                    }
                };
                let port = PyString::new(py, itoa::Buffer::new().format(a.port())).unbind();
                PeerStrings { addr, port }
            }
            None => PeerStrings {
                addr: pyo3::intern!(py, "").clone().unbind(),
                port: pyo3::intern!(py, "").clone().unbind(),
            },
        });
        (strings.addr.bind(py).clone(), strings.port.bind(py).clone())
    }
}
