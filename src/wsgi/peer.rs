//! `REMOTE_ADDR` and `REMOTE_PORT` as Python strings, and whether the peer is a trusted
//! proxy (`--forwarded-allow-ips`): made once per connection, and the address string shared
//! while clients keep coming from the same address.

use crate::allow::AllowList;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::net::{IpAddr, SocketAddr};

/// One connection's peer strings, kept by the connection between its requests.
pub struct PeerStrings {
    addr: Py<PyString>,
    port: Py<PyString>,
    /// The peer is in `--forwarded-allow-ips`: its `X-Forwarded-*` fields count.
    trusted: bool,
}

/// The strings of the last address seen (clients mostly come from few addresses).
#[derive(Default)]
pub struct PeerCache {
    last: Option<(IpAddr, Py<PyString>)>,
}

impl PeerCache {
    /// The strings of `peer` (empty ones for a peer with no IP address: a unix socket) and
    /// whether `forwarded` trusts it, made into `slot` on the connection's first request.
    pub fn strings<'py>(
        &mut self,
        py: Python<'py>,
        peer: Option<SocketAddr>,
        forwarded: &AllowList,
        slot: &mut Option<PeerStrings>,
    ) -> (Bound<'py, PyString>, Bound<'py, PyString>, bool) {
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
                PeerStrings {
                    addr,
                    port,
                    trusted: forwarded.allows(Some(a.ip())),
                }
            }
            None => PeerStrings {
                addr: pyo3::intern!(py, "").clone().unbind(),
                port: pyo3::intern!(py, "").clone().unbind(),
                trusted: forwarded.allows(None),
            },
        });
        (
            strings.addr.bind(py).clone(),
            strings.port.bind(py).clone(),
            strings.trusted,
        )
    }
}
