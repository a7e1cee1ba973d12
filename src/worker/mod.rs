//! A worker process's event loop: it accepts connections, receives, frames requests with the
//! codec's `Framer`, runs the application through the WSGI layer, sends, parks fdevent waits,
//! and stops gracefully.
//!
//! # The contract
//!
//! - One thread runs the loop and owns every connection (`Slots`), the driver and the
//!   application (`wsgi::App`). It holds the GIL except while it waits in the kernel.
//! - Every operation issued to the driver carries a token naming its connection slot, the
//!   slot's generation and an [`op::Op`]; a completion whose generation is stale is dropped
//!   (its provided buffer given back). A slot is freed only when the kernel holds nothing of
//!   it (`Conn::ops == 0`), so memory an operation points to outlives the operation.
//! - A connection's state is one enum ([`conn::State`]): reading requests, running a response
//!   (parked or not), done, lingering, closed. Each room below moves it for one reason.
//!
//! Rooms: `event_loop` (the loop, completions to handlers), `slots`, `op`, `accept`, `cycle`
//! (received bytes to requests), `respond` (a response's steps), `send` (the send queue, files),
//! `fdwait` (parked waits), `closing`, `drain` (graceful stop), `sweep` (timeouts, figures),
//! `body` (request bodies in memory or spilled), `outq`, `accesslog`.

mod accept;
pub mod accesslog;
mod body;
mod closing;
mod conn;
mod cycle;
mod drain;
mod event_loop;
mod fdwait;
mod handoff;
mod op;
mod outq;
mod pool;
mod respond;
mod send;
mod slots;
mod sweep;
mod tls;
mod websocket;

pub use event_loop::Worker;

use accesslog::Format;
use evserver_http::Limits;
use std::time::Duration;

/// Timeouts and limits of a worker.
pub struct Settings {
    pub limits: Limits,
    pub spill_body: usize,
    pub keep_alive: Duration,
    /// How long a head may take from its first byte (`408` after).
    pub header_timeout: Duration,
    /// How long a body may take from the end of its head (`408` after); `None`: no limit.
    pub body_timeout: Option<Duration>,
    /// Stop (gracefully) after this many requests, so the master starts a fresh worker.
    pub max_requests: Option<u64>,
    /// Stop (gracefully) once resident memory passes this many bytes (`--max-rss`).
    pub max_rss: Option<u64>,
    /// Open connections beyond which the worker stops accepting (0: no limit).
    pub max_connections: usize,
    /// How long a graceful stop may take before the remaining connections are closed.
    pub graceful_timeout: Duration,
    /// Thread mode: how long one request may stay in the application before the worker is
    /// recycled (`--timeout`; `None`: never).
    pub timeout: Option<Duration>,
    /// The access log's line (used when the access log is on).
    pub access_format: Format,
    pub websocket: crate::websocket::WsSettings,
    /// `--forwarded-allow-ips`: peers whose `X-Forwarded-*` fields are believed.
    pub forwarded: std::sync::Arc<crate::allow::AllowList>,
    /// `--proxy-protocol`: the peers whose connections may start with a PROXY header.
    pub proxy_protocol: Option<crate::allow::AllowList>,
    /// `--certfile`: every connection speaks TLS with this configuration.
    pub tls: Option<std::sync::Arc<evserver_tls::ServerConfig>>,
}
