//! `evserver bench --subscribers N`: the fan-out mode. N subscribers (WebSocket, server-sent
//! events or long-poll) listen on one URL; a publisher sends numbered, time-stamped messages
//! at `--rate` (POSTed to a URL, or over the first WebSocket); every delivery's
//! publish-to-receive latency goes into one HdrHistogram, and what never arrived is counted.
//!
//! One thread runs the subscribers on the platform's event loop; a URL publisher is a thread
//! of its own with a blocking connection, so a slow publish never delays reading.

pub mod marker;
mod publisher;
pub mod report;
pub mod subscriber;

use crate::target::Target;
use evserver_platform::{Choice, Completion, Config, ConnectAddr, Driver, Token};
use hdrhistogram::Histogram;
use marker::Marker;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscriber::{Event, Subscriber, Transport};

const OP_CONNECT: u8 = 1;
const OP_SEND: u8 = 2;
const OP_RECV: u8 = 3;

/// Connects in flight at once (more would overflow the server's accept backlog).
const CONNECTING_AT_ONCE: usize = 256;
/// Longest wait for every subscriber to be ready.
const SUBSCRIBE_LIMIT: Duration = Duration::from_secs(60);
/// After the last subscriber is ready, before the first publish: the server parks the last
/// subscriptions meanwhile.
const SETTLE: Duration = Duration::from_millis(300);
/// After the last publish, how long deliveries may still arrive.
const GRACE: Duration = Duration::from_secs(5);

/// Where messages are published.
#[derive(Clone, Debug)]
pub enum Publish {
    /// POSTed to this URL (the body is the message).
    Url(Target),
    /// Sent as text frames over the first subscriber's WebSocket.
    OverWebSocket,
}

/// What a fan-out run does.
pub struct Plan {
    pub addr: ConnectAddr,
    pub host: String,
    pub path: String,
    pub transport: Transport,
    pub subscribers: u32,
    pub publish: Publish,
    /// Messages per second.
    pub rate: f64,
    pub duration: Duration,
    /// Bytes per message (the marker, padded).
    pub message_size: usize,
    pub backend: Choice,
}

/// What a fan-out run counted.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Counts {
    pub subscribers_ready: u32,
    pub subscribers_failed: u32,
    /// The first reason a subscriber failed.
    pub first_failure: Option<String>,
    pub published: u64,
    pub publish_errors: u64,
    pub deliveries: u64,
    /// Deliveries expected (published x subscribers still listening) that never came.
    pub lost: u64,
}

/// What a fan-out run measured.
pub struct Outcome {
    pub backend: &'static str,
    pub counts: Counts,
    /// Publish-to-receive latency of every delivery, in microseconds.
    pub latency: Histogram<u64>,
    /// For each message, when its last delivery arrived (microseconds after its publish).
    pub last_delivery: Histogram<u64>,
    /// From the first publish to the last delivery.
    pub elapsed: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    Failed,
}

struct Sub {
    fd: RawFd,
    state: State,
    proto: Subscriber,
    ready: bool,
    recv_armed: bool,
    /// Bytes waiting to be sent, and the send in flight (kept still until it completes).
    queued: Vec<u8>,
    in_flight: Vec<u8>,
    sent: usize,
    /// The newest message this subscriber got (deliveries are counted once).
    newest: Option<u64>,
}

struct Run<'a> {
    plan: &'a Plan,
    driver: Driver,
    subs: Vec<Sub>,
    origin: Instant,
    opened: usize,
    connecting: usize,
    ready: u32,
    /// Subscribers that failed before they were ready, and after.
    failed: u32,
    failed_after_ready: u32,
    first_failure: Option<String>,
    /// Messages published (the URL publisher's count, or the WebSocket publisher's own).
    published: Arc<AtomicU64>,
    deliveries: u64,
    latency: Histogram<u64>,
    /// Per message: the latest delivery so far, in microseconds.
    last_arrival: Vec<u64>,
}

/// 1 µs to an hour, three significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds that are valid")
}

