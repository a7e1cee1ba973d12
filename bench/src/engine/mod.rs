//! One load-generating thread: its own event loop, connections, schedule and statistics.
//! Nothing is shared per request: progress counters are published a few times a second.
//!
//! Each connection goes Closed -> Connecting -> Open. An open connection keeps a multishot
//! receive armed and has at most one send in flight; a batch of `pipeline` requests is one
//! send of bytes built before the run. Completions of an earlier incarnation of a connection
//! (its generation in the token) are only accounted for, never acted on.

use crate::response::ResponseParser;
use crate::stats::Stats;
use evserver_platform::{process, ConnectAddr};
use evserver_platform::{Choice, Completion, Config, Driver, Token};

mod completions;
mod conns;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const OP_CONNECT: u8 = 1;
const OP_SEND: u8 = 2;
const OP_RECV: u8 = 3;

/// A send leaving more than this after its planned time counts as late (rate mode).
pub const LATE_AFTER: Duration = Duration::from_millis(1);
/// Fast mode: a wait lasts until this percentage of the requests in flight is answered ...
/// Waking costs far more than handling a response (a cross-CPU wake-up is several
/// microseconds of CPU, more in a virtual machine), so the loop wakes once per large batch;
/// the rest keeps the server busy meanwhile.
const BATCH_PERCENT: u64 = 75;
/// ... or after this long at most.
const BATCH_WAIT: Duration = Duration::from_micros(500);
/// How often progress counters are published.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for the kernel to give back every operation at the end of a run.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// What one thread does.
pub struct ThreadPlan {
    pub addr: Box<ConnectAddr>,
    /// `pipeline` copies of the request, back to back.
    pub batch: Box<[u8]>,
    pub request_len: usize,
    pub pipeline: u32,
    pub connections: u32,
    pub close: bool,
    pub head_requests: bool,
    pub timeout: Duration,
    /// Requests per second for this thread.
    pub rate: Option<f64>,
    /// Requests for this thread (`-n`).
    pub quota: Option<u64>,
    pub backend: Choice,
    /// Counting starts here (after the warmup) and stops `duration` later.
    pub measure_from: Instant,
    pub duration: Option<Duration>,
}

/// Progress counters of one thread, read by the progress line.
#[derive(Default)]
#[repr(align(64))]
pub struct Progress {
    pub responses: AtomicU64,
    pub errors: AtomicU64,
}

/// What one thread measured.
pub struct ThreadResult {
    pub stats: Stats,
    pub elapsed: Duration,
    pub backend: &'static str,
    pub fallback: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Closed,
    Connecting,
    Open,
}

struct Conn {
    fd: RawFd,
    generation: u32,
    state: State,
    recv_armed: bool,
    send_busy: bool,
    send_off: usize,
    send_end: usize,
    /// Requests of a batch waiting for the send in flight to finish.
    pending: u32,
    /// Requests sent (or about to be) that have no response yet.
    outstanding: u32,
    /// Of those, the ones sent during the warmup (answered but not counted).
    warm: u32,
    /// In the idle list.
    idle: bool,
    started_at: Instant,
    sent_at: Instant,
    planned_at: Instant,
    parser: ResponseParser,
}

impl Conn {
    fn token(&self, op: u8, slot: u32) -> Token {
        Token::new(slot, self.generation, op)
    }
}

/// The fixed-rate schedule: request `k` is due at `start + k / rate`.
struct Schedule {
    start: Instant,
    interval: f64,
    k: u64,
}

impl Schedule {
    fn due(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.k as f64 * self.interval)
    }
}

struct Worker<'a> {
    plan: &'a ThreadPlan,
    driver: Driver,
    conns: Vec<Conn>,
    idle: Vec<u32>,
    parked: Vec<u32>,
    stats: Stats,
    /// Requests still to start (`-n`), counted only once recording.
    quota: Option<u64>,
    in_flight: u64,
    /// Operations issued whose final completion has not arrived.
    ops: u64,
    recording: bool,
    now: Instant,
    sec: usize,
    schedule: Option<Schedule>,
    /// Fast mode: how many responses a wait asks for (see `adapt_batch`).
    batch: u32,
    /// Sends queued since the last wait: they complete as they are submitted, so a wait for
    /// `batch` responses asks for this many completions more.
    sends_queued: u32,
    /// Rate mode: the scheduled request last counted as starved (see `Stats::starved`).
    starved_at: Option<u64>,
    /// This thread's CPU time when recording started.
    cpu_at_start: u64,
    /// A failure to create a socket was reported already.
    socket_error_shown: bool,
}

