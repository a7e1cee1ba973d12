//! The backend test suite (`suite/`) run against the io_uring backend (Linux only); where the
//! kernel refuses io_uring the whole binary skips with a message.

#![cfg(target_os = "linux")]

use evserver_platform::Choice;

/// The backend every test of the suite drives.
const BACKEND: Choice = Choice::IoUring;

#[path = "suite/mod.rs"]
mod suite;
