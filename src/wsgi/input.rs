//! `wsgi.input`: the pre-read request body (in memory, or spilled to a temporary file) with
//! `read`, `readline`, `readlines` and iteration.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

/// Where the body lives.
pub enum Body {
    Memory { data: Vec<u8>, pos: usize },
    File(BufReader<File>),
}

impl Body {
    /// A body read back from the start of a spill file.
    pub fn from_file(mut file: File) -> io::Result<Body> {
        file.seek(SeekFrom::Start(0))?;
        Ok(Body::File(BufReader::with_capacity(64 * 1024, file)))
    }

    /// Up to `limit` bytes (all remaining when `None`).
    fn read(&mut self, limit: Option<usize>) -> io::Result<Vec<u8>> {
        match self {
            Body::Memory { data, pos } => {
                let rest = &data[*pos..];
                let n = limit.map_or(rest.len(), |l| l.min(rest.len()));
                let out = rest[..n].to_vec();
                *pos += n;
                Ok(out)
            }
            Body::File(reader) => {
                let mut out = Vec::new();
                match limit {
                    None => {
                        reader.read_to_end(&mut out)?;
                    }
                    Some(l) => {
                        reader.take(l as u64).read_to_end(&mut out)?;
                    }
                }
                Ok(out)
            }
        }
    }

    /// One line including its `\n`, at most `limit` bytes.
    fn read_line(&mut self, limit: Option<usize>) -> io::Result<Vec<u8>> {
        match self {
            Body::Memory { data, pos } => {
                let rest = &data[*pos..];
                let cap = limit.map_or(rest.len(), |l| l.min(rest.len()));
                let n = memchr::memchr(b'\n', &rest[..cap]).map_or(cap, |i| i + 1);
                let out = rest[..n].to_vec();
                *pos += n;
                Ok(out)
            }
            Body::File(reader) => {
                let mut out = Vec::new();
                match limit {
                    None => {
                        reader.read_until(b'\n', &mut out)?;
                    }
                    Some(l) => {
                        reader.take(l as u64).read_until(b'\n', &mut out)?;
                    }
                }
                Ok(out)
            }
        }
    }
}

/// The `wsgi.input` object.
#[pyclass(module = "evserver._evserver")]
pub struct Input {
    body: Body,
}

impl Input {
    pub fn new(body: Body) -> Self {
        Input { body }
    }

    pub fn empty() -> Self {
        Input {
            body: Body::Memory {
                data: Vec::new(),
                pos: 0,
            },
        }
    }
}

/// A size argument: None or negative means "no limit".
fn limit(size: Option<i64>) -> Option<usize> {
    size.filter(|&s| s >= 0).map(|s| s as usize)
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size = None, /))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        if let Body::Memory { data, pos } = &mut self.body {
            // Straight from the buffer into the bytes object: one copy.
            let rest = &data[*pos..];
            let n = limit(size).map_or(rest.len(), |l| l.min(rest.len()));
            let bytes = PyBytes::new(py, &rest[..n]);
            *pos += n;
            return Ok(bytes);
        }
        let data = self.body.read(limit(size))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (size = None, /))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<i64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.body.read_line(limit(size))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (hint = None, /))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = limit(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0usize;
        loop {
            let line = self.body.read_line(None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.body.read_line(None)?;
        if line.is_empty() {
            Ok(None)
        } else {
            Ok(Some(PyBytes::new(py, &line)))
        }
    }
}
