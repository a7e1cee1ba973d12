//! The scoreboard: one cell of counters per worker in memory shared with the master, which
//! reads it for the heartbeat (stuck-worker timeout) and the status page.

use evserver_platform::process::{monotonic_millis, Shared};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Most workers a master can run at once (cells are allocated up front).
pub const MAX_WORKERS: usize = 1024;

/// Backend codes stored in a cell.
pub const BACKEND_IO_URING: u64 = 1;
pub const BACKEND_POLL: u64 = 2;

/// One worker's figures. Every field is written by the worker and read by the master.
#[repr(C)]
#[derive(Default)]
pub struct Cell {
    pub pid: AtomicU64,
    /// Monotonic milliseconds of the event loop's last turn.
    pub heartbeat_ms: AtomicU64,
    pub backend: AtomicU64,
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub parked: AtomicU64,
    pub cpu_micros: AtomicU64,
    pub rss_bytes: AtomicU64,
    /// Thread mode: the pool's threads, those running a job, and the requests waiting for one
    /// (all 0 inline).
    pub threads: AtomicU64,
    pub threads_busy: AtomicU64,
    pub queued: AtomicU64,
    /// Open WebSocket conversations.
    pub websockets: AtomicU64,
}

impl Cell {
    /// Clears the figures of a cell that a new worker takes over.
    pub fn reset(&self, pid: u32) {
        self.pid.store(u64::from(pid), Relaxed);
        self.heartbeat_ms.store(monotonic_millis(), Relaxed);
        for field in [
            &self.backend,
            &self.connections,
            &self.requests,
            &self.parked,
            &self.cpu_micros,
            &self.rss_bytes,
            &self.threads,
            &self.threads_busy,
            &self.queued,
            &self.websockets,
        ] {
            field.store(0, Relaxed);
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend.load(Relaxed) {
            BACKEND_IO_URING => "io_uring",
            BACKEND_POLL if cfg!(target_os = "linux") => "epoll",
            BACKEND_POLL => "kqueue",
            _ => "booting",
        }
    }
}

/// The cells of every worker slot.
pub type Scoreboard = Shared<Cell>;

/// A worker's handle on its own cell.
#[derive(Clone)]
pub struct CellRef {
    board: Rc<Scoreboard>,
    index: usize,
}

impl CellRef {
    pub fn new(board: Rc<Scoreboard>, index: usize) -> Option<CellRef> {
        board.get(index)?;
        Some(CellRef { board, index })
    }

    pub fn get(&self) -> &Cell {
        // `new` checked the index; the board never shrinks.
        self.board
            .get(self.index)
            .expect("a checked scoreboard index")
    }
}
