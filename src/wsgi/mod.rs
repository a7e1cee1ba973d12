//! The WSGI layer: the Python objects a request sees (environ, start_response, wsgi.input,
//! wsgi.file_wrapper, the fdevent callables), the call of the application and the driving of
//! its response iterable. It builds Python objects from parsed requests and writes bytes to an
//! [`output::Output`]; it does no I/O and knows nothing of connections or the event loop.
//!
//! Entry point: [`app::App`], one per thread that runs application code.

pub mod app;
pub mod environ;
pub mod fdevent;
pub mod file_wrapper;
pub mod forwarded;
pub mod handoff;
pub mod head;
pub mod input;
pub mod latin1;
pub mod output;
pub mod peer;
pub mod recycle;
pub mod response;
mod source;
pub mod start_response;
pub mod template;
pub mod upgrade;