/// Runs the fan-out: subscribe, publish for `plan.duration`, wait for the stragglers.
pub fn run(plan: &Plan) -> std::io::Result<Outcome> {
    let n = plan.subscribers as usize;
    let config = Config {
        entries: (n * 2).next_power_of_two().clamp(256, 16384) as u32,
        recv_buffer_size: 4096,
        recv_buffer_count: n.next_power_of_two().clamp(64, 16384) as u16,
    };
    let driver = Driver::select(plan.backend, &config)?.driver;
    let subs = (0..n)
        .map(|_| Sub {
            fd: -1,
            state: State::Connecting,
            proto: Subscriber::new(plan.transport, &plan.host, &plan.path),
            ready: false,
            recv_armed: false,
            queued: Vec::new(),
            in_flight: Vec::new(),
            sent: 0,
            newest: None,
        })
        .collect();
    let mut run = Run {
        plan,
        driver,
        subs,
        origin: Instant::now(),
        opened: 0,
        connecting: 0,
        ready: 0,
        failed: 0,
        failed_after_ready: 0,
        first_failure: None,
        published: Arc::new(AtomicU64::new(0)),
        deliveries: 0,
        latency: histogram(),
        last_arrival: Vec::new(),
    };
    run.subscribe()?;
    run.publish_and_collect()
}

