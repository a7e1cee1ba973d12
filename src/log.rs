//! Logging through Python's `logging` (loggers `evserver` and `evserver.access`), so an
//! application's own logging configuration (Django's LOGGING, ...) applies to the server too.
//! Every method attaches to the interpreter itself (a cheap check on a thread that already
//! is), so threads that run detached (a worker's loop in thread mode) log the same way.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Handles on the server's loggers.
pub struct Log {
    logger: Py<PyAny>,
    access: Option<Py<PyAny>>,
    debug: bool,
}

const DEBUG: i32 = 10;
const INFO: i32 = 20;
const WARNING: i32 = 30;
const ERROR: i32 = 40;

impl Log {
    /// Looks up the loggers; `access` is used only when an access log was asked for.
    pub fn new(py: Python<'_>, access: bool) -> PyResult<Log> {
        let logging = py.import("logging")?;
        let logger = logging.call_method1("getLogger", ("evserver",))?;
        let debug = logger.call_method1("isEnabledFor", (DEBUG,))?.is_truthy()?;
        let access = if access {
            Some(
                logging
                    .call_method1("getLogger", ("evserver.access",))?
                    .unbind(),
            )
        } else {
            None
        };
        Ok(Log {
            logger: logger.unbind(),
            access,
            debug,
        })
    }

    fn log(&self, level: i32, msg: &str) {
        Python::attach(|py| {
            if let Err(e) = self.logger.bind(py).call_method1("log", (level, "%s", msg)) {
                eprintln!("evserver: {msg} (logging failed: {e})");
            }
        })
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.log(DEBUG, msg);
        }
    }

    pub fn info(&self, msg: &str) {
        self.log(INFO, msg);
    }

    pub fn warning(&self, msg: &str) {
        self.log(WARNING, msg);
    }

    pub fn error(&self, msg: &str) {
        self.log(ERROR, msg);
    }

    /// Logs `msg` at ERROR with the exception's traceback.
    pub fn exception(&self, msg: &str, err: &PyErr) {
        Python::attach(|py| self.exception_attached(py, msg, err))
    }

    fn exception_attached(&self, py: Python<'_>, msg: &str, err: &PyErr) {
        let exc_info = PyTuple::new(
            py,
            [
                err.get_type(py).into_any(),
                err.value(py).clone().into_any(),
                err.traceback(py)
                    .map(|t| t.into_any())
                    .unwrap_or_else(|| py.None().into_bound(py)),
            ],
        );
        let result = exc_info.and_then(|exc_info| {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("exc_info", exc_info)?;
            self.logger
                .bind(py)
                .call_method("error", ("%s", msg), Some(&kwargs))
        });
        if let Err(e) = result {
            eprintln!("evserver: {msg}: {err} (logging failed: {e})");
        }
    }

    pub fn access_enabled(&self) -> bool {
        self.access.is_some()
    }

    /// Writes one access log line.
    pub fn access(&self, line: &str) {
        if let Some(access) = &self.access {
            Python::attach(|py| {
                if let Err(e) = access.bind(py).call_method1("info", ("%s", line)) {
                    eprintln!("evserver: access log failed: {e}");
                }
            })
        }
    }

    /// Another handle on the same loggers (for another thread).
    pub fn clone_ref(&self, py: Python<'_>) -> Log {
        Log {
            logger: self.logger.clone_ref(py),
            access: self.access.as_ref().map(|a| a.clone_ref(py)),
            debug: self.debug,
        }
    }
}
