//! The master process: forks the workers and supervises them. It replaces a worker that
//! dies or stops turning its event loop (`--timeout`), and turns signals into actions:
//! SIGTERM/SIGINT stop gracefully, SIGQUIT at once, SIGHUP starts fresh workers and then
//! retires the old ones, SIGTTIN/SIGTTOU add and remove a worker. It also serves the status
//! page and polls for `--reload`.

use crate::listen::{Address, Endpoint, Listener};
use crate::pylog::Log;
use crate::reload::Watcher;
use crate::scoreboard::{Scoreboard, MAX_WORKERS};
use crate::status::{Snapshot, StatusServer, WorkerStatus};
use evserver_platform::process::{self, Exit};
use evserver_platform::signals::{Disposition, SignalPipe};
use pyo3::prelude::*;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A worker's exit status when it could not start (the application did not load).
pub const EXIT_BOOT_FAILURE: i32 = 3;

/// How long the master sleeps at most between looks at its workers.
const TICK: Duration = Duration::from_millis(250);
/// A worker that dies sooner than this after it started is restarted after a pause that
/// doubles each time (up to `MAX_RESPAWN_DELAY`), so a crash loop cannot spin.
const QUICK_DEATH: Duration = Duration::from_secs(2);
const MAX_RESPAWN_DELAY: Duration = Duration::from_secs(10);
/// How often `--reload` looks at the files.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// The listeners of one `-l` address: one per worker slot (SO_REUSEPORT) or one shared.
enum Socket {
    PerSlot {
        address: Address,
        backlog: i32,
        by_slot: Vec<Option<Listener>>,
    },
    Shared(Listener),
}

/// Every listening socket, held by the master for the workers' whole lives: a replaced
/// worker's successor accepts from the same socket, so no queued connection is lost.
pub struct Sockets {
    sockets: Vec<Socket>,
}

impl Sockets {
    /// Binds every address for `slots` workers. TCP addresses get one SO_REUSEPORT listener
    /// per worker on Linux; unix sockets (and TCP elsewhere) one listener for all.
    pub fn bind(
        addresses: &[(String, Address)],
        backlog: i32,
        slots: usize,
    ) -> Result<Sockets, String> {
        let per_slot = cfg!(target_os = "linux");
        let mut sockets = Vec::new();
        for (text, address) in addresses {
            let socket = match address {
                Address::Tcp(addr) if per_slot => {
                    // SO_REUSEPORT would let us share a port another server listens on:
                    // a plain bind first tells whether it is taken.
                    if addr.port() != 0 {
                        drop(
                            Listener::bind(address, 1, false)
                                .map_err(|e| format!("cannot listen on {text}: {e}"))?,
                        );
                    }
                    let first = Listener::bind(address, backlog, true)
                        .map_err(|e| format!("cannot listen on {text}: {e}"))?;
                    // Port 0 picked a port: the other slots bind that one.
                    let actual = first.address.clone();
                    let mut socket = Socket::PerSlot {
                        address: actual,
                        backlog,
                        by_slot: vec![Some(first)],
                    };
                    for slot in 1..slots {
                        Self::open_slot(&mut socket, slot)
                            .map_err(|e| format!("cannot listen on {text}: {e}"))?;
                    }
                    socket
                }
                _ => Socket::Shared(
                    Listener::bind(address, backlog, false)
                        .map_err(|e| format!("cannot listen on {text}: {e}"))?,
                ),
            };
            sockets.push(socket);
        }
        Ok(Sockets { sockets })
    }

    fn open_slot(socket: &mut Socket, slot: usize) -> std::io::Result<()> {
        if let Socket::PerSlot {
            address,
            backlog,
            by_slot,
        } = socket
        {
            if by_slot.len() <= slot {
                by_slot.resize_with(slot + 1, || None);
            }
            if by_slot[slot].is_none() {
                by_slot[slot] = Some(Listener::bind(address, *backlog, true)?);
            }
        }
        Ok(())
    }

    /// Makes sure worker slot `slot` has its listeners (SIGTTIN beyond the first workers).
    pub fn ensure_slot(&mut self, slot: usize) -> std::io::Result<()> {
        for socket in &mut self.sockets {
            Self::open_slot(socket, slot)?;
        }
        Ok(())
    }

    /// Closes the listeners of a slot no worker uses any more (SIGTTOU).
    pub fn release_slot(&mut self, slot: usize) {
        for socket in &mut self.sockets {
            if let Socket::PerSlot { by_slot, .. } = socket {
                if let Some(entry) = by_slot.get_mut(slot) {
                    *entry = None;
                }
            }
        }
    }