impl Run<'_> {
    fn token(slot: usize, op: u8) -> Token {
        Token::new(slot as u32, 0, op)
    }

    /// Opens every subscriber (a bounded number connecting at once) until all are ready or
    /// failed.
    fn subscribe(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + SUBSCRIBE_LIMIT;
        while (self.ready + self.failed) < self.plan.subscribers {
            while self.opened < self.subs.len() && self.connecting < CONNECTING_AT_ONCE {
                self.open(self.opened);
                self.opened += 1;
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "{} of {} subscribers ready after {} s",
                    self.ready,
                    self.plan.subscribers,
                    SUBSCRIBE_LIMIT.as_secs()
                )));
            }
            self.turn(Duration::from_millis(50))?;
        }
        if self.ready == 0 {
            let why = self.first_failure.as_deref().unwrap_or("none connected");
            return Err(std::io::Error::other(format!(
                "no subscriber is ready ({why})"
            )));
        }
        Ok(())
    }

    fn publish_and_collect(mut self) -> std::io::Result<Outcome> {
        let settle_until = Instant::now() + SETTLE;
        while Instant::now() < settle_until {
            self.turn(settle_until.saturating_duration_since(Instant::now()))?;
        }
        let start = Instant::now();
        let end = start + self.plan.duration;
        let interval = Duration::from_secs_f64(1.0 / self.plan.rate);
        let stop = Arc::new(AtomicBool::new(false));
        let (publisher, errors) = match &self.plan.publish {
            Publish::Url(target) => {
                let p = publisher::Url::start(
                    target,
                    self.origin,
                    (start, interval, end),
                    self.plan.message_size,
                    self.published.clone(),
                    stop.clone(),
                );
                (Some(p.0), p.1)
            }
            Publish::OverWebSocket => (None, Arc::new(AtomicU64::new(0))),
        };
        let mut next_ws_publish = start;
        loop {
            let now = Instant::now();
            if matches!(self.plan.publish, Publish::OverWebSocket) && now < end {
                while next_ws_publish <= now {
                    self.publish_over_websocket();
                    next_ws_publish += interval;
                }
            }
            let published = self.published.load(Ordering::Relaxed);
            let expected = published * u64::from(self.listening());
            let publishing_over =
                now >= end && publisher.as_ref().map_or(true, |p| p.is_finished());
            if publishing_over && (self.deliveries >= expected || now >= end + GRACE) {
                break;
            }
            let wait = if now < end {
                next_ws_publish.min(end).saturating_duration_since(now)
            } else {
                Duration::from_millis(20)
            };
            self.turn(wait.max(Duration::from_micros(100)))?;
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(p) = publisher {
            let _ = p.join();
        }
        self.close_all();
        let elapsed = start.elapsed();
        let published = self.published.load(Ordering::Relaxed);
        let mut last_delivery = histogram();
        for &us in self.last_arrival.iter().take(published as usize) {
            if us > 0 {
                let _ = last_delivery.record(us);
            }
        }
        let expected = published * u64::from(self.listening());
        Ok(Outcome {
            backend: self.driver.name(),
            counts: Counts {
                subscribers_ready: self.ready,
                subscribers_failed: self.failed + self.failed_after_ready,
                first_failure: self.first_failure.take(),
                published,
                publish_errors: errors.load(Ordering::Relaxed),
                deliveries: self.deliveries,
                lost: expected.saturating_sub(self.deliveries),
            },
            latency: std::mem::replace(&mut self.latency, histogram()),
            last_delivery,
            elapsed,
        })
    }

    /// Subscribers still listening.
    fn listening(&self) -> u32 {
        self.ready - self.failed_after_ready
    }

    fn publish_over_websocket(&mut self) {
        let seq = self.published.fetch_add(1, Ordering::Relaxed);
        let marker = Marker {
            seq,
            sent_ns: self.origin.elapsed().as_nanos() as u64,
        };
        let frame =
            subscriber::masked_frame(0x1, marker.message(self.plan.message_size).as_bytes());
        if self.subs.first().is_some_and(|s| s.state == State::Open) {
            self.queue(0, &frame);
        }
    }

    fn open(&mut self, slot: usize) {
        let fd = match self.plan.addr.new_socket() {
            Ok(fd) => fd,
            Err(e) => return self.fail(slot, format!("cannot open a socket: {e}")),
        };
        self.subs[slot].fd = fd;
        self.connecting += 1;
        // SAFETY: the address lives in the plan, which outlives the run and its operations.
        unsafe {
            self.driver
                .connect(fd, Self::token(slot, OP_CONNECT), &self.plan.addr)
        };
    }

    fn turn(&mut self, wait: Duration) -> std::io::Result<()> {
        self.driver.wait(Some(wait))?;
        let mut done = Vec::new();
        self.driver.drain(&mut done);
        for c in done {
            self.complete(c);
        }
        Ok(())
    }

    fn complete(&mut self, c: Completion) {
        let slot = c.token.slot() as usize;
        match c.token.op() {
            OP_CONNECT => {
                self.connecting -= 1;
                if c.result < 0 {
                    let err = std::io::Error::from_raw_os_error(-c.result);
                    return self.fail(slot, format!("connect: {err}"));
                }
                self.subs[slot].state = State::Open;
                let opening = self.subs[slot].proto.opening();
                self.queue(slot, &opening);
                self.arm_recv(slot);
            }
            OP_SEND => self.on_sent(slot, c.result),
            OP_RECV => self.on_recv(slot, c),
            _ => {}
        }
    }

    fn arm_recv(&mut self, slot: usize) {
        let s = &mut self.subs[slot];
        if s.state == State::Open && !s.recv_armed {
            s.recv_armed = true;
            self.driver.recv_multi(s.fd, Self::token(slot, OP_RECV));
        }
    }

    fn queue(&mut self, slot: usize, bytes: &[u8]) {
        self.subs[slot].queued.extend_from_slice(bytes);
        self.start_send(slot);
    }

    fn start_send(&mut self, slot: usize) {
        let s = &mut self.subs[slot];
        if s.state != State::Open || !s.in_flight.is_empty() || s.queued.is_empty() {
            return;
        }
        std::mem::swap(&mut s.in_flight, &mut s.queued);
        s.sent = 0;
        let (ptr, len) = (s.in_flight.as_ptr(), s.in_flight.len());
        // SAFETY: `in_flight` is not touched until this send completes.
        unsafe { self.driver.send(s.fd, Self::token(slot, OP_SEND), ptr, len) };
    }

    fn on_sent(&mut self, slot: usize, result: i32) {
        let s = &mut self.subs[slot];
        if s.state != State::Open {
            return;
        }
        if result < 0 {
            let err = std::io::Error::from_raw_os_error(-result);
            return self.fail(slot, format!("send: {err}"));
        }
        s.sent += result as usize;
        if s.sent < s.in_flight.len() {
            let (ptr, len) = (s.in_flight[s.sent..].as_ptr(), s.in_flight.len() - s.sent);
            // SAFETY: as in start_send: the rest of `in_flight` stays still until completion.
            unsafe { self.driver.send(s.fd, Self::token(slot, OP_SEND), ptr, len) };
            return;
        }
        s.in_flight.clear();
        if s.proto.ready_when_sent() && !s.ready {
            s.ready = true;
            self.ready += 1;
        }
        self.start_send(slot);
    }

    fn on_recv(&mut self, slot: usize, c: Completion) {
        if !c.more {
            self.subs[slot].recv_armed = false;
        }
        let mut events = Vec::new();
        if let Some(id) = c.buffer {
            let data = self.driver.buffer(id, c.result.max(0) as usize);
            self.subs[slot].proto.feed(data, |e| events.push(e));
            self.driver.release_buffer(id);
        }
        let now_ns = self.origin.elapsed().as_nanos() as u64;
        for event in events {
            self.on_event(slot, event, now_ns);
        }
        if c.result == 0 {
            return self.fail(slot, "the server closed the connection".into());
        }
        if c.result < 0 && c.result != -libc::ENOBUFS {
            let err = std::io::Error::from_raw_os_error(-c.result);
            return self.fail(slot, format!("recv: {err}"));
        }
        self.arm_recv(slot);
    }

    fn on_event(&mut self, slot: usize, event: Event, now_ns: u64) {
        match event {
            Event::Ready => {
                if !self.subs[slot].ready {
                    self.subs[slot].ready = true;
                    self.ready += 1;
                }
            }
            Event::Delivery(m) => {
                let s = &mut self.subs[slot];
                if s.newest.is_some_and(|n| m.seq <= n) {
                    return; // a repeat (long-poll catching up)
                }
                s.newest = Some(m.seq);
                self.deliveries += 1;
                let us = (now_ns.saturating_sub(m.sent_ns) / 1000).max(1);
                let _ = self.latency.record(us);
                let seq = m.seq as usize;
                if seq < 1 << 24 {
                    if self.last_arrival.len() <= seq {
                        self.last_arrival.resize(seq + 1, 0);
                    }
                    self.last_arrival[seq] = self.last_arrival[seq].max(us);
                }
            }
            Event::Send(bytes) => self.queue(slot, &bytes),
            Event::Failed(why) => self.fail(slot, why),
        }
    }

    fn fail(&mut self, slot: usize, why: String) {
        let s = &mut self.subs[slot];
        if s.state == State::Failed {
            return;
        }
        s.state = State::Failed;
        self.close(slot);
        if self.subs[slot].ready {
            self.failed_after_ready += 1;
        } else {
            self.failed += 1;
        }
        if self.first_failure.is_none() {
            self.first_failure = Some(why);
        }
    }

    /// Closes `slot`'s socket; what it had in flight is cancelled (its completions, which
    /// still arrive, find the subscriber closed).
    fn close(&mut self, slot: usize) {
        let s = &mut self.subs[slot];
        if s.fd < 0 {
            return;
        }
        if s.recv_armed {
            self.driver.cancel(Self::token(slot, OP_RECV));
        }
        if !s.in_flight.is_empty() {
            self.driver.cancel(Self::token(slot, OP_SEND));
        }
        self.driver.close(s.fd);
        s.fd = -1;
    }

    /// Closes every subscriber and gives the kernel a moment to hand back what was in
    /// flight, before the buffers it may still read are dropped.
    fn close_all(&mut self) {
        for slot in 0..self.subs.len() {
            self.close(slot);
            self.subs[slot].state = State::Failed;
        }
        let _ = self.turn(Duration::from_millis(100));
    }
}
