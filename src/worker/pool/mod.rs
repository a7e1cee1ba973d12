//! Thread mode (`--threads N`): a pool of N Python threads that run the application and drive
//! response iterables, while the worker's loop runs detached from the interpreter and keeps
//! every connection, parked wait and send.
//!
//! # The contract
//!
//! - The loop hands a job (a response, its send queue and a task) to the pool with
//!   [`Pool::submit`]; a thread takes it, owns it while it runs, and gives it back with what
//!   the loop must do next; the loop finds it with [`Pool::take_returned`] after the pool's
//!   wake-up fd became readable. Nothing else is shared with the threads: no lock is held
//!   around application code, so on an interpreter without a GIL the threads would run in
//!   parallel.
//! - While a thread holds a connection's job it is the only writer on that socket (it sends
//!   each block itself, non-blocking, before asking for the next one); the loop neither
//!   writes to nor closes the socket until the job came back.
//! - A thread that has nothing to do waits on a condition variable, detached from the
//!   interpreter; each thread attaches once, so its Python thread-locals (a database
//!   connection) live across requests.

pub mod job;
mod thread;

use crate::allow::AllowList;
use crate::log::Log;
use crate::worker::accesslog::Format;
use evserver_platform::process;
use job::{Job, Returned};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use thread::ThreadState;

/// What a pool thread is doing, for `--timeout` and the status page. Written by its thread,
/// read by the loop.
#[derive(Default)]
pub struct ThreadSlot {
    /// Monotonic milliseconds since which the thread runs a job (0: idle).
    pub busy_since_ms: AtomicU64,
    /// The thread's Python thread identifier (`threading.get_ident()`), 0 before it started.
    pub ident: AtomicU64,
    /// Its current job was reported as stuck already.
    pub reported: AtomicBool,
}

/// The jobs waiting for a thread, and whether the threads should end.
struct Queue {
    jobs: VecDeque<Job>,
    quit: bool,
}

/// What the loop and the threads share.
///
/// Ownership: `queue` is filled by the loop and emptied by the threads, `returned` filled by
/// the threads and emptied by the loop, each under its mutex, held only to push or swap (never
/// around application code). The atomics are written by one side and read by the other.
struct Shared {
    queue: Mutex<Queue>,
    job_ready: Condvar,
    returned: Mutex<Vec<Returned>>,
    /// Written (one byte) when `returned` goes from empty to not: the loop polls the read end.
    wake_write: RawFd,
    /// The worker stops: responses whose head has not gone out get `Connection: close`.
    stopping: AtomicBool,
    busy: AtomicUsize,
    slots: Vec<ThreadSlot>,
}

/// Locks `m`, going on past a thread that panicked while holding it (the data is a plain
/// queue of owned jobs, still consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The pool of a worker in thread mode.
pub struct Pool {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// The read end of the wake-up pipe.
    wake_read: RawFd,
}

/// What each pool thread starts with.
pub struct ThreadSetup {
    pub app: Py<PyAny>,
    pub templates: Vec<Py<PyDict>>,
    pub log: Log,
    pub format: Format,
    pub forwarded: Arc<AllowList>,
}