    /// The listeners a worker in `slot` accepts from, in `-l` order.
    pub fn endpoints(&self, slot: usize) -> Vec<Endpoint> {
        self.sockets
            .iter()
            .filter_map(|socket| match socket {
                Socket::PerSlot { by_slot, .. } => by_slot
                    .get(slot)
                    .and_then(Option::as_ref)
                    .map(Listener::endpoint),
                Socket::Shared(l) => Some(l.endpoint()),
            })
            .collect()
    }

    /// Every listener fd not used by `slot` (a worker closes them).
    pub fn foreign_fds(&self, slot: usize) -> Vec<RawFd> {
        let mut fds = Vec::new();
        for socket in &self.sockets {
            if let Socket::PerSlot { by_slot, .. } = socket {
                for (i, l) in by_slot.iter().enumerate() {
                    if let (true, Some(l)) = (i != slot, l) {
                        fds.push(l.fd());
                    }
                }
            }
        }
        fds
    }

    /// The addresses for the ready line.
    pub fn display(&self) -> Vec<String> {
        self.sockets
            .iter()
            .map(|socket| match socket {
                Socket::PerSlot { address, .. } => address.display(),
                Socket::Shared(l) => l.display(),
            })
            .collect()
    }
}

/// Where a new worker stands: its listener slot, its scoreboard cell and the pipe on which
/// it tells the master it accepts connections.
pub struct Assignment {
    pub slot: usize,
    pub cell: usize,
    pub ready: RawFd,
}

/// How the master runs a worker process (everything but the supervision).
pub trait WorkerBody {
    /// Runs in the forked child until the worker stops; returns its exit status. It must
    /// write a byte to `at.ready` once it accepts connections.
    fn run(&self, py: Python<'_>, at: Assignment, sockets: &Sockets) -> i32;
}

/// Supervision settings.
pub struct Supervision {
    pub workers: usize,
    pub timeout: Option<Duration>,
    pub graceful_timeout: Duration,
    pub reload_roots: Option<Vec<std::path::PathBuf>>,
    pub backend: &'static str,
    /// Install signal handlers (only the main thread may).
    pub handle_signals: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Forked, loading the application.
    Booting,
    Running,
    /// Told to stop (retired by SIGHUP or SIGTTOU, or the whole server stops).
    Stopping,
}

struct Child {
    pid: i32,
    slot: usize,
    cell: usize,
    phase: Phase,
    ready_fd: RawFd,
    started: Instant,
    /// Part of the generation a SIGHUP (or --reload) is starting.
    next_generation: bool,
    /// Killed for not turning its loop (`--timeout`).
    timed_out: bool,
}

enum Stop {
    Graceful(Instant),
    Immediate,
}

/// The supervisor's state.
pub struct Master<'py, B: WorkerBody> {
    py: Python<'py>,
    log: Log,
    body: B,
    sockets: Sockets,
    board: Rc<Scoreboard>,
    settings: Supervision,
    children: Vec<Child>,
    /// Slots waiting to be (re)started, with when.
    pending: Vec<(usize, Instant)>,
    /// Consecutive quick deaths, for the respawn delay.
    quick_deaths: u32,
    desired: usize,
    started: Instant,
    restarts: u64,
    stop: Option<Stop>,
    announced: bool,
    reloading: bool,
    status: Option<StatusServer>,
    watcher: Option<Watcher>,
    next_reload_poll: Instant,
    master_pid: u32,
}

/// Why the master ended without serving.
pub struct BootFailed;

