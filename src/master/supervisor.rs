//! The master process: forks the workers and supervises them. It replaces a worker that
//! dies or stops turning its event loop (`--timeout`), and turns signals into actions:
//! SIGTERM/SIGINT stop gracefully, SIGQUIT at once, SIGHUP starts fresh workers and then
//! retires the old ones, SIGTTIN/SIGTTOU add and remove a worker. It also serves the status
//! page and polls for `--reload`.

use super::reload::{Watcher, RELOAD_POLL};
use super::sockets::Sockets;
use super::status::StatusServer;
use crate::log::Log;
use crate::scoreboard::{Scoreboard, MAX_WORKERS};
use evserver_platform::process::{self, Exit};
use evserver_platform::signals::{Disposition, SignalPipe};
use evserver_platform::systemd::Notifier;
use evserver_platform::Interest;
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
    /// systemd's `NOTIFY_SOCKET`, told READY / RELOADING / STOPPING.
    pub notify: Option<Notifier>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    /// Forked, loading the application.
    Booting,
    Running,
    /// Told to stop (retired by SIGHUP or SIGTTOU, or the whole server stops).
    Stopping,
}

pub(super) struct Child {
    pub(super) pid: i32,
    pub(super) slot: usize,
    pub(super) cell: usize,
    pub(super) phase: Phase,
    pub(super) ready_fd: RawFd,
    pub(super) started: Instant,
    /// Part of the generation a SIGHUP (or --reload) is starting.
    pub(super) next_generation: bool,
    /// Killed for not turning its loop (`--timeout`).
    pub(super) timed_out: bool,
}

pub(super) enum Stop {
    Graceful(Instant),
    Immediate,
}

/// The supervisor's state.
pub struct Master<'py, B: WorkerBody> {
    pub(super) py: Python<'py>,
    pub(super) log: Log,
    pub(super) body: B,
    pub(super) sockets: Sockets,
    pub(super) board: Rc<Scoreboard>,
    pub(super) settings: Supervision,
    pub(super) children: Vec<Child>,
    /// Slots waiting to be (re)started, with when.
    pub(super) pending: Vec<(usize, Instant)>,
    /// Consecutive quick deaths, for the respawn delay.
    pub(super) quick_deaths: u32,
    pub(super) desired: usize,
    pub(super) started: Instant,
    pub(super) restarts: u64,
    pub(super) stop: Option<Stop>,
    pub(super) announced: bool,
    pub(super) reloading: bool,
    pub(super) status: Option<StatusServer>,
    pub(super) watcher: Option<Watcher>,
    pub(super) next_reload_poll: Instant,
    pub(super) master_pid: u32,
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
            self.log.info(&format!(
                "--reload: watching {} Python files",
                watcher.file_count()
            ));
        }
        // The first worker boots alone, so an application that cannot load says so once.
        self.spawn(0, false);
        let result = self.supervise(&signals);
        drop(signals);
        result
    }

    fn supervise(&mut self, signals: &SignalPipe) -> Result<(), BootFailed> {
        loop {
            let mut fds = vec![(signals.fd(), Interest::Readable)];
            let booting: Vec<usize> = (0..self.children.len())
                .filter(|&i| {
                    self.children[i].phase == Phase::Booting && self.children[i].ready_fd >= 0
                })
                .collect();
            fds.extend(
                booting
                    .iter()
                    .map(|&i| (self.children[i].ready_fd, Interest::Readable)),
            );
            let first_status = fds.len();
            if let Some(status) = &self.status {
                status.interests(&mut fds);
            }
            let wait = TICK.as_millis() as i32;
            let ready = self
                .py
                .detach(|| process::wait_ready(&fds, wait))
                .unwrap_or_else(|_| vec![false; fds.len()]);
            if ready[0] {
                for sig in signals.take() {
                    self.on_signal(sig);
                }
            }
            for (k, &i) in booting.iter().enumerate() {
                if ready[1 + k] {
                    self.on_ready_pipe(i);
                }
            }
            if let Some(mut status) = self.status.take() {
                status.on_ready(&ready[first_status..], &mut || self.snapshot());
                self.status = Some(status);
            }
            self.reap()?;
            self.check_timeouts();
            self.start_pending();
            self.poll_reload();
            match self.stop {
                Some(_) if self.children.is_empty() => return Ok(()),
                Some(Stop::Graceful(deadline)) if Instant::now() >= deadline => {
                    for child in &self.children {
                        self.log.warning(&format!(
                            "worker {} (pid {}) did not stop within --graceful-timeout; killing it",
                            child.slot + 1,
                            child.pid
                        ));
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
    pub(super) fn spawn(&mut self, slot: usize, next_generation: bool) {
        let Some(cell) = self.free_cell() else {
            self.log
                .error("no free scoreboard cell; not starting a worker");
            return;
        };
        if let Err(e) = self.sockets.ensure_slot(slot) {
            self.log.error(&format!(
                "cannot open the listeners of worker {}: {e}",
                slot + 1
            ));
            return;
        }
        let (ready_r, ready_w) = match process::pipe() {
            Ok(p) => p,
            Err(e) => {
                self.log.error(&format!("cannot start a worker: {e}"));
                return;
            }
        };
        flush_python_streams(self.py);
        let pid = match fork(self.py) {
            Ok(pid) => pid,
            Err(e) => {
                self.log.error(&format!("cannot fork a worker: {e}"));
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
            .debug(&format!("worker {} booted (pid {pid})", slot + 1));
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
        let addresses = self.sockets.display().join(", ");
        let plural = if workers == 1 { "" } else { "s" };
        self.tell_service_manager(&format!(
            "READY=1\nSTATUS=serving on {addresses} with {workers} worker{plural}\nMAINPID={}",
            self.master_pid
        ));
        eprintln!(
            "evserver: ready on {addresses} (backend {}, {workers} worker{plural}, pid {})",
            self.settings.backend, self.master_pid
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
            self.log.error(&format!(
                "{name} failed to boot: the application did not load"
            ));
        } else if child.timed_out {
            self.log
                .error(&format!("{name} was killed after --timeout ({exit})"));
        } else if expected || exit == Exit::Status(0) {
            self.log.info(&format!("{name} exited ({exit})"));
        } else {
            self.log.error(&format!(
                "{name} died unexpectedly ({exit}); starting a new one"
            ));
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
                self.log.error(&format!(
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