impl Pool {
    /// Starts `threads` threads, each with its own handle on the application.
    pub fn start(py: Python<'_>, threads: usize, setup: &ThreadSetup) -> std::io::Result<Pool> {
        let (wake_read, wake_write) = process::pipe()?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                quit: false,
            }),
            job_ready: Condvar::new(),
            returned: Mutex::new(Vec::new()),
            wake_write,
            stopping: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            slots: (0..threads).map(|_| ThreadSlot::default()).collect(),
        });
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads {
            let shared = shared.clone();
            let setup = ThreadSetup {
                app: setup.app.clone_ref(py),
                templates: setup.templates.iter().map(|t| t.clone_ref(py)).collect(),
                log: setup.log.clone_ref(py),
                format: setup.format.clone(),
                forwarded: setup.forwarded.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("evserver-{index}"))
                .spawn(move || thread_main(&shared, index, setup))?;
            handles.push(handle);
        }
        Ok(Pool {
            shared,
            handles,
            wake_read,
        })
    }

    /// The fd that becomes readable when jobs came back.
    pub fn wake_fd(&self) -> RawFd {
        self.wake_read
    }

    /// Hands a job to the first free thread (it waits in the queue until one is).
    pub fn submit(&self, job: Job) {
        lock(&self.shared.queue).jobs.push_back(job);
        self.shared.job_ready.notify_one();
    }

    /// Moves the jobs that came back to `out`, and empties the wake-up pipe.
    pub fn take_returned(&self, out: &mut Vec<Returned>) {
        let mut bytes = Vec::new();
        process::drain_pipe(self.wake_read, &mut bytes);
        out.append(&mut lock(&self.shared.returned));
    }

    /// From now on, responses whose head has not gone out close their connection.
    pub fn set_stopping(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
    }

    /// Threads running a job now.
    pub fn busy(&self) -> usize {
        self.shared.busy.load(Ordering::Relaxed)
    }

    pub fn threads(&self) -> usize {
        self.shared.slots.len()
    }

    /// Jobs waiting for a free thread.
    pub fn queued(&self) -> usize {
        lock(&self.shared.queue).jobs.len()
    }

    pub fn slots(&self) -> &[ThreadSlot] {
        &self.shared.slots
    }

    /// Lets the threads finish the jobs queued, then ends them; must be called attached to
    /// the interpreter's main thread state being free (detached), as the threads need it to
    /// finish. Jobs that come back meanwhile are dropped.
    pub fn shutdown(&mut self) {
        lock(&self.shared.queue).quit = true;
        self.shared.job_ready.notify_all();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        evserver_platform::sys::close(self.wake_read);
        evserver_platform::sys::close(self.shared.wake_write);
    }
}

/// The next job, waiting (detached from the interpreter) until there is one; `None` once the
/// pool ends and the queue is empty.
fn next_job(shared: &Shared) -> Option<Job> {
    let mut queue = lock(&shared.queue);
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        if queue.quit {
            return None;
        }
        queue = shared
            .job_ready
            .wait(queue)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// The next job if one is queued, without waiting.
fn try_next_job(shared: &Shared) -> Option<Job> {
    lock(&shared.queue).jobs.pop_front()
}

/// Gives a job back to the loop, waking it if it may be asleep.
fn give_back(shared: &Shared, returned: Returned) {
    let was_empty = {
        let mut list = lock(&shared.returned);
        list.push(returned);
        list.len() == 1
    };
    if was_empty {
        process::write_byte(shared.wake_write, 1);
    }
}

/// A pool thread: attached to the interpreter for its whole life, detached while it waits
/// for a job.
fn thread_main(shared: &Shared, index: usize, setup: ThreadSetup) {
    Python::attach(|py| {
        let slot = &shared.slots[index];
        // SAFETY: PyThread_get_thread_ident only reads this thread's identity.
        let ident = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
        slot.ident.store(ident as u64, Ordering::Relaxed);
        let mut state = match ThreadState::new(py, setup) {
            Ok(state) => state,
            Err(e) => {
                e.display(py);
                return;
            }
        };
        // A job already queued is taken without letting go of the interpreter: under load a
        // thread goes from one request to the next without a GIL hand-off in between (the
        // queue's mutex is never held by anyone waiting for the GIL, so taking it here is
        // safe). Only a thread that finds nothing to do detaches to wait.
        while let Some(job) = try_next_job(shared).or_else(|| py.detach(|| next_job(shared))) {
            shared.busy.fetch_add(1, Ordering::Relaxed);
            slot.reported.store(false, Ordering::Relaxed);
            slot.busy_since_ms
                .store(process::monotonic_millis().max(1), Ordering::Relaxed);
            let returned = state.run(py, job, &shared.stopping);
            slot.busy_since_ms.store(0, Ordering::Relaxed);
            shared.busy.fetch_sub(1, Ordering::Relaxed);
            if let Some(returned) = returned {
                give_back(shared, returned);
            }
        }
    })
}