impl<'py, B: WorkerBody> Master<'py, B> {
    pub fn new(
        py: Python<'py>,
        log: Log,
        body: B,
        sockets: Sockets,
        board: Rc<Scoreboard>,
        settings: Supervision,
        status: Option<StatusServer>,
    ) -> Master<'py, B> {
        let mut settings = settings;
        let watcher = settings.reload_roots.take().map(Watcher::new);
        let now = Instant::now();
        Master {
            py,
            log,
            body,
            sockets,
            board,
            desired: settings.workers,
            settings,
            children: Vec::new(),
            pending: Vec::new(),
            quick_deaths: 0,
            started: now,
            restarts: 0,
            stop: None,
            announced: false,
            reloading: false,
            status,
            watcher,
            next_reload_poll: now + RELOAD_POLL,
            master_pid: std::process::id(),
        }
    }

    /// Starts the workers and supervises them until the server stops.
    pub fn run(&mut self) -> Result<(), BootFailed> {
        let signals = if self.settings.handle_signals {
            SignalPipe::install(&[
                (libc::SIGTERM, Disposition::Catch),
                (libc::SIGINT, Disposition::Catch),
                (libc::SIGQUIT, Disposition::Catch),
                (libc::SIGHUP, Disposition::Catch),
                (libc::SIGTTIN, Disposition::Catch),
                (libc::SIGTTOU, Disposition::Catch),
                (libc::SIGCHLD, Disposition::Catch),
            ])
        } else {
            SignalPipe::install(&[(libc::SIGCHLD, Disposition::Catch)])
        };
        let signals = match signals {
            Ok(s) => s,
            Err(e) => {
                eprintln!("evserver: error: cannot install signal handlers: {e}");
                return Err(BootFailed);
            }
        };
        if let Some(watcher) = &self.watcher {
            self.log.info(
                self.py,
                &format!("--reload: watching {} Python files", watcher.file_count()),
            );
        }
        // The first worker boots alone, so an application that cannot load says so once.
        self.spawn(0, false);
        let result = self.supervise(&signals);
        drop(signals);
        result
    }

    fn supervise(&mut self, signals: &SignalPipe) -> Result<(), BootFailed> {
        loop {
            let mut fds = vec![signals.fd()];
            if let Some(status) = &self.status {
                fds.push(status.fd());
            }
            let first_ready = fds.len();
            let booting: Vec<usize> = (0..self.children.len())
                .filter(|&i| {
                    self.children[i].phase == Phase::Booting && self.children[i].ready_fd >= 0
                })
                .collect();
            fds.extend(booting.iter().map(|&i| self.children[i].ready_fd));
            let wait = TICK.as_millis() as i32;
            let readable = self
                .py
                .detach(|| process::wait_readable(&fds, wait))
                .unwrap_or_else(|_| vec![false; fds.len()]);
            if readable[0] {
                for sig in signals.take() {
                    self.on_signal(sig);
                }
            }
            for (k, &i) in booting.iter().enumerate() {
                if readable[first_ready + k] {
                    self.on_ready_pipe(i);
                }
            }
            if self.status.is_some() && readable[1] {
                self.serve_status();
            }
            self.reap()?;
            self.check_timeouts();
            self.start_pending();
            self.poll_reload();
            match self.stop {
                Some(_) if self.children.is_empty() => return Ok(()),
                Some(Stop::Graceful(deadline)) if Instant::now() >= deadline => {
                    for child in &self.children {
                        self.log.warning(
                            self.py,
                            &format!(
                                "worker {} (pid {}) did not stop within --graceful-timeout; killing it",
                                child.slot + 1,
                                child.pid
                            ),
                        );
                        let _ = process::send_signal(child.pid, libc::SIGKILL);
                    }
                    self.stop = Some(Stop::Immediate);
                }
                _ => {}
            }
        }
    }

    // ---- starting workers --------------------------------------------------------------

    fn free_cell(&self) -> Option<usize> {
        (0..MAX_WORKERS).find(|c| !self.children.iter().any(|ch| ch.cell == *c))
    }

    /// Forks a worker for `slot`.
    fn spawn(&mut self, slot: usize, next_generation: bool) {
        let Some(cell) = self.free_cell() else {
            self.log
                .error(self.py, "no free scoreboard cell; not starting a worker");
            return;
        };
        if let Err(e) = self.sockets.ensure_slot(slot) {
            self.log.error(
                self.py,
                &format!("cannot open the listeners of worker {}: {e}", slot + 1),
            );
            return;
        }
        let (ready_r, ready_w) = match process::pipe() {
            Ok(p) => p,
            Err(e) => {
                self.log
                    .error(self.py, &format!("cannot start a worker: {e}"));
                return;
            }
        };
        flush_python_streams(self.py);
        let pid = match fork(self.py) {
            Ok(pid) => pid,
            Err(e) => {
                self.log
                    .error(self.py, &format!("cannot fork a worker: {e}"));
                evserver_platform::sys::close(ready_r);
                evserver_platform::sys::close(ready_w);
                self.pending
                    .push((slot, Instant::now() + Duration::from_secs(1)));
                return;
            }
        };
        if pid == 0 {
            // The child: never returns into the caller's code.
            evserver_platform::sys::close(ready_r);
            for child in &self.children {
                if child.ready_fd >= 0 {
                    evserver_platform::sys::close(child.ready_fd);
                }
            }
            if let Some(status) = &self.status {
                evserver_platform::sys::close(status.fd());
            }
            if let Some(c) = self.board.get(cell) {
                c.reset(std::process::id());
            }
            let code = if process::parent_pid() as u32 != self.master_pid {
                0
            } else {
                self.body.run(
                    self.py,
                    Assignment {
                        slot,
                        cell,
                        ready: ready_w,
                    },
                    &self.sockets,
                )
            };
            exit_child(self.py, code);
        }
        evserver_platform::sys::close(ready_w);
        self.children.push(Child {
            pid,
            slot,
            cell,
            phase: Phase::Booting,
            ready_fd: ready_r,
            started: Instant::now(),
            next_generation,
            timed_out: false,
        });
    }

    fn on_ready_pipe(&mut self, index: usize) {
        let child = &mut self.children[index];
        let mut bytes = Vec::new();
        let closed = process::drain_pipe(child.ready_fd, &mut bytes);
        if bytes.is_empty() && !closed {
            return;
        }
        evserver_platform::sys::close(child.ready_fd);
        child.ready_fd = -1;
        if bytes.is_empty() {
            return; // closed without a byte: it exits; reap() reports why
        }
        if child.phase == Phase::Booting {
            child.phase = Phase::Running;
        }
        let (slot, pid) = (child.slot, child.pid);
        self.log
            .debug(self.py, &format!("worker {} booted (pid {pid})", slot + 1));
        self.quick_deaths = 0;
        if !self.announced {
            if slot == 0 && self.children.len() == 1 {
                for s in 1..self.desired {
                    self.spawn(s, false);
                }
            }
            if self.children.iter().all(|c| c.phase == Phase::Running) {
                self.announce();
            }
        }
        if self.reloading
            && self
                .children
                .iter()
                .filter(|c| c.next_generation)
                .all(|c| c.phase == Phase::Running)
        {
            self.finish_reload();
        }
    }

    fn announce(&mut self) {
        self.announced = true;
        let workers = self.children.len();
        eprintln!(
            "evserver: ready on {} (backend {}, {workers} worker{}, pid {})",
            self.sockets.display().join(", "),
            self.settings.backend,
            if workers == 1 { "" } else { "s" },
            self.master_pid
        );
        flush_python_streams(self.py);
    }

    fn start_pending(&mut self) {
        if self.stop.is_some() {
            self.pending.clear();
            return;
        }
        let now = Instant::now();
        let due: Vec<usize> = self
            .pending
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(slot, _)| *slot)
            .collect();
        self.pending.retain(|(_, at)| *at > now);
        for slot in due {
            if slot < self.desired
                && !self
                    .children
                    .iter()
                    .any(|c| c.slot == slot && c.phase != Phase::Stopping)
            {
                self.restarts += 1;
                self.spawn(slot, false);
            }
        }
    }

    // ---- workers that end ------------------------------------------------------------------

    /// Reaps workers that exited; fails when the server cannot start at all.
    fn reap(&mut self) -> Result<(), BootFailed> {
        let mut i = 0;
        while i < self.children.len() {
            let pid = self.children[i].pid;
            let exit = match try_reap(pid) {
                Some(exit) => exit,
                None => {
                    i += 1;
                    continue;
                }
            };
            let child = self.children.remove(i);
            if child.ready_fd >= 0 {
                evserver_platform::sys::close(child.ready_fd);
            }
            if let Some(c) = self.board.get(child.cell) {
                c.pid.store(0, Relaxed);
            }
            if !self.announced && self.stop.is_none() {
                // The first workers could not start: the worker already said why.
                self.stop_all(libc::SIGTERM);
                self.wait_all();
                return Err(BootFailed);
            }
            self.on_exit(child, exit);
        }
        Ok(())
    }

    fn on_exit(&mut self, child: Child, exit: Exit) {
        let name = format!("worker {} (pid {})", child.slot + 1, child.pid);
        let expected = child.phase == Phase::Stopping || self.stop.is_some();
        if child.phase == Phase::Booting && exit == Exit::Status(EXIT_BOOT_FAILURE) {
            self.log.error(
                self.py,
                &format!("{name} failed to boot: the application did not load"),
            );
        } else if child.timed_out {
            self.log.error(
                self.py,
                &format!("{name} was killed after --timeout ({exit})"),
            );
        } else if expected || exit == Exit::Status(0) {
            self.log.info(self.py, &format!("{name} exited ({exit})"));
        } else {
            self.log.error(
                self.py,
                &format!("{name} died unexpectedly ({exit}); starting a new one"),
            );
        }
        if child.next_generation && self.reloading && child.phase == Phase::Booting {
            self.abort_reload(&name);
            return;
        }
        if child.phase == Phase::Stopping || self.stop.is_some() {
            if child.slot >= self.desired && !self.children.iter().any(|c| c.slot == child.slot) {
                self.sockets.release_slot(child.slot);
            }
            return;
        }
        let delay = if child.started.elapsed() < QUICK_DEATH {
            self.quick_deaths += 1;
            Duration::from_millis(100 << self.quick_deaths.min(7)).min(MAX_RESPAWN_DELAY)
        } else {
            self.quick_deaths = 0;
            Duration::ZERO
        };
        self.pending.push((child.slot, Instant::now() + delay));
    }

    fn check_timeouts(&mut self) {
        let Some(timeout) = self.settings.timeout else {
            return;
        };
        let now = process::monotonic_millis();
        for child in &mut self.children {
            if child.phase != Phase::Running || child.timed_out {
                continue;
            }
            let Some(cell) = self.board.get(child.cell) else {
                continue;
            };
            let beat = cell.heartbeat_ms.load(Relaxed);
            if now.saturating_sub(beat) > timeout.as_millis() as u64 {
                self.log.error(
                    self.py,
                    &format!(
                        "worker {} (pid {}) has not turned its event loop for {} s (stuck in the application?); killing it",
                        child.slot + 1,
                        child.pid,
                        now.saturating_sub(beat) / 1000
                    ),
                );
                child.timed_out = true;
                let _ = process::send_signal(child.pid, libc::SIGKILL);
            }
        }
    }

    // ---- signals ---------------------------------------------------------------------------

    fn on_signal(&mut self, sig: i32) {
        match sig {
            libc::SIGTERM | libc::SIGINT if self.stop.is_none() => {
                self.log.info(
                    self.py,
                    &format!(
                        "{}: stopping gracefully (up to {} s)",
                        process::signal_name(sig),
                        self.settings.graceful_timeout.as_secs()
                    ),
                );
                self.stop = Some(Stop::Graceful(
                    Instant::now() + self.settings.graceful_timeout,
                ));
                self.stop_all(libc::SIGTERM);
            }
            libc::SIGQUIT | libc::SIGINT => {
                // SIGINT while stopping gracefully (a second Ctrl-C) stops at once too.
                self.log.info(
                    self.py,
                    &format!("{}: stopping now", process::signal_name(sig)),
                );
                self.stop = Some(Stop::Immediate);
                self.stop_all(libc::SIGQUIT);
            }
            libc::SIGHUP => self.begin_reload("SIGHUP"),
            libc::SIGTTIN if self.stop.is_none() && self.desired < MAX_WORKERS => {
                self.desired += 1;
                self.log
                    .info(self.py, &format!("SIGTTIN: {} workers", self.desired));
                self.spawn(self.desired - 1, self.reloading);
            }
            libc::SIGTTOU if self.stop.is_none() && self.desired > 1 => {
                self.desired -= 1;
                self.log
                    .info(self.py, &format!("SIGTTOU: {} workers", self.desired));
                let slot = self.desired;
                for child in &mut self.children {
                    if child.slot == slot && child.phase != Phase::Stopping {
                        child.phase = Phase::Stopping;
                        let _ = process::send_signal(child.pid, libc::SIGTERM);
                    }
                }
            }
            _ => {}
        }
    }

    fn stop_all(&mut self, sig: i32) {
        for child in &mut self.children {
            child.phase = Phase::Stopping;
            let _ = process::send_signal(child.pid, sig);
        }
    }

    fn wait_all(&mut self) {
        let deadline = Instant::now() + self.settings.graceful_timeout;
        while !self.children.is_empty() && Instant::now() < deadline {
            self.children.retain(|c| try_reap(c.pid).is_none());
            std::thread::sleep(Duration::from_millis(20));
        }
        for child in self.children.drain(..) {
            let _ = process::send_signal(child.pid, libc::SIGKILL);
        }
    }

    // ---- reloading (SIGHUP, --reload) ------------------------------------------------------

    /// Starts a new generation of workers; the old ones stop gracefully once all new ones
    /// accept connections, so no request is refused meanwhile.
    fn begin_reload(&mut self, why: &str) {
        if self.stop.is_some() || !self.announced {
            return;
        }
        if self.reloading {
            self.log
                .info(self.py, &format!("{why}: a reload is already under way"));
            return;
        }
        self.log.info(
            self.py,
            &format!("{why}: starting {} fresh workers", self.desired),
        );
        self.reloading = true;
        self.pending.clear();
        for slot in 0..self.desired {
            self.spawn(slot, true);
        }
    }

    fn finish_reload(&mut self) {
        self.reloading = false;
        let mut retired = 0;
        for child in &mut self.children {
            if child.next_generation {
                child.next_generation = false;
            } else if child.phase != Phase::Stopping {
                child.phase = Phase::Stopping;
                retired += 1;
                let _ = process::send_signal(child.pid, libc::SIGTERM);
            }
        }
        self.restarts += retired;
        self.log.info(
            self.py,
            &format!("reload done: {retired} old workers stopping gracefully"),
        );
    }

    fn abort_reload(&mut self, name: &str) {
        self.reloading = false;
        self.log.error(
            self.py,
            &format!("reload failed ({name} did not boot); the running workers stay"),
        );
        for child in &mut self.children {
            if child.next_generation {
                child.next_generation = false;
                child.phase = Phase::Stopping;
                let _ = process::send_signal(child.pid, libc::SIGKILL);
            }
        }
    }

    fn poll_reload(&mut self) {
        let now = Instant::now();
        if now < self.next_reload_poll {
            return;
        }
        self.next_reload_poll = now + RELOAD_POLL;
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        if let Some(path) = watcher.changed() {
            let why = format!("{} changed", path.display());
            self.begin_reload(&why);
        }
    }

    // ---- status ----------------------------------------------------------------------------

    fn snapshot(&self) -> Snapshot {
        let now = process::monotonic_millis();
        let mut workers: Vec<WorkerStatus> = self
            .children
            .iter()
            .filter_map(|child| {
                let cell = self.board.get(child.cell)?;
                Some(WorkerStatus {
                    slot: child.slot + 1,
                    pid: child.pid,
                    state: match child.phase {
                        Phase::Booting => "booting",
                        Phase::Running => "running",
                        Phase::Stopping => "stopping",
                    },
                    backend: cell.backend_name(),
                    connections: cell.connections.load(Relaxed),
                    requests: cell.requests.load(Relaxed),
                    parked: cell.parked.load(Relaxed),
                    cpu_seconds: cell.cpu_micros.load(Relaxed) as f64 / 1e6,
                    rss_bytes: cell.rss_bytes.load(Relaxed),
                    heartbeat_age_ms: now.saturating_sub(cell.heartbeat_ms.load(Relaxed)),
                })
            })
            .collect();
        workers.sort_by_key(|w| (w.slot, w.pid));
        Snapshot {
            master_pid: self.master_pid,
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            addresses: self.sockets.display(),
            workers_desired: self.desired,
            restarts: self.restarts,
            workers,
        }
    }

    fn serve_status(&mut self) {
        let snapshot = self.snapshot();
        if let Some(status) = &self.status {
            let py = self.py;
            py.detach(|| status.serve_pending(&snapshot));
        }
    }
}

fn try_reap(pid: i32) -> Option<Exit> {
    process::reap(pid).ok().flatten()
}

/// Forks through Python's `os.fork`, which keeps the interpreter consistent in the child
/// (its locks, threads and `os.register_at_fork` hooks).
fn fork(py: Python<'_>) -> PyResult<i32> {
    py.import("os")?.call_method0("fork")?.extract()
}

fn flush_python_streams(py: Python<'_>) {
    if let Ok(sys) = py.import("sys") {
        for name in ["stdout", "stderr"] {
            if let Ok(stream) = sys.getattr(name) {
                let _ = stream.call_method0("flush");
            }
        }
    }
}

/// Ends a worker process: flushes Python's logging and streams, then `os._exit`, so no
/// code of the parent's caller runs in the child.
fn exit_child(py: Python<'_>, code: i32) -> ! {
    if let Ok(logging) = py.import("logging") {
        let _ = logging.call_method0("shutdown");
    }
    flush_python_streams(py);
    // SAFETY: _exit ends the process at once; nothing is left to unwind that matters.
    unsafe { libc::_exit(code) }
}
