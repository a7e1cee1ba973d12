//! The half-second sweep: connections whose deadline passed (a 408 for a request too slow to
//! arrive, a close for an idle or lingering one), listeners re-armed, the lost master noticed,
//! and the worker's figures written to the scoreboard.

use super::conn::State;
use super::event_loop::Mode;
use super::Worker;
use evserver_platform::process;
use pyo3::prelude::*;
use std::sync::atomic::Ordering::Relaxed;

impl Worker {
    /// Closes connections whose deadline passed, re-arms listeners that stopped and reports
    /// the worker's figures.
    pub(super) fn sweep(&mut self) {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        // Read once for both the status page and --max-rss.
        let resident = process::resident_bytes();
        self.report_figures(resident);
        self.check_stuck_threads();
        self.check_memory(resident);
        if self
            .master_pid
            .is_some_and(|pid| process::parent_pid() != pid)
        {
            self.begin_drain("the loss of the master process");
        }
        let now = self.now;
        for slot in 0..self.slots.len() {
            let Some(mut conn) = self.slots.take_at(slot) else {
                continue;
            };
            let slot = slot as u32;
            let expired = conn.deadline.is_some_and(|d| d <= now)
                && matches!(conn.state, State::Reading | State::Lingering);
            // --websocket-ping and idle WebSockets' memory, in this same pass.
            if conn.ws.is_some() {
                self.ws_sweep(slot, &mut conn);
            }
            if expired {
                conn.deadline = None;
                if matches!(conn.state, State::Reading) && !conn.framer.is_idle() {
                    // A client too slow to send its request gets a 408 and is closed.
                    self.refuse_with(&mut conn, 408, "the request took too long to arrive");
                    self.start_send(slot, &mut conn);
                    if conn.all_sent() {
                        self.begin_linger(slot, &mut conn);
                    }
                } else {
                    self.close_now(slot, &mut conn);
                }
            }
            self.put_conn(slot, conn);
        }
    }

    /// Writes the heartbeat and the figures into the scoreboard. Called from the sweep, which
    /// runs every half second while the loop turns: the master's `--timeout` (whole seconds)
    /// needs no finer beat, so the loop's hot path reads no extra clock for it.
    pub(super) fn report_figures(&self, resident: u64) {
        let Some(cell) = &self.scoreboard else {
            return;
        };
        let cell = cell.get();
        cell.heartbeat_ms
            .store(process::monotonic_millis(), Relaxed);
        // One pass: with thousands of connections each one read is a cache miss.
        let (mut parked, mut websockets) = (0, 0);
        for conn in self.slots.conns() {
            parked += usize::from(conn.is_parked());
            websockets += usize::from(conn.ws.is_some());
        }
        cell.websockets.store(websockets as u64, Relaxed);
        cell.connections
            .store(self.open_connections as u64, Relaxed);
        cell.parked.store(parked as u64, Relaxed);
        cell.cpu_micros.store(process::cpu_time_micros(), Relaxed);
        cell.rss_bytes.store(resident, Relaxed);
        cell.parked_micros.store(self.parked_micros, Relaxed);
        self.durations.publish(cell);
        if let Mode::Pool(pool) = &self.mode {
            cell.threads.store(pool.threads() as u64, Relaxed);
            cell.threads_busy.store(pool.busy() as u64, Relaxed);
            cell.queued.store(pool.queued() as u64, Relaxed);
        }
    }

    /// `--max-rss`: a worker whose resident memory passed the limit stops gracefully (no new
    /// connections, the others finish) and the master starts a fresh one.
    fn check_memory(&mut self, resident: u64) {
        let Some(limit) = self.settings.max_rss else {
            return;
        };
        if self.draining.is_some() {
            return;
        }
        if resident > limit {
            self.log.warning(&format!(
                "resident memory {} MiB is past --max-rss {} MiB; stopping for a fresh worker",
                resident >> 20,
                limit >> 20
            ));
            self.begin_drain("--max-rss");
        }
    }

    /// Thread mode: a pool thread in one job longer than `--timeout` is logged with its
    /// Python stack (once per job), and the worker is recycled gracefully: it stops accepting,
    /// lets the other requests finish, and the master starts a fresh one. The loop's own
    /// heartbeat goes on meanwhile, so the master does not kill the worker for it.
    fn check_stuck_threads(&mut self) {
        let (Mode::Pool(pool), Some(timeout)) = (&self.mode, self.settings.timeout) else {
            return;
        };
        let now = process::monotonic_millis();
        let mut stuck = Vec::new();
        for slot in pool.slots() {
            let since = slot.busy_since_ms.load(Relaxed);
            if since != 0
                && now.saturating_sub(since) > timeout.as_millis() as u64
                && !slot.reported.swap(true, Relaxed)
            {
                stuck.push((slot.ident.load(Relaxed), now.saturating_sub(since) / 1000));
            }
        }
        for (ident, seconds) in stuck {
            let stack = thread_stack(ident);
            self.log.error(&format!(
                "a request has been in the application for {seconds} s (--timeout); \
                 recycling this worker once its other requests are done. The thread's stack:\n{stack}"
            ));
            self.begin_drain("a request stuck in the application (--timeout)");
        }
    }
}

/// The Python stack of the thread with identifier `ident`, formatted as a traceback.
fn thread_stack(ident: u64) -> String {
    Python::attach(|py| -> PyResult<String> {
        let frames = py.import("sys")?.call_method0("_current_frames")?;
        let Some(frame) = frames.get_item(ident).ok() else {
            return Ok("(the thread has no Python frame now)".to_string());
        };
        let lines = py
            .import("traceback")?
            .call_method1("format_stack", (frame,))?;
        Ok(lines
            .try_iter()?
            .filter_map(|line| line.ok()?.extract::<String>().ok())
            .collect())
    })
    .unwrap_or_else(|e| format!("(no stack: {e})"))
}
