//! Conversions between WSGI "native strings" (str holding latin-1 code points) and bytes.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::string::PyStringData;
use pyo3::types::PyString;

/// A str whose code points are the given bytes (latin-1 decoding, as PEP 3333 asks).
pub fn str_from_latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    // SAFETY: the pointer and length describe a valid slice; latin-1 decoding cannot fail
    // except on memory exhaustion, which `from_owned_ptr_or_err` turns into a panic-free
    // error path below.
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr() as *const std::ffi::c_char,
            bytes.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        match Bound::from_owned_ptr_or_err(py, ptr) {
            Ok(obj) => obj.cast_into_unchecked(),
            // Only MemoryError can get here; an empty string keeps the request going and the
            // error is left for the next Python call to surface.
            Err(_) => PyString::new(py, ""),
        }
    }
}

/// The latin-1 bytes of a str, or `None` if it has a code point above U+00FF.
/// CPython stores every str in its narrowest form, so a latin-1 str is always one byte per
/// character and its bytes are borrowed from the str's own storage.
pub fn latin1_bytes<'a>(s: &'a Bound<'_, PyString>) -> Option<&'a [u8]> {
    // SAFETY: `data` reads the str's canonical representation; we only read it while `s`
    // is borrowed.
    match unsafe { s.data() } {
        Ok(PyStringData::Ucs1(bytes)) => Some(bytes),
        _ => None,
    }
}
