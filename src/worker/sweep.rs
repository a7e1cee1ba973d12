//! The half-second sweep: connections whose deadline passed (a 408 for a request too slow to
//! arrive, a close for an idle or lingering one), listeners re-armed, the lost master noticed,
//! and the worker's figures written to the scoreboard.

use super::conn::State;
use super::Worker;
use evserver_platform::process;
use std::sync::atomic::Ordering::Relaxed;

impl Worker<'_> {
    /// Closes connections whose deadline passed, re-arms listeners that stopped and reports
    /// the worker's figures.
    pub(super) fn sweep(&mut self) {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.report_figures();
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
            if expired {
                conn.deadline = None;
                if matches!(conn.state, State::Reading) && !conn.framer.is_idle() {
                    // A client too slow to send its request gets a 408 and is closed.
                    self.refuse_with(&mut conn, 408, "the request took too long to arrive");
                    self.start_send(slot, &mut conn);
                    if conn.out.is_empty() {
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
    pub(super) fn report_figures(&self) {
        let Some(cell) = &self.scoreboard else {
            return;
        };
        let cell = cell.get();
        cell.heartbeat_ms
            .store(process::monotonic_millis(), Relaxed);
        let parked = self.slots.conns().filter(|c| c.is_parked()).count();
        cell.connections
            .store(self.open_connections as u64, Relaxed);
        cell.parked.store(parked as u64, Relaxed);
        cell.cpu_micros.store(process::cpu_time_micros(), Relaxed);
        cell.rss_bytes.store(process::resident_bytes(), Relaxed);
    }
}
