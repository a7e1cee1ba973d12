//! Where a response body comes from: a list or tuple (or such an iterator) walked by index, a
//! file sent with sendfile, or any other iterator.

use super::file_wrapper::{file_to_send, FileSend, FileWrapper};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

/// Where the body comes from.
pub(super) enum Source {
    /// A list or tuple: items by index, total length known.
    Sequence {
        obj: Py<PyAny>,
        index: usize,
        len: usize,
    },
    /// Any other iterable.
    Iter(Py<PyAny>),
    /// A `wsgi.file_wrapper` over a regular file: sent with sendfile.
    File(FileSend),
    Exhausted,
}

impl Source {
    /// How to walk what the application returned, and the body's length if it is known
    /// without sending it.
    pub(super) fn of(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<(Source, Option<u64>)> {
        let sequence = if let Ok(list) = result.cast_exact::<PyList>() {
            Some((list.len(), sequence_length(list.iter())))
        } else if let Ok(tuple) = result.cast_exact::<PyTuple>() {
            Some((tuple.len(), sequence_length(tuple.iter())))
        } else {
            None
        };
        if let Some((len, length)) = sequence {
            let obj = result.clone().unbind();
            return Ok((Source::Sequence { obj, index: 0, len }, length));
        }
        if let Ok(wrapper) = result.cast::<FileWrapper>() {
            if let Some(file) = file_to_send(py, &wrapper.borrow().filelike.bind(py).clone()) {
                let length = Some(file.remaining);
                return Ok((Source::File(file), length));
            }
            return Ok((Source::Iter(result.try_iter()?.into_any().unbind()), None));
        }
        let iter = result.try_iter()?;
        match remaining_items(&iter)? {
            // Iterating it gives a list's or tuple's iterator (Django's HttpResponse does): the
            // items are in memory and asking for them cannot block, so the body goes out like
            // a list (which is what it now is), whole and with its length.
            Some(items) => Source::of(py, items.as_any()),
            None => Ok((Source::Iter(iter.into_any().unbind()), None)),
        }
    }
}

/// What is left in `iter` as a new list, if it is a built-in list or tuple iterator (whose
/// next item is always at hand); `None` for any other iterator.
fn remaining_items<'py>(
    iter: &Bound<'py, pyo3::types::PyIterator>,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let kind = iter.get_type().as_type_ptr();
    // SAFETY: only the addresses of the interpreter's static type objects are taken (safe
    // from Rust 1.82 on; this crate still builds with 1.80, where it needs `unsafe`).
    #[allow(unused_unsafe)]
    let builtin = unsafe {
        kind == std::ptr::addr_of_mut!(pyo3::ffi::PyListIter_Type)
            || kind == std::ptr::addr_of_mut!(pyo3::ffi::PyTupleIter_Type)
    };
    if !builtin {
        return Ok(None);
    }
    let items = PyList::empty(iter.py());
    for item in iter.clone() {
        items.append(item?)?;
    }
    Ok(Some(items))
}

/// The total length of a list or tuple of bytes, if every item is bytes.
fn sequence_length<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>) -> Option<u64> {
    let mut total = 0u64;
    for item in items {
        total += item.cast::<PyBytes>().ok()?.as_bytes().len() as u64;
    }
    Some(total)
}
