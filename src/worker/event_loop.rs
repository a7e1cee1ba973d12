//! The worker's event loop: one thread that holds the GIL except while it waits in the kernel,
//! handing each completion to the room that handles its operation.

use super::op::Op;
use super::slots::Slots;
use super::Settings;
use crate::listen::Endpoint;
use crate::log::Log;
use crate::scoreboard::{CellRef, BACKEND_IO_URING, BACKEND_POLL};
use crate::wsgi::app::App;
use crate::wsgi::fdevent::Waits;
use crate::wsgi::response::Ctx;
use crate::wsgi::template::{self, ListenerInfo, Shared};
use evserver_http::DateCache;
use evserver_platform::{Completion, Driver, Interest};
use pyo3::prelude::*;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// How often timeouts are checked.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// A listener the worker accepts from.
pub(super) struct ListenerState {
    pub fd: RawFd,
    pub armed: bool,
}

/// One worker: the driver, the listeners, the connections and the application.
pub struct Worker<'py> {
    pub(super) py: Python<'py>,
    pub(super) driver: Driver,
    pub(super) app: App,
    /// The loop thread's fdevent wait slot, which the application's waits are recorded in.
    waits: Waits,
    pub(super) settings: Settings,
    pub(super) listeners: Vec<ListenerState>,
    pub(super) slots: Slots,
    completions: Vec<Completion>,
    pub(super) log: Log,
    pub(super) date: DateCache,
    pub(super) now: Instant,
    next_sweep: Instant,
    pub(super) stop: bool,
    /// A signal handler's exception, to end the loop with.
    signal_error: Option<PyErr>,
    /// The read end of the signal pipe (signal numbers as bytes).
    pub(super) signal_fd: Option<RawFd>,
    /// Stopping gracefully since this instant; the loop ends when no connection is left or
    /// the graceful timeout passes.
    pub(super) draining: Option<Instant>,
    /// Accepting is paused because `max_connections` are open.
    pub(super) accept_paused: bool,
    pub(super) open_connections: usize,
    pub(super) requests_served: u64,
    pub(super) scoreboard: Option<CellRef>,
    /// The master's pid: a worker whose parent changed lost its master and stops.
    pub(super) master_pid: Option<i32>,
}

