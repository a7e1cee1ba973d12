//! `wsgi.file_wrapper`: wraps a file so the server can send it with sendfile (zero-copy);
//! iterating it reads blocks, for servers or middleware that cannot.

use pyo3::prelude::*;

/// The `wsgi.file_wrapper` class.
#[pyclass(module = "evserver._evserver")]
pub struct FileWrapper {
    #[pyo3(get)]
    pub filelike: Py<PyAny>,
    #[pyo3(get)]
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = 8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1(pyo3::intern!(py, "read"), (self.blksize,))?;
        if block.is_truthy()? {
            Ok(Some(block))
        } else {
            Ok(None)
        }
    }

    /// Closes the wrapped file if it has a `close()`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let file = self.filelike.bind(py);
        if let Ok(close) = file.getattr(pyo3::intern!(py, "close")) {
            close.call0()?;
        }
        Ok(())
    }
}
