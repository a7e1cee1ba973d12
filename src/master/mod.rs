//! The master process: forks the workers and supervises them (restarts, `--timeout`, signals,
//! graceful reloads, `--reload`), and serves the status page from their scoreboard cells.
//!
//! The master runs no application code and holds every listening socket for the workers'
//! whole lives (`sockets`), so a replaced worker's successor accepts from the same socket.
//! What a worker runs is given by the [`supervisor::WorkerBody`] trait, implemented by the
//! command (`serve`), so this room knows nothing of the worker's insides.

mod metrics;
mod reload;
mod signals;
mod sockets;
pub mod status;
mod status_page;
mod supervisor;

pub use sockets::Sockets;
pub use supervisor::{Assignment, Master, Supervision, WorkerBody, EXIT_BOOT_FAILURE};
