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

/// Upper bounds (seconds) of the request-duration histogram's buckets, beside `+Inf`: from a
/// 100 µs request to an hour-long stream.
pub const DURATION_BUCKETS: [f64; 21] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// [`DURATION_BUCKETS`] in microseconds, for integer comparisons on the hot path.
const BUCKET_MICROS: [u64; DURATION_BUCKETS.len()] = {
    let mut micros = [0u64; DURATION_BUCKETS.len()];
    let mut i = 0;
    while i < micros.len() {
        micros[i] = (DURATION_BUCKETS[i] * 1e6) as u64;
        i += 1;
    }
    micros
};

/// A worker's request durations: counted by the worker on its own thread (plain integers, no
/// atomics on the hot path), copied into its cell with the other figures.
#[derive(Default)]
pub struct DurationHistogram {
    /// Per bucket (not cumulative), the last one `+Inf`.
    counts: [u64; DURATION_BUCKETS.len() + 1],
    sum_micros: u64,
}

impl DurationHistogram {
    pub fn record(&mut self, micros: u64) {
        let bucket = if micros <= BUCKET_MICROS[0] {
            0
        } else {
            BUCKET_MICROS.partition_point(|&bound| bound < micros)
        };
        self.counts[bucket] += 1;
        self.sum_micros += micros;
    }

    /// Copies the counts into `cell`.
    pub fn publish(&self, cell: &Cell) {
        for (shared, &count) in cell.duration_counts.iter().zip(&self.counts) {
            shared.store(count, Relaxed);
        }
        cell.duration_sum_micros.store(self.sum_micros, Relaxed);
    }
}

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
    /// Microseconds requests spent parked in fdevent waits, in all.
    pub parked_micros: AtomicU64,
    /// The request-duration histogram (see [`DurationHistogram`]).
    pub duration_counts: [AtomicU64; DURATION_BUCKETS.len() + 1],
    pub duration_sum_micros: AtomicU64,
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
            &self.parked_micros,
            &self.duration_sum_micros,
        ] {
            field.store(0, Relaxed);
        }
        for count in &self.duration_counts {
            count.store(0, Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_their_bucket() {
        let mut histogram = DurationHistogram::default();
        for micros in [0, 100, 101, 1_000_000, 7_200_000_000] {
            histogram.record(micros);
        }
        let cell = Cell::default();
        histogram.publish(&cell);
        let counts: Vec<u64> = cell
            .duration_counts
            .iter()
            .map(|c| c.load(Relaxed))
            .collect();
        assert_eq!(counts[0], 2, "0 and 100 µs are within 0.0001 s");
        assert_eq!(counts[1], 1);
        assert_eq!(counts[12], 1, "1 s is within the bucket of 1");
        assert_eq!(counts[DURATION_BUCKETS.len()], 1, "two hours: +Inf");
        assert_eq!(cell.duration_sum_micros.load(Relaxed), 7_201_000_201);
    }
}
