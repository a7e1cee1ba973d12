//! The worker's event loop, handing each completion to the room that handles its operation.
//! Inline (the default), its thread runs the application too and holds the interpreter except
//! while it waits in the kernel; in thread mode it runs detached from the interpreter and a
//! pool of threads runs the application (`pool`).

use super::op::Op;
use super::pool::job::Returned;
use super::pool::{Pool, ThreadSetup};
use super::slots::Slots;
use super::Settings;
use crate::listen::Endpoint;
use crate::log::Log;
use crate::scoreboard::{CellRef, BACKEND_IO_URING, BACKEND_POLL};
use crate::websocket::hub::{ConnId, Hub};
use crate::wsgi::app::App;
use crate::wsgi::fdevent::Waits;
use crate::wsgi::response::Ctx;
use crate::wsgi::template::{self, ListenerInfo, Shared};
use evserver_http::DateCache;
use evserver_platform::{Completion, Driver, Interest};
use pyo3::prelude::*;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often timeouts are checked.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// A listener the worker accepts from.
pub(super) struct ListenerState {
    pub fd: RawFd,
    pub armed: bool,
}

/// Where the application's code runs.
pub(super) enum Mode {
    /// On the loop's thread, with its fdevent wait slot.
    Inline { app: App, waits: Waits },
    /// On a pool of threads (`--threads N`).
    Pool(Pool),
}

/// One worker: the driver, the listeners, the connections and the application.
pub struct Worker {
    pub(super) driver: Driver,
    pub(super) mode: Mode,
    /// Jobs the pool gave back, taken on its wake-up.
    pub(super) returned: Vec<Returned>,
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
    /// The graceful stop closed the open WebSockets already.
    pub(super) websockets_closed: bool,
    /// Durations of the requests served, from dispatch to the end of the response.
    pub(super) durations: crate::scoreboard::DurationHistogram,
    /// Microseconds requests spent parked in fdevent waits, in all.
    pub(super) parked_micros: u64,
    pub(super) scoreboard: Option<CellRef>,
    /// The master's pid: a worker whose parent changed lost its master and stops.
    pub(super) master_pid: Option<i32>,
    /// The worker's WebSockets mark themselves here when they have frames to send.
    pub(super) ws_hub: Arc<Hub>,
    /// The marked connections, taken on the hub's wake-up (reused).
    pub(super) ws_dirty: Vec<ConnId>,
    /// Decrypted bytes of a TLS receive, reused.
    pub(super) tls_plain: Vec<u8>,
}

/// Lets a worker cross into `Python::detach`, which wants its closure `Send` so that no
/// interpreter-bound object travels to another thread. The worker holds none (no
/// `Python<'py>`, no `Bound`), and `detach` runs the closure on the calling thread: the worker
/// never leaves the thread that owns it.
struct StaysOnThisThread<'a>(&'a mut Worker);

// SAFETY: see the type's docs: the value is used only on the thread that made it.
unsafe impl Send for StaysOnThisThread<'_> {}

impl StaysOnThisThread<'_> {
    /// The loop of a worker in thread mode, then the end of its pool.
    fn run_detached(self) -> PyResult<()> {
        let worker = self.0;
        let result = worker.run_loop();
        if let Mode::Pool(pool) = &mut worker.mode {
            // The threads finish their jobs, the `close()`s of the last ones among them; what
            // comes back meanwhile is dropped.
            pool.shutdown();
        }
        result
    }
}