/// The batch for the next wait, after a wait for `awaited` responses brought `got` (the
/// completions beside the sends') in `waited`. It doubles (up to `target`) while waits end
/// within half of BATCH_WAIT with more than awaited (responses come in bunches faster than
/// asked for), and drops to what came when a wait ran out. Responses trickling in one at a time
/// are thus not held back by BATCH_WAIT turn after turn: on a server that is not saturated,
/// holding an answer back delays the next request and lowers the throughput measured.
fn next_batch(batch: u32, target: u32, awaited: u32, got: u32, waited: Duration) -> u32 {
    if got < awaited {
        got.max(1)
    } else if got > awaited && waited < BATCH_WAIT / 2 {
        batch.saturating_mul(2).min(target)
    } else {
        batch
    }
}

/// Runs one thread's share of the load until the duration passes, the quota is done or
/// `stop` is set.
pub fn run_thread(
    plan: ThreadPlan,
    progress: &Progress,
    stop: &AtomicBool,
) -> io::Result<ThreadResult> {
    let per = plan.connections as usize;
    let config = Config {
        entries: (per * 4).next_power_of_two().clamp(256, 16384) as u32,
        recv_buffer_size: 16 * 1024,
        recv_buffer_count: (per * 2).next_power_of_two().clamp(64, 4096) as u16,
    };
    let selected = Driver::select(plan.backend, &config)?;
    let now = Instant::now();
    let conns = (0..per)
        .map(|_| Conn {
            fd: -1,
            generation: 0,
            state: State::Closed,
            recv_armed: false,
            send_busy: false,
            send_off: 0,
            send_end: 0,
            pending: 0,
            outstanding: 0,
            warm: 0,
            idle: false,
            started_at: now,
            sent_at: now,
            planned_at: now,
            parser: ResponseParser::new(plan.head_requests),
        })
        .collect();
    let mut w = Worker {
        plan: &plan,
        driver: selected.driver,
        conns,
        idle: Vec::with_capacity(per),
        parked: Vec::with_capacity(per),
        stats: Stats::new(plan.rate.is_some()),
        quota: plan.quota,
        in_flight: 0,
        ops: 0,
        recording: false,
        now,
        sec: 0,
        schedule: plan.rate.map(|r| Schedule {
            start: now,
            interval: 1.0 / r,
            k: 0,
        }),
        batch: 1,
        sends_queued: 0,
        starved_at: None,
        cpu_at_start: 0,
        socket_error_shown: false,
    };
    let result = w.run(progress, stop);
    let elapsed = if w.recording {
        w.stats.cpu_micros = process::thread_cpu_time_micros().saturating_sub(w.cpu_at_start);
        w.now.saturating_duration_since(plan.measure_from)
    } else {
        Duration::ZERO
    };
    w.shutdown();
    let leaked = w.leaked();
    let backend = w.driver.name();
    let stats = std::mem::replace(&mut w.stats, Stats::new(false));
    drop(w);
    if leaked {
        // The kernel did not give back every operation in time: the memory they may still
        // read must outlive them.
        let ThreadPlan { addr, batch, .. } = plan;
        Box::leak(addr);
        Box::leak(batch);
    }
    result?;
    Ok(ThreadResult {
        stats,
        elapsed,
        backend,
        fallback: selected.fallback_reason,
    })
}

