//! The WSGI layer: the Python objects a request sees (environ, start_response, wsgi.input,
//! wsgi.file_wrapper, the fdevent callables) and the response head built from them.

pub mod environ;
pub mod fdevent;
pub mod file_wrapper;
pub mod head;
pub mod input;
pub mod latin1;
pub mod recycle;
pub mod start_response;
