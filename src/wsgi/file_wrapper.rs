//! `wsgi.file_wrapper`: wraps a file so the server can send it with sendfile (zero-copy);
//! iterating it reads blocks, for servers or middleware that cannot.

use pyo3::prelude::*;
use std::os::fd::RawFd;

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

/// A regular file being sent with sendfile: from `offset`, `remaining` bytes.
pub struct FileSend {
    pub fd: RawFd,
    pub offset: i64,
    pub remaining: u64,
}

/// The regular file behind a file-like object, from its current position to its end; `None`
/// when it is not one (the wrapper is then iterated like any iterable).
pub fn file_to_send(py: Python<'_>, filelike: &Bound<'_, PyAny>) -> Option<FileSend> {
    let fd: RawFd = filelike
        .call_method0(pyo3::intern!(py, "fileno"))
        .ok()?
        .extract()
        .ok()?;
    // SAFETY: fstat/lseek on an fd the application gave us; failures are reported as errors
    // and we fall back to reading the file through Python.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            return None;
        }
        let offset = match filelike.call_method0(pyo3::intern!(py, "tell")) {
            Ok(pos) => pos.extract::<i64>().ok()?,
            Err(_) => libc::lseek(fd, 0, libc::SEEK_CUR) as i64,
        };
        if offset < 0 {
            return None;
        }
        let size = st.st_size as i64;
        Some(FileSend {
            fd,
            offset,
            remaining: size.saturating_sub(offset).max(0) as u64,
        })
    }
}
