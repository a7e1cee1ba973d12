//! The `x-wsgiorg.fdevent` extension: the `readable`/`writable` callables that record a wait,
//! evserver's `x-evserver.fdevent.select` that records a wait on several fds, and the
//! per-request outcome (timeout flag, ready fd) the server sets on every resume.

use evserver_platform::Interest;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyInt};
use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// The most fds one wait may name (`x-evserver.fdevent.select`).
pub const MAX_WAIT_FDS: usize = 64;

/// A wait the application asked for and has not yielded yet: ready when any of `fds` is.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingWait {
    pub fds: Vec<(RawFd, Interest)>,
    pub timeout: Option<Duration>,
}

/// The wait recorded on one thread: the callables write it while that thread drives a
/// request's application code, and the driver takes it when the iterable yields. Each thread
/// drives one request at a time, so a thread-local slot is the request's own.
struct WaitSlot {
    driving: Cell<bool>,
    pending: RefCell<Option<PendingWait>>,
}

thread_local! {
    static SLOT: WaitSlot = const {
        WaitSlot {
            driving: Cell::new(false),
            pending: RefCell::new(None),
        }
    };
}

/// The wait slot of the thread that made it, for the response driver running on that thread:
/// looked up once, not on every chunk (in an extension module each thread-local access is a
/// call into the dynamic linker).
pub struct Waits {
    /// Points at this thread's `SLOT`. The raw pointer also makes `Waits` neither `Send` nor
    /// `Sync`: it never leaves the thread whose slot it names.
    slot: *const WaitSlot,
}

impl Waits {
    pub fn of_this_thread() -> Waits {
        Waits {
            slot: SLOT.with(|s| s as *const WaitSlot),
        }
    }

    fn slot(&self) -> &WaitSlot {
        // SAFETY: `slot` is this thread's thread-local (Waits cannot move to another thread),
        // which lives until the thread exits, after every Waits made on it is gone.
        unsafe { &*self.slot }
    }

    /// Runs `f`, a call into the application for the request this thread drives: the
    /// fdevent callables record waits only inside it.
    pub fn driving<R>(&self, f: impl FnOnce() -> R) -> R {
        let slot = self.slot();
        slot.driving.set(true);
        let result = f();
        slot.driving.set(false);
        result
    }

    /// Takes the wait the application recorded, if any.
    pub fn take(&self) -> Option<PendingWait> {
        self.slot().pending.take()
    }
}

/// Records `wait` for the request this thread drives.
fn record(wait: PendingWait) -> PyResult<()> {
    SLOT.with(|s| {
        if !s.driving.get() {
            return Err(PyRuntimeError::new_err(
                "x-wsgiorg.fdevent: called outside the request the server is running",
            ));
        }
        let mut pending = s.pending.borrow_mut();
        if pending.is_some() {
            return Err(PyRuntimeError::new_err(
                "x-wsgiorg.fdevent: a wait is already pending; yield it before waiting again",
            ));
        }
        *pending = Some(wait);
        Ok(())
    })
}

/// `environ['x-wsgiorg.fdevent.readable']` and `...writable`.
#[pyclass(module = "evserver._evserver", frozen)]
pub struct FdeventWait {
    interest: Interest,
}

impl FdeventWait {
    pub fn new(interest: Interest) -> Self {
        FdeventWait { interest }
    }
}

/// An fd given as an int or as an object with `fileno()`.
pub fn fd_of(obj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    let raw = if obj.is_instance_of::<PyInt>() {
        obj.clone()
    } else if let Ok(fileno) = obj.getattr(pyo3::intern!(obj.py(), "fileno")) {
        fileno.call0()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "fd must be an int or have a fileno() method, not {}",
            obj.get_type().name()?
        )));
    };
    let fd: i64 = raw
        .extract()
        .map_err(|_| PyTypeError::new_err("fileno() must return an int"))?;
    if fd < 0 || fd > i32::MAX as i64 {
        return Err(PyValueError::new_err(format!(
            "fd must be a non-negative int, got {fd}"
        )));
    }
    Ok(fd as RawFd)
}

/// A timeout in seconds (int or float >= 0, or None for no limit).
fn timeout_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if !(obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>()) {
        return Err(PyTypeError::new_err(format!(
            "timeout must be None or a number of seconds, not {}",
            obj.get_type().name()?
        )));
    }
    let seconds: f64 = obj.extract()?;
    if seconds.is_nan() || seconds < 0.0 {
        return Err(PyValueError::new_err(format!(
            "timeout must be >= 0 seconds, got {seconds}"
        )));
    }
    if seconds.is_infinite() {
        return Ok(None);
    }
    Duration::try_from_secs_f64(seconds)
        .map(Some)
        .map_err(|_| PyValueError::new_err("timeout is too large"))
}