impl Worker<'_> {
    fn run(&mut self, progress: &Progress, stop: &AtomicBool) -> io::Result<()> {
        for slot in 0..self.conns.len() as u32 {
            self.open(slot);
        }
        let sweep_every =
            (self.plan.timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(10));
        let mut next_sweep = self.now + sweep_every;
        let mut next_publish = self.now + PUBLISH_EVERY;
        let end = self.plan.duration.map(|d| self.plan.measure_from + d);
        let mut completions: Vec<Completion> = Vec::with_capacity(1024);
        loop {
            self.now = Instant::now();
            if !self.recording && self.now >= self.plan.measure_from {
                self.start_recording();
            }
            if self.recording {
                if end.is_some_and(|e| self.now >= e) || self.quota_done() {
                    return Ok(());
                }
                self.sec = self
                    .now
                    .saturating_duration_since(self.plan.measure_from)
                    .as_secs() as usize;
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if self.schedule.is_some() {
                self.send_scheduled();
            } else {
                self.serve_idle();
            }
            self.serve_parked();
            if self.now >= next_sweep {
                self.sweep_timeouts();
                next_sweep = self.now + sweep_every;
            }
            if self.now >= next_publish {
                progress
                    .responses
                    .store(self.stats.responses, Ordering::Relaxed);
                let errors = self.stats.errors.total() + self.stats.status_errors();
                progress.errors.store(errors, Ordering::Relaxed);
                next_publish = self.now + PUBLISH_EVERY;
            }

            let mut wake = next_sweep.min(next_publish);
            if !self.recording {
                wake = wake.min(self.plan.measure_from);
            }
            if let Some(e) = end {
                wake = wake.min(e);
            }
            if let Some(s) = &self.schedule {
                if !self.idle.is_empty() {
                    wake = wake.min(s.due());
                }
            }
            // Fast mode: sleep until a batch of responses is ready, or BATCH_WAIT at most.
            let sends = std::mem::take(&mut self.sends_queued);
            let responses = if self.schedule.is_none() {
                self.batch.min(self.batch_target())
            } else {
                1
            };
            if responses > 1 {
                wake = wake.min(self.now + BATCH_WAIT);
            }
            let timeout = wake.saturating_duration_since(self.now);
            match self
                .driver
                .wait_batch(responses.saturating_add(sends), Some(timeout))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.sends_queued = sends; // their completions still count next time
                    continue;
                }
                Err(e) => return Err(e),
            }
            self.driver.drain(&mut completions);
            let waited_since = self.now;
            self.now = Instant::now();
            let others = u32::try_from(completions.len()).unwrap_or(u32::MAX);
            let waited = self.now.saturating_duration_since(waited_since);
            self.adapt_batch(responses, others.saturating_sub(sends), waited);
            if self.recording {
                self.sec = self
                    .now
                    .saturating_duration_since(self.plan.measure_from)
                    .as_secs() as usize;
            }
            for c in completions.drain(..) {
                self.complete(c);
            }
        }
    }

    /// The batch worth waiting for when the responses come fast: BATCH_PERCENT of the
    /// receives in flight (a pipelined batch of requests is answered in one receive or more).
    fn batch_target(&self) -> u32 {
        let receives = self.in_flight / u64::from(self.plan.pipeline);
        u32::try_from(receives * BATCH_PERCENT / 100)
            .unwrap_or(u32::MAX)
            .max(1)
    }

    /// Adapts the batch to how the last wait went (see [`next_batch`]).
    fn adapt_batch(&mut self, awaited: u32, got: u32, waited: Duration) {
        self.batch = next_batch(self.batch, self.batch_target(), awaited, got, waited);
    }

    fn quota_done(&self) -> bool {
        self.quota == Some(0) && self.in_flight == 0
    }

    /// End of the warmup: counting starts; what is in flight now is answered uncounted.
    fn start_recording(&mut self) {
        self.recording = true;
        self.stats.clear();
        self.cpu_at_start = process::thread_cpu_time_micros();
        for c in &mut self.conns {
            c.warm = c.outstanding;
        }
    }

    /// Takes up to `k` requests from the quota (unlimited before recording and without -n).
    fn take(&mut self, k: u32) -> u32 {
        match (&mut self.quota, self.recording) {
            (Some(left), true) => {
                let n = (*left).min(u64::from(k));
                *left -= n;
                n as u32
            }
            _ => k,
        }
    }

    fn give_back(&mut self, k: u64) {
        if let (Some(left), true) = (&mut self.quota, self.recording) {
            *left += k;
        }
    }

    // ----- connections -----

    /// Closes every connection and waits (briefly) for the kernel to give back every
    /// operation, so that nothing refers to the batch or the address afterwards.
    fn shutdown(&mut self) {
        for slot in 0..self.conns.len() as u32 {
            self.close(slot);
        }
        let limit = Instant::now() + DRAIN_LIMIT;
        let mut completions = Vec::new();
        while self.ops > 0 && Instant::now() < limit {
            if self.driver.wait(Some(Duration::from_millis(50))).is_err() {
                continue;
            }
            self.driver.drain(&mut completions);
            for c in completions.drain(..) {
                if !c.more {
                    self.ops -= 1;
                }
                if let Some(id) = c.buffer {
                    self.driver.release_buffer(id);
                }
            }
        }
    }

    /// True when the kernel still holds operations after `shutdown`.
    fn leaked(&self) -> bool {
        self.ops > 0
    }
}

#[cfg(test)]
mod tests {
    use super::{next_batch, BATCH_WAIT};
    use std::time::Duration;

    const QUICK: Duration = Duration::from_micros(50);

    #[test]
    fn batch_grows_while_responses_come_faster_than_awaited() {
        assert_eq!(next_batch(4, 37, 4, 6, QUICK), 8);
        assert_eq!(
            next_batch(32, 37, 32, 40, QUICK),
            37,
            "capped by the target"
        );
    }

    #[test]
    fn batch_holds_when_a_wait_is_met_exactly_or_slowly() {
        // One response per wake-up: a trickle, not a burst.
        assert_eq!(next_batch(1, 37, 1, 1, QUICK), 1);
        // Met, but late in the window: a bigger batch would run out.
        assert_eq!(next_batch(8, 37, 8, 9, BATCH_WAIT / 2), 8);
    }

    #[test]
    fn batch_drops_to_what_came_when_a_wait_runs_out() {
        assert_eq!(next_batch(37, 37, 37, 5, BATCH_WAIT), 5);
        assert_eq!(next_batch(37, 37, 37, 0, BATCH_WAIT), 1, "never below one");
    }
}