impl<'py> Worker<'py> {
    pub fn new(
        py: Python<'py>,
        driver: Driver,
        app: Bound<'py, PyAny>,
        listeners: Vec<Endpoint>,
        settings: Settings,
        log: Log,
        multiprocess: bool,
    ) -> PyResult<Worker<'py>> {
        let infos: Vec<ListenerInfo> = listeners
            .iter()
            .map(|l| {
                let (server_name, server_port) = l.server_name_and_port();
                ListenerInfo {
                    server_name,
                    server_port,
                }
            })
            .collect();
        let shared = Shared {
            multiprocess,
            multithread: false,
        };
        let templates = template::templates(py, &infos, &shared)?;
        let now = Instant::now();
        Ok(Worker {
            py,
            driver,
            app: App::new(py, app.unbind(), templates)?,
            waits: Waits::of_this_thread(),
            settings,
            listeners: listeners
                .into_iter()
                .map(|l| ListenerState {
                    fd: l.fd,
                    armed: false,
                })
                .collect(),
            slots: Slots::default(),
            completions: Vec::with_capacity(1024),
            log,
            date: DateCache::new(),
            now,
            next_sweep: now + SWEEP_INTERVAL,
            stop: false,
            signal_error: None,
            signal_fd: None,
            draining: None,
            accept_paused: false,
            open_connections: 0,
            requests_served: 0,
            scoreboard: None,
            master_pid: None,
        })
    }

    /// Watches `fd`, the read end of a pipe that receives signal numbers as bytes: SIGTERM
    /// and SIGINT stop gracefully, SIGQUIT at once.
    pub fn set_signal_fd(&mut self, fd: RawFd) {
        self.signal_fd = Some(fd);
    }

    /// Makes the worker stop gracefully when its parent is no longer `pid` (where the
    /// kernel's parent-death signal does not exist).
    pub fn set_master_pid(&mut self, pid: i32) {
        self.master_pid = Some(pid);
    }

    /// Reports the heartbeat and figures into `cell` for the master.
    pub fn set_scoreboard(&mut self, cell: CellRef) {
        let backend = if self.driver.name() == "io_uring" {
            BACKEND_IO_URING
        } else {
            BACKEND_POLL
        };
        cell.get()
            .backend
            .store(backend, std::sync::atomic::Ordering::Relaxed);
        self.scoreboard = Some(cell);
        // A first beat now: loading the application may have taken longer than --timeout.
        self.report_figures();
    }

    /// Runs until a signal handler raises (SIGINT, SIGTERM) or the application asks to stop.
    pub fn run(&mut self) -> PyResult<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        if let Some(fd) = self.signal_fd {
            self.driver
                .poll_fd(fd, Interest::Readable, None, Op::Signal.token(0, 0));
        }
        let mut result = Ok(());
        while !self.stop {
            let timeout = self.next_sweep.saturating_duration_since(self.now);
            // SAFETY: the GIL is released only around the kernel wait, during which this
            // thread touches no Python object; it is re-acquired before anything else.
            let waited = unsafe {
                let state = pyo3::ffi::PyEval_SaveThread();
                let r = self.driver.wait(Some(timeout));
                pyo3::ffi::PyEval_RestoreThread(state);
                r
            };
            if let Err(e) = waited {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    self.check_signals();
                } else {
                    result = Err(e.into());
                    break;
                }
            }
            self.now = Instant::now();
            self.date.refresh_at(self.now);
            let mut completions = std::mem::take(&mut self.completions);
            self.driver.drain(&mut completions);
            for c in completions.drain(..) {
                self.on_completion(c);
                if self.stop {
                    break;
                }
            }
            completions.clear();
            self.completions = completions;
            if self.now >= self.next_sweep {
                self.sweep();
                self.next_sweep = self.now + SWEEP_INTERVAL;
            }
            self.check_drained();
        }
        self.shutdown();
        match self.signal_error.take() {
            Some(err) if !is_stop_signal(self.py, &err) => Err(err),
            _ => result,
        }
    }

    /// Runs `f` with the context a response needs; a stop the application asked for
    /// (KeyboardInterrupt, SystemExit) stops the loop.
    pub(super) fn with_ctx<R>(
        &mut self,
        f: impl FnOnce(Python<'py>, &mut App, &mut Ctx<'_>) -> R,
    ) -> R {
        let mut stop = false;
        let result = {
            let mut ctx = Ctx {
                log: &self.log,
                waits: &self.waits,
                date: self.date.get(),
                stop_requested: &mut stop,
            };
            f(self.py, &mut self.app, &mut ctx)
        };
        if stop {
            self.stop = true;
        }
        result
    }

    /// Runs Python's signal handlers; an exception they raise stops the loop.
    fn check_signals(&mut self) {
        if let Err(err) = self.py.check_signals() {
            self.signal_error = Some(err);
            self.stop = true;
        }
    }

    fn on_completion(&mut self, c: Completion) {
        let op = match Op::of(c.token) {
            Some(Op::Accept) => return self.on_accept(c),
            Some(Op::Signal) => return self.on_signal_pipe(c),
            Some(op) => op,
            None => return,
        };
        let Some(mut conn) = self.slots.take(c.token) else {
            // A stale completion of a freed slot carries nothing to act on, but a provided
            // buffer must still go back.
            if let Some(id) = c.buffer {
                self.driver.release_buffer(id);
            }
            return;
        };
        if !c.more {
            // A multishot recv keeps its operation until its final completion.
            conn.ops -= 1;
        }
        let slot = c.token.slot();
        match op {
            Op::Recv => self.on_recv(slot, &mut conn, c),
            Op::Send => self.on_send(slot, &mut conn, c),
            Op::Writable => self.on_writable(slot, &mut conn, c),
            Op::Wait(index) => self.on_wait(slot, &mut conn, index, c.result),
            Op::Accept | Op::Signal => {}
        }
        self.put_conn(slot, conn);
    }

    /// Puts a connection back in its slot, or frees the slot once it is closed and the
    /// kernel holds nothing of it.
    pub(super) fn put_conn(&mut self, slot: u32, conn: Box<super::conn::Conn>) {
        if conn.is_closed() && conn.ops == 0 {
            self.slots.free(slot);
            drop(conn);
            self.open_connections -= 1;
            self.resume_accepting();
        } else {
            self.slots.put(slot, conn);
        }
    }
}

fn is_stop_signal(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
        || err.is_instance_of::<pyo3::exceptions::PySystemExit>(py)
}
