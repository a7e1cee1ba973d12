//! The `x-wsgiorg.fdevent` extension: the `readable`/`writable` callables that record a wait,
//! and the per-request timeout flag the server sets on every resume.

use evserver_platform::Interest;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyInt};
use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A wait the application asked for and has not yielded yet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PendingWait {
    pub fd: RawFd,
    pub interest: Interest,
    pub timeout: Option<Duration>,
}

/// Shared between the two callables and the worker: whether a request is being driven
/// right now, and the wait it recorded.
#[derive(Default)]
pub struct WaitSlot {
    driving: Cell<bool>,
    pending: Cell<Option<PendingWait>>,
}

impl WaitSlot {
    /// Marks the start (true) or end (false) of a call into the application.
    pub fn set_driving(&self, driving: bool) {
        self.driving.set(driving);
    }

    /// Takes the recorded wait, if any.
    pub fn take(&self) -> Option<PendingWait> {
        self.pending.take()
    }

    pub fn has_pending(&self) -> bool {
        self.pending.get().is_some()
    }
}

/// `environ['x-wsgiorg.fdevent.readable']` and `...writable`.
#[pyclass(module = "evserver._evserver", unsendable, frozen)]
pub struct FdeventWait {
    interest: Interest,
    slot: Rc<WaitSlot>,
}

impl FdeventWait {
    pub fn new(interest: Interest, slot: Rc<WaitSlot>) -> Self {
        FdeventWait { interest, slot }
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
        if !self.slot.driving.get() {
            return Err(PyRuntimeError::new_err(
                "x-wsgiorg.fdevent: called outside the request the server is running",
            ));
        }
        if self.slot.pending.get().is_some() {
            return Err(PyRuntimeError::new_err(
                "x-wsgiorg.fdevent: a wait is already pending; yield it before waiting again",
            ));
        }
        self.slot.pending.set(Some(PendingWait {
            fd,
            interest: self.interest,
            timeout,
        }));
        Ok(PyBytes::new(py, b""))
    }

    fn __repr__(&self) -> &'static str {
        match self.interest {
            Interest::Readable => "<x-wsgiorg.fdevent.readable>",
            Interest::Writable => "<x-wsgiorg.fdevent.writable>",
        }
    }
}

/// `environ['x-wsgiorg.fdevent.timeout']`: true if and only if the last wait timed out.
#[pyclass(module = "evserver._evserver", frozen)]
#[derive(Default)]
pub struct TimeoutFlag {
    fired: AtomicBool,
}

impl TimeoutFlag {
    pub fn set(&self, fired: bool) {
        self.fired.store(fired, Ordering::Relaxed);
    }
}

#[pymethods]
impl TimeoutFlag {
    fn __bool__(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }

    fn __repr__(&self) -> &'static str {
        if self.fired.load(Ordering::Relaxed) {
            "<fdevent timeout: True>"
        } else {
            "<fdevent timeout: False>"
        }
    }
}
