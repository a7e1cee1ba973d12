//! `start_response` and the `write()` callable it returns: one object per request holding the
//! status and headers until the server sends them.

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

/// The per-request `start_response` callable.
#[pyclass(module = "evserver._evserver")]
#[derive(Default)]
pub struct StartResponse {
    /// The status string, once called.
    pub status: Option<Py<PyString>>,
    /// The header list, once called.
    pub headers: Option<Py<PyList>>,
    /// Set by the server when the head went out; later calls must carry exc_info.
    pub headers_sent: bool,
    /// Bytes given to `write()` that the server has not queued yet.
    pub written: Vec<Py<PyBytes>>,
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// A request's `start_response`: the object that holds the status and headers, and what the
/// application is given, its bound method `start_response` (a call to a built-in method
/// needs no argument tuple, unlike a call to the object itself).
pub struct Starter {
    pub obj: Py<StartResponse>,
    pub callable: Py<PyAny>,
}

impl Starter {
    pub fn new(py: Python<'_>) -> PyResult<Starter> {
        let obj = Py::new(py, StartResponse::default())?;
        let callable = obj
            .bind(py)
            .getattr(pyo3::intern!(py, "start_response"))?
            .unbind();
        Ok(Starter { obj, callable })
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::start_response(slf, status, headers, exc_info)
    }

    /// What the application calls: records the status and headers, returns `write`.
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn start_response<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        {
            let mut this = slf.borrow_mut();
            match exc_info.filter(|e| !e.is_none()) {
                Some(exc_info) if this.headers_sent => {
                    // PEP 3333: once the head is out, re-raise the application's exception.
                    let tuple = exc_info.cast::<PyTuple>().map_err(|_| {
                        PyTypeError::new_err("exc_info must be a (type, value, traceback) tuple")
                    })?;
                    return Err(PyErr::from_value(tuple.get_item(1)?));
                }
                Some(_) => {}
                None if this.status.is_some() => {
                    return Err(PyRuntimeError::new_err(
                        "start_response called a second time without exc_info",
                    ));
                }
                None => {}
            }
            let status = status.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "status must be a str such as '200 OK', not {}",
                    type_name(status)
                ))
            })?;
            let headers = headers.cast::<PyList>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "headers must be a list of (name, value) tuples, not {}",
                    type_name(headers)
                ))
            })?;
            this.status = Some(status.clone().unbind());
            this.headers = Some(headers.clone().unbind());
        }
        slf.getattr(pyo3::intern!(slf.py(), "write"))
    }

    /// The legacy `write()` callable: queues bytes to send before the iterable's chunks.
    fn write(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.status.is_none() {
            return Err(PyRuntimeError::new_err(
                "write() called before start_response()",
            ));
        }
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!("write() takes bytes, not {}", type_name(data)))
        })?;
        if !bytes.as_bytes().is_empty() {
            self.written.push(bytes.clone().unbind());
        }
        Ok(())
    }
}
