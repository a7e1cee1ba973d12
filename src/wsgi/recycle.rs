//! Reuses the per-request Python objects (`start_response`, the fdevent timeout flag) of
//! finished requests when nothing else holds them, so a request allocates neither.

use super::fdevent::TimeoutFlag;
use super::start_response::{StartResponse, Starter};
use crate::websocket::py::WebSocketRequest;
use pyo3::prelude::*;

/// Most spare objects of each kind kept.
const MAX_SPARES: usize = 64;

/// The reference count of `obj`.
fn refcount<T>(_py: Python<'_>, obj: &Py<T>) -> isize {
    // SAFETY: `obj` is a live object we hold a reference to, and the GIL is held (`_py`).
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}

/// The Python objects each request gets besides its environ.
pub struct RequestObjects {
    pub start_response: Starter,
    /// `x-wsgiorg.fdevent.timeout`.
    pub timeout_flag: Py<TimeoutFlag>,
    /// `evserver.websocket`, on an upgrade request (never reused).
    pub websocket: Option<Py<WebSocketRequest>>,
    /// `gunicorn.socket`, offered on an upgrade request in thread mode (never reused).
    pub handed_socket: Option<Py<PyAny>>,
}

/// What a finished response gives back to be reused.
pub struct Spent {
    /// `None` when the response released it early (it became a WebSocket).
    pub start_response: Option<Starter>,
    pub timeout_flag: Py<TimeoutFlag>,
}

impl From<RequestObjects> for Spent {
    fn from(objects: RequestObjects) -> Spent {
        Spent {
            start_response: Some(objects.start_response),
            timeout_flag: objects.timeout_flag,
        }
    }
}

/// Spare per-request objects, reset and ready.
#[derive(Default)]
pub struct Recycler {
    start_responses: Vec<Starter>,
    timeout_flags: Vec<Py<TimeoutFlag>>,
}

impl Recycler {
    /// Fresh objects for a request: spare ones, else new ones.
    pub fn objects(&mut self, py: Python<'_>) -> PyResult<RequestObjects> {
        let start_response = match self.start_responses.pop() {
            Some(spare) => spare,
            None => Starter::new(py)?,
        };
        let timeout_flag = match self.timeout_flags.pop() {
            Some(spare) => spare,
            None => Py::new(py, TimeoutFlag::default())?,
        };
        Ok(RequestObjects {
            start_response,
            timeout_flag,
            websocket: None,
            handed_socket: None,
        })
    }

    /// Takes back the objects of a finished request. Only objects referenced from here alone
    /// are kept (an application that kept `start_response` or the environ keeps them alive,
    /// and they are left to it); they are reset to the state of new ones.
    pub fn recycle(&mut self, py: Python<'_>, spent: Spent) {
        let Spent {
            start_response,
            timeout_flag,
        } = spent;
        // The object is referenced by us and by its bound method, which only we reference.
        if let Some(start_response) = start_response.filter(|sr| {
            refcount(py, &sr.callable) == 1
                && refcount(py, &sr.obj) == 2
                && self.start_responses.len() < MAX_SPARES
        }) {
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
            let objects = recycler.objects(py).unwrap();
            objects
                .start_response
                .obj
                .bind(py)
                .borrow_mut()
                .headers_sent = true;
            objects.timeout_flag.get().set_outcome(None);
            let (sr_ptr, flag_ptr) = (
                objects.start_response.obj.as_ptr(),
                objects.timeout_flag.as_ptr(),
            );
            recycler.recycle(py, objects.into());
            let objects = recycler.objects(py).unwrap();
            let (sr, flag) = (&objects.start_response, &objects.timeout_flag);
            assert_eq!((sr.obj.as_ptr(), flag.as_ptr()), (sr_ptr, flag_ptr));
            assert!(!sr.obj.bind(py).borrow().headers_sent);
            assert!(!flag.bind(py).is_truthy().unwrap());

            // Still referenced elsewhere (an application kept them): not reused.
            let kept = (sr.callable.clone_ref(py), flag.clone_ref(py));
            let sr_ptr = sr.obj.as_ptr();
            recycler.recycle(py, objects.into());
            let objects = recycler.objects(py).unwrap();
            assert_ne!(objects.start_response.obj.as_ptr(), sr_ptr);
            assert_ne!(objects.timeout_flag.as_ptr(), kept.1.as_ptr());
        });
    }
}
