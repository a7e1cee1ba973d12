//! The backend test suite (`suite/`) run against the poll backend: epoll on Linux, kqueue on macOS.

use evserver_platform::Choice;

/// The backend every test of the suite drives.
const BACKEND: Choice = Choice::Poll;

#[path = "suite/mod.rs"]
mod suite;