#[pymethods]
impl FdeventWait {
    /// Records a wait on `fd` and returns b"", which the application yields.
    #[pyo3(signature = (fd, timeout = None, /))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        fd: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let fd = fd_of(fd)?;
        let timeout = timeout_of(timeout)?;
        record(PendingWait {
            fds: vec![(fd, self.interest)],
            timeout,
        })?;
        Ok(PyBytes::new(py, b""))
    }

    fn __repr__(&self) -> &'static str {
        match self.interest {
            Interest::Readable => "<x-wsgiorg.fdevent.readable>",
            Interest::Writable => "<x-wsgiorg.fdevent.writable>",
        }
    }
}

/// `environ['x-evserver.fdevent.select']`: a wait that ends when any of several fds is ready.
#[pyclass(module = "evserver._evserver", frozen)]
pub struct FdeventSelect;

/// Appends the fds of the iterable `list` (None: none) with `interest` to `out`.
fn fds_of(
    list: Option<&Bound<'_, PyAny>>,
    interest: Interest,
    out: &mut Vec<(RawFd, Interest)>,
) -> PyResult<()> {
    let Some(list) = list else { return Ok(()) };
    if list.is_none() {
        return Ok(());
    }
    if list.is_instance_of::<PyInt>() || list.hasattr(pyo3::intern!(list.py(), "fileno"))? {
        return Err(PyTypeError::new_err(
            "x-evserver.fdevent.select takes lists of fds, not a single fd",
        ));
    }
    for item in list.try_iter()? {
        if out.len() == MAX_WAIT_FDS {
            return Err(PyValueError::new_err(format!(
                "x-evserver.fdevent.select waits on at most {MAX_WAIT_FDS} fds"
            )));
        }
        out.push((fd_of(&item?)?, interest));
    }
    Ok(())
}

#[pymethods]
impl FdeventSelect {
    /// Records a wait until any fd of `readable` is readable or any of `writable` is
    /// writable (or has an error or hang-up), or `timeout` passes; returns b"".
    #[pyo3(signature = (readable, writable = None, timeout = None, /))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        readable: &Bound<'py, PyAny>,
        writable: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut fds = Vec::new();
        fds_of(Some(readable), Interest::Readable, &mut fds)?;
        fds_of(writable, Interest::Writable, &mut fds)?;
        if fds.is_empty() {
            return Err(PyValueError::new_err(
                "x-evserver.fdevent.select needs at least one fd",
            ));
        }
        let timeout = timeout_of(timeout)?;
        record(PendingWait { fds, timeout })?;
        Ok(PyBytes::new(py, b""))
    }

    fn __repr__(&self) -> &'static str {
        "<x-evserver.fdevent.select>"
    }
}

/// `environ['x-wsgiorg.fdevent.timeout']`: true if and only if the last wait timed out. The
/// same object is `environ['x-evserver.fdevent.ready']`: called, it returns the fd whose
/// readiness ended the last wait, or None (no wait yet, or the timeout fired).
#[pyclass(module = "evserver._evserver", frozen)]
pub struct TimeoutFlag {
    fired: AtomicBool,
    ready: AtomicI32,
}

impl Default for TimeoutFlag {
    fn default() -> Self {
        TimeoutFlag {
            fired: AtomicBool::new(false),
            ready: AtomicI32::new(-1),
        }
    }
}

impl TimeoutFlag {
    /// Back to the state of a request that never waited (for reuse).
    pub fn reset(&self) {
        self.fired.store(false, Ordering::Relaxed);
        self.ready.store(-1, Ordering::Relaxed);
    }

    /// Records how the last wait ended: `Some(fd)` ready, `None` timed out.
    pub fn set_outcome(&self, ready: Option<RawFd>) {
        self.fired.store(ready.is_none(), Ordering::Relaxed);
        self.ready.store(ready.unwrap_or(-1), Ordering::Relaxed);
    }
}

#[pymethods]
impl TimeoutFlag {
    fn __bool__(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }

    fn __call__(&self) -> Option<RawFd> {
        let fd = self.ready.load(Ordering::Relaxed);
        (fd >= 0).then_some(fd)
    }

    fn __repr__(&self) -> &'static str {
        if self.fired.load(Ordering::Relaxed) {
            "<fdevent timeout: True>"
        } else {
            "<fdevent timeout: False>"
        }
    }
}
