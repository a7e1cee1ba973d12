//! Reuses the per-request Python objects (`start_response`, the fdevent timeout flag) of
//! finished requests when nothing else holds them, so a request allocates neither.

use super::fdevent::TimeoutFlag;
use super::start_response::{StartResponse, Starter};
use pyo3::prelude::*;

/// Most spare objects of each kind kept.
const MAX_SPARES: usize = 64;

/// The reference count of `obj`.
fn refcount<T>(_py: Python<'_>, obj: &Py<T>) -> isize {
    // SAFETY: `obj` is a live object we hold a reference to, and the GIL is held (`_py`).
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}

/// Spare per-request objects, reset and ready.
#[derive(Default)]
pub struct Recycler {
    start_responses: Vec<Starter>,
    timeout_flags: Vec<Py<TimeoutFlag>>,
}

impl Recycler {
    /// A fresh `start_response` for a request: a spare one, else a new one.
    pub fn start_response(&mut self, py: Python<'_>) -> PyResult<Starter> {
        match self.start_responses.pop() {
            Some(spare) => Ok(spare),
            None => Starter::new(py),
        }
    }

    /// A fresh timeout flag (false) for a request: a spare one, else a new one.
    pub fn timeout_flag(&mut self, py: Python<'_>) -> PyResult<Py<TimeoutFlag>> {
        match self.timeout_flags.pop() {
            Some(spare) => Ok(spare),
            None => Py::new(py, TimeoutFlag::default()),
        }
    }

    /// Takes back the objects of a finished request. Only objects referenced from here alone
    /// are kept (an application that kept `start_response` or the environ keeps them alive,
    /// and they are left to it); they are reset to the state of new ones.
    pub fn recycle(
        &mut self,
        py: Python<'_>,
        start_response: Starter,
        timeout_flag: Py<TimeoutFlag>,
    ) {
        // The object is referenced by us and by its bound method, which only we reference.
        if refcount(py, &start_response.callable) == 1
            && refcount(py, &start_response.obj) == 2
            && self.start_responses.len() < MAX_SPARES
        {
            // Nothing else references it, so nothing can hold a borrow of it either.
            if let Ok(mut sr) = start_response.obj.bind(py).try_borrow_mut() {
                *sr = StartResponse::default();
                drop(sr);
                self.start_responses.push(start_response);
            }
        }
        if refcount(py, &timeout_flag) == 1 && self.timeout_flags.len() < MAX_SPARES {
            timeout_flag.get().reset();
            self.timeout_flags.push(timeout_flag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_only_objects_nothing_else_holds() {
        Python::initialize();
        Python::attach(|py| {
            let mut recycler = Recycler::default();
            let sr = recycler.start_response(py).unwrap();
            sr.obj.bind(py).borrow_mut().headers_sent = true;
            let flag = recycler.timeout_flag(py).unwrap();
            flag.get().set_outcome(None);
            let (sr_ptr, flag_ptr) = (sr.obj.as_ptr(), flag.as_ptr());
            recycler.recycle(py, sr, flag);
            let sr = recycler.start_response(py).unwrap();
            let flag = recycler.timeout_flag(py).unwrap();
            assert_eq!((sr.obj.as_ptr(), flag.as_ptr()), (sr_ptr, flag_ptr));
            assert!(!sr.obj.bind(py).borrow().headers_sent);
            assert!(!flag.bind(py).is_truthy().unwrap());

            // Still referenced elsewhere (an application kept them): not reused.
            let kept = (sr.callable.clone_ref(py), flag.clone_ref(py));
            let sr_ptr = sr.obj.as_ptr();
            recycler.recycle(py, sr, flag);
            let sr = recycler.start_response(py).unwrap();
            let flag = recycler.timeout_flag(py).unwrap();
            assert_ne!(sr.obj.as_ptr(), sr_ptr);
            assert_ne!(flag.as_ptr(), kept.1.as_ptr());
        });
    }
}