impl Worker {
    /// A worker running `app` inline (`threads` 1) or on a pool of `threads` threads.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        py: Python<'_>,
        driver: Driver,
        app: Bound<'_, PyAny>,
        listeners: Vec<Endpoint>,
        settings: Settings,
        log: Log,
        multiprocess: bool,
        threads: usize,
    ) -> PyResult<Worker> {
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
            multithread: threads > 1,
            tls: settings.tls.is_some(),
        };
        let templates = template::templates(py, &infos, &shared)?;
        let mode = if threads > 1 {
            let setup = ThreadSetup {
                app: app.unbind(),
                templates,
                log: log.clone_ref(py),
                format: settings.access_format.clone(),
                forwarded: settings.forwarded.clone(),
            };
            Mode::Pool(Pool::start(py, threads, &setup)?)
        } else {
            Mode::Inline {
                app: App::new(py, app.unbind(), templates, settings.forwarded.clone())?,
                waits: Waits::of_this_thread(),
            }
        };
        let ws_hub = Arc::new(Hub::new()?);
        let now = Instant::now();
        Ok(Worker {
            driver,
            mode,
            returned: Vec::new(),
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
            websockets_closed: false,
            durations: Default::default(),
            parked_micros: 0,
            scoreboard: None,
            master_pid: None,
            ws_hub,
            ws_dirty: Vec::new(),
            tls_plain: Vec::new(),
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
        self.report_figures(evserver_platform::process::resident_bytes());
    }

    /// Runs until a signal handler raises (SIGINT, SIGTERM) or the application asks to stop.
    pub fn run(&mut self, py: Python<'_>) -> PyResult<()> {
        let result = match self.mode {
            Mode::Inline { .. } => self.run_loop(),
            Mode::Pool(_) => {
                // The loop wakes for every arrival and every finished job. Were it to preempt
                // the application thread holding the GIL each time, the threads waiting for
                // the GIL would run in between only to find it taken (measured with Django on
                // one CPU: 21 context switches per request instead of 7.5, and 5-9% fewer
                // requests per second). As SCHED_BATCH it runs at the next scheduling point.
                if let Err(e) = evserver_platform::process::stop_preempting_on_wakeup() {
                    self.log
                        .warning(&format!("cannot make the loop thread SCHED_BATCH: {e}"));
                }
                let this = StaysOnThisThread(self);
                py.detach(move || this.run_detached())
            }
        };
        self.returned.clear();
        match self.signal_error.take() {
            Some(err) if !is_stop_signal(py, &err) => Err(err),
            _ => result,
        }
    }

    fn run_loop(&mut self) -> PyResult<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        if let Some(fd) = self.signal_fd {
            self.driver
                .poll_fd(fd, Interest::Readable, None, Op::Signal.token(0, 0));
        }
        if let Mode::Pool(pool) = &self.mode {
            let fd = pool.wake_fd();
            self.driver
                .poll_fd(fd, Interest::Readable, None, Op::Pool.token(0, 0));
        }
        self.arm_ws_wake();
        let inline = matches!(self.mode, Mode::Inline { .. });
        let mut result = Ok(());
        while !self.stop {
            let timeout = self.next_sweep.saturating_duration_since(self.now);
            let waited = if inline {
                // SAFETY: the GIL is released only around the kernel wait, during which this
                // thread touches no Python object; it is re-acquired before anything else.
                unsafe {
                    let state = pyo3::ffi::PyEval_SaveThread();
                    let r = self.driver.wait(Some(timeout));
                    pyo3::ffi::PyEval_RestoreThread(state);
                    r
                }
            } else {
                self.driver.wait(Some(timeout))
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
        result
    }

    /// Runs `f`, application code, with the context a response needs (inline mode: the
    /// loop's thread holds the interpreter); a stop the application asked for
    /// (KeyboardInterrupt, SystemExit) stops the loop. In thread mode the pool runs all
    /// application code, and this is never called.
    pub(super) fn with_ctx<R>(
        &mut self,
        f: impl FnOnce(Python<'_>, &mut App, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let Mode::Inline { app, waits } = &mut self.mode else {
            return None;
        };
        let mut stop = false;
        let result = Python::attach(|py| {
            let mut ctx = Ctx {
                log: &self.log,
                waits,
                date: self.date.get(),
                stop_requested: &mut stop,
            };
            f(py, app, &mut ctx)
        });
        if stop {
            self.stop = true;
        }
        Some(result)
    }

    /// Runs Python's signal handlers; an exception they raise stops the loop.
    fn check_signals(&mut self) {
        if let Err(err) = Python::attach(|py| py.check_signals()) {
            self.signal_error = Some(err);
            self.stop = true;
        }
    }

    fn on_completion(&mut self, c: Completion) {
        let op = match Op::of(c.token) {
            Some(Op::Accept) => return self.on_accept(c),
            Some(Op::Signal) => return self.on_signal_pipe(c),
            Some(Op::Pool) => return self.on_pool_wake(c),
            Some(Op::WsWake) => return self.on_ws_wake(c),
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
            Op::Accept | Op::Signal | Op::Pool | Op::WsWake => {}
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
