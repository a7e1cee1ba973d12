//! One load-generating thread: its own event loop, connections, schedule and statistics.
//! Nothing is shared per request: progress counters are published a few times a second.
//!
//! Each connection goes Closed -> Connecting -> Open. An open connection keeps a multishot
//! receive armed and has at most one send in flight; a batch of `pipeline` requests is one
//! send of bytes built before the run. Completions of an earlier incarnation of a connection
//! (its generation in the token) are only accounted for, never acted on.

use crate::response::{AtEof, ResponseParser};
use crate::stats::{Failure, Stats};
use crate::target::RawAddr;
use evserver_platform::{Choice, Completion, Config, Driver, Token};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const OP_CONNECT: u8 = 1;
const OP_SEND: u8 = 2;
const OP_RECV: u8 = 3;

/// A send leaving more than this after its planned time counts as late (rate mode).
pub const LATE_AFTER: Duration = Duration::from_millis(1);
/// Fast mode: one wake-up per completions of this share of the busy connections ...
const BATCH_SHARE: u64 = 4;
/// ... or after this long.
const BATCH_WAIT: Duration = Duration::from_micros(500);
/// How often progress counters are published.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for the kernel to give back every operation at the end of a run.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// What one thread does.
pub struct ThreadPlan {
    pub addr: Box<RawAddr>,
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
    family: libc::c_int,
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
        family: plan.addr.family,
    };
    let result = w.run(progress, stop);
    let elapsed = if w.recording {
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
            // Fast mode: sleep until a batch of completions is ready (a share of the busy
            // connections), at most BATCH_WAIT longer than for the first one.
            let min = if self.schedule.is_none() {
                wake = wake.min(self.now + BATCH_WAIT);
                (self.in_flight / u64::from(self.plan.pipeline) / BATCH_SHARE).max(1) as u32
            } else {
                1
            };
            let timeout = wake.saturating_duration_since(self.now);
            match self.driver.wait_batch(min, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.driver.drain(&mut completions);
            self.now = Instant::now();
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

    fn quota_done(&self) -> bool {
        self.quota == Some(0) && self.in_flight == 0
    }

    /// End of the warmup: counting starts; what is in flight now is answered uncounted.
    fn start_recording(&mut self) {
        self.recording = true;
        self.stats.clear();
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

    /// Opens a socket for `slot` and starts connecting it.
    fn open(&mut self, slot: u32) {
        let fd = match new_socket(self.family) {
            Ok(fd) => fd,
            Err(_) => {
                // Out of fds or the like: count it and leave the slot closed.
                if self.recording && self.take(1) == 1 {
                    self.stats.fail(Failure::Connect, self.sec);
                }
                self.parked.push(slot);
                return;
            }
        };
        let c = &mut self.conns[slot as usize];
        c.fd = fd;
        c.state = State::Connecting;
        c.started_at = self.now;
        let token = c.token(OP_CONNECT, slot);
        // SAFETY: the address outlives the worker, whose shutdown waits for every operation
        // to end (or leaks the address if the kernel does not give them back).
        unsafe {
            self.driver.connect(
                fd,
                token,
                self.plan.addr.as_ptr(),
                self.plan.addr.addr_len(),
            )
        };
        self.ops += 1;
    }

    /// Closes `slot`'s socket, cancelling its operations; their completions are ignored.
    fn close(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        if c.fd < 0 {
            return;
        }
        if c.state == State::Connecting {
            self.driver.cancel(c.token(OP_CONNECT, slot));
        }
        if c.recv_armed {
            self.driver.cancel(c.token(OP_RECV, slot));
        }
        if c.send_busy {
            self.driver.cancel(c.token(OP_SEND, slot));
        }
        self.driver.close(c.fd);
        c.fd = -1;
        c.state = State::Closed;
        c.generation = Token::next_generation(c.generation);
        c.recv_armed = false;
        c.send_busy = false;
        c.idle = false;
        c.parser.reset();
    }

    /// Closes `slot` and opens it again, unless no request is left for it.
    fn reopen(&mut self, slot: u32) {
        self.close(slot);
        if self.recording && self.quota == Some(0) {
            self.parked.push(slot);
        } else {
            self.open(slot);
        }
    }

    /// Ends the requests outstanding on `slot`: the oldest failed with `kind`, the others go
    /// back to the quota. Then the connection is re-opened.
    fn abort(&mut self, slot: u32, kind: Failure) {
        let c = &mut self.conns[slot as usize];
        let (outstanding, warm) = (c.outstanding, c.warm);
        c.outstanding = 0;
        c.warm = 0;
        c.pending = 0;
        self.in_flight -= u64::from(outstanding);
        if outstanding > 0 {
            let fresh = outstanding - warm;
            if warm == 0 {
                if self.recording {
                    self.stats.fail(kind, self.sec);
                }
                self.give_back(u64::from(fresh - 1));
            } else {
                self.give_back(u64::from(fresh));
            }
        }
        self.reopen(slot);
    }

    /// A connect failed (or timed out): that counts as one failed request.
    fn connect_failed(&mut self, slot: u32, kind: Failure) {
        if self.recording && self.take(1) == 1 {
            self.stats.fail(kind, self.sec);
        }
        self.reopen(slot);
    }

    /// `slot` is open with nothing outstanding: give it work or list it idle.
    fn ready(&mut self, slot: u32) {
        if self.schedule.is_none() {
            let k = self.take(self.plan.pipeline);
            if k > 0 {
                let at = if self.plan.close {
                    self.conns[slot as usize].started_at
                } else {
                    self.now
                };
                return self.send_batch(slot, k, at);
            }
        }
        let c = &mut self.conns[slot as usize];
        if !c.idle {
            c.idle = true;
            self.idle.push(slot);
        }
    }

    /// Pops an idle connection that is still open and free.
    fn pop_idle(&mut self) -> Option<u32> {
        while let Some(slot) = self.idle.pop() {
            let c = &mut self.conns[slot as usize];
            if c.idle {
                c.idle = false;
                if c.state == State::Open && c.outstanding == 0 {
                    return Some(slot);
                }
            }
        }
        None
    }

    fn serve_idle(&mut self) {
        if self.quota == Some(0) && self.recording {
            return;
        }
        while let Some(slot) = self.pop_idle() {
            self.ready(slot);
            if self.quota == Some(0) && self.recording {
                return;
            }
        }
    }

    fn serve_parked(&mut self) {
        while !(self.recording && self.quota == Some(0)) {
            let Some(slot) = self.parked.pop() else {
                return;
            };
            self.open(slot);
        }
    }

    /// Rate mode: sends what is due, on idle connections, while there are some.
    fn send_scheduled(&mut self) {
        loop {
            let Some(s) = &self.schedule else { return };
            let due = s.due();
            if due > self.now {
                return;
            }
            let Some(slot) = self.pop_idle() else { return };
            if self.take(1) == 0 {
                self.ready(slot);
                return;
            }
            let at = if self.plan.close {
                self.conns[slot as usize].started_at.max(due)
            } else {
                due
            };
            self.send_batch(slot, 1, at);
            if self.recording && self.now.saturating_duration_since(due) > LATE_AFTER {
                self.stats.late += 1;
            }
            if let Some(s) = &mut self.schedule {
                s.k += 1;
            }
        }
    }

    /// Sends `k` requests on `slot`; latency counts from `planned` (fast mode: the send).
    fn send_batch(&mut self, slot: u32, k: u32, planned: Instant) {
        let now = self.now;
        let c = &mut self.conns[slot as usize];
        c.outstanding += k;
        c.sent_at = if self.plan.close && self.schedule.is_none() {
            c.started_at
        } else {
            now
        };
        c.planned_at = planned;
        self.in_flight += u64::from(k);
        if self.recording {
            self.stats.sent += u64::from(k);
        }
        if c.send_busy {
            c.pending += k;
            return;
        }
        let len = k as usize * self.plan.request_len;
        self.issue_send(slot, 0, len);
    }

    fn issue_send(&mut self, slot: u32, off: usize, end: usize) {
        let c = &mut self.conns[slot as usize];
        c.send_off = off;
        c.send_end = end;
        c.send_busy = true;
        let token = c.token(OP_SEND, slot);
        let bytes = &self.plan.batch[off..end];
        // SAFETY: the batch outlives the worker, whose shutdown waits for every operation to
        // end (or leaks the batch if the kernel does not give them back).
        unsafe { self.driver.send(c.fd, token, bytes.as_ptr(), bytes.len()) };
        self.ops += 1;
    }

    fn sweep_timeouts(&mut self) {
        let timeout = self.plan.timeout;
        for slot in 0..self.conns.len() as u32 {
            let c = &self.conns[slot as usize];
            match c.state {
                State::Connecting if self.now.saturating_duration_since(c.started_at) > timeout => {
                    self.connect_failed(slot, Failure::Timeout)
                }
                State::Open
                    if c.outstanding > 0
                        && self.now.saturating_duration_since(c.sent_at) > timeout =>
                {
                    self.abort(slot, Failure::Timeout)
                }
                _ => {}
            }
        }
    }

    // ----- completions -----

    fn complete(&mut self, c: Completion) {
        if !c.more {
            self.ops -= 1;
        }
        let slot = c.token.slot();
        let conn = &self.conns[slot as usize];
        if c.token.generation() != conn.generation || conn.fd < 0 {
            if let Some(id) = c.buffer {
                self.driver.release_buffer(id);
            }
            return; // an earlier incarnation of the connection
        }
        match c.token.op() {
            OP_CONNECT => self.connected(slot, c.result),
            OP_SEND => self.sent(slot, c.result),
            OP_RECV => self.received(slot, c),
            _ => {}
        }
    }

    fn connected(&mut self, slot: u32, result: i32) {
        if result < 0 {
            return self.connect_failed(slot, Failure::Connect);
        }
        let c = &mut self.conns[slot as usize];
        c.state = State::Open;
        c.recv_armed = true;
        let token = c.token(OP_RECV, slot);
        self.driver.recv_multi(c.fd, token);
        self.ops += 1;
        self.ready(slot);
    }

    fn sent(&mut self, slot: u32, result: i32) {
        let c = &mut self.conns[slot as usize];
        c.send_busy = false;
        if result <= 0 {
            return self.abort(slot, Failure::Write);
        }
        let off = c.send_off + result as usize;
        if off < c.send_end {
            let end = c.send_end;
            return self.issue_send(slot, off, end);
        }
        if c.pending > 0 {
            let len = c.pending as usize * self.plan.request_len;
            c.pending = 0;
            self.issue_send(slot, 0, len);
        }
    }

    fn received(&mut self, slot: u32, comp: Completion) {
        if let Some(id) = comp.buffer {
            let n = usize::try_from(comp.result).unwrap_or(0);
            let outcome = self.parse(slot, id, n);
            self.driver.release_buffer(id);
            if let Err(kind) = outcome {
                return self.abort(slot, kind);
            }
            let c = &self.conns[slot as usize];
            if c.parser.must_close() {
                return self.finish_conn(slot);
            }
            if c.outstanding == 0 && c.pending == 0 {
                if self.plan.close {
                    return self.finish_conn(slot);
                }
                self.ready(slot);
            }
        }
        if comp.more {
            return;
        }
        let c = &mut self.conns[slot as usize];
        if c.generation != comp.token.generation() || c.state != State::Open {
            return; // closed while handling the data above
        }
        c.recv_armed = false;
        match comp.result {
            0 => match c.parser.eof() {
                AtEof::Completed(status) => match self.eof_response(slot, status) {
                    Ok(()) => self.finish_conn(slot),
                    Err(kind) => self.abort(slot, kind),
                },
                AtEof::Truncated => self.abort(slot, Failure::Read),
                AtEof::Idle if c.outstanding > 0 => self.abort(slot, Failure::Read),
                AtEof::Idle => self.reopen(slot),
            },
            r if r == -libc::ENOBUFS || r > 0 => {
                c.recv_armed = true;
                let token = c.token(OP_RECV, slot);
                self.driver.recv_multi(c.fd, token);
                self.ops += 1;
            }
            _ if c.outstanding > 0 => self.abort(slot, Failure::Read),
            _ => self.reopen(slot),
        }
    }

    /// The connection is done (the server closes it, or `--close`): what is still
    /// outstanding goes back to the quota, and the connection is re-opened.
    fn finish_conn(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        let fresh = c.outstanding - c.warm;
        self.in_flight -= u64::from(c.outstanding);
        c.outstanding = 0;
        c.warm = 0;
        c.pending = 0;
        self.give_back(u64::from(fresh));
        self.reopen(slot);
    }

    /// Feeds `n` bytes of buffer `id` to `slot`'s parser and counts the responses.
    fn parse(&mut self, slot: u32, id: u16, n: usize) -> Result<(), Failure> {
        let Worker {
            driver,
            conns,
            stats,
            in_flight,
            recording,
            now,
            sec,
            ..
        } = self;
        let (recording, sec) = (*recording, *sec);
        let data = driver.buffer(id, n);
        if recording {
            stats.bytes += n as u64;
            stats.second(sec).bytes += n as u64;
        }
        let Conn {
            parser,
            outstanding,
            warm,
            planned_at,
            sent_at,
            ..
        } = &mut conns[slot as usize];
        let latency = micros(now.saturating_duration_since(*planned_at));
        let uncorrected = micros(now.saturating_duration_since(*sent_at));
        let mut unexpected = false;
        let fed = parser.feed(data, |status| {
            if *outstanding == 0 {
                unexpected = true; // a response nobody asked for
                return;
            }
            *outstanding -= 1;
            *in_flight -= 1;
            if *warm > 0 {
                *warm -= 1;
            } else if recording {
                record(stats, status, latency, uncorrected, sec);
            }
        });
        if fed.is_err() || unexpected {
            return Err(Failure::Parse);
        }
        Ok(())
    }

    /// One response completed by the end of the connection.
    fn eof_response(&mut self, slot: u32, status: u16) -> Result<(), Failure> {
        let c = &mut self.conns[slot as usize];
        if c.outstanding == 0 {
            return Err(Failure::Parse);
        }
        c.outstanding -= 1;
        self.in_flight -= 1;
        if c.warm > 0 {
            c.warm -= 1;
        } else if self.recording {
            let latency = micros(self.now.saturating_duration_since(c.planned_at));
            let uncorrected = micros(self.now.saturating_duration_since(c.sent_at));
            record(&mut self.stats, status, latency, uncorrected, self.sec);
        }
        Ok(())
    }

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

/// Counts one response of the measured period.
#[inline]
fn record(stats: &mut Stats, status: u16, latency: u64, uncorrected: u64, sec: usize) {
    stats.latency.saturating_record(latency);
    if let Some(h) = &mut stats.uncorrected {
        h.saturating_record(uncorrected);
    }
    if let Some(n) = stats.status.get_mut(usize::from(status)) {
        *n += 1;
    }
    stats.responses += 1;
    stats.second(sec).responses += 1;
}

#[inline]
fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// A new non-blocking, close-on-exec stream socket (TCP with Nagle off).
fn new_socket(family: libc::c_int) -> io::Result<RawFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // SAFETY: fcntl and setsockopt on the socket just created; `one` outlives the call.
        unsafe {
            let one: libc::c_int = 1;
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    if family != libc::AF_UNIX {
        let one: libc::c_int = 1;
        // SAFETY: `one` outlives the call and its size is passed with it.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    Ok(fd)
}
