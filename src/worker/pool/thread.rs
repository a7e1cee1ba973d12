//! What a pool thread does with a job: the application call or the next steps of a response,
//! sending each block itself before asking for the next one, until the response must wait
//! (a parked wait, a full socket, a file to send) or ends; the access-log line and the
//! recycling of per-request objects of an ended response happen here too.

use super::job::{Handed, Job, Resume, Returned, Start, Task};
use super::ThreadSetup;
use crate::log::Log;
use crate::worker::accesslog::{log_ended, Ending, Format};
use crate::worker::conn::Running;
use crate::worker::outq::{Keep, OutQueue, SendOp};
use crate::wsgi::app::{App, PrepareError, Request};
use crate::wsgi::fdevent::Waits;
use crate::wsgi::response::{Ctx, Step};
use evserver_http::encode::write_error_response;
use evserver_http::DateCache;
use evserver_platform::sys;
use pyo3::prelude::*;
use std::io::ErrorKind;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// One thread's own handles: its application object cache, wait slot, logger and Date.
pub(super) struct ThreadState {
    app: App,
    waits: Waits,
    log: Log,
    format: Format,
    date: DateCache,
}

/// How sending what was queued went.
enum Flushed {
    All,
    /// The socket is full: the rest waits in the queue.
    Partial,
    /// The client is gone (EPIPE, ECONNRESET, ...).
    Gone,
}

impl ThreadState {
    pub(super) fn new(py: Python<'_>, setup: ThreadSetup) -> PyResult<ThreadState> {
        Ok(ThreadState {
            app: App::new(py, setup.app, setup.templates, setup.forwarded)?,
            waits: Waits::of_this_thread(),
            log: setup.log,
            format: setup.format,
            date: DateCache::new(),
        })
    }

    /// Runs `job` until its response must wait or ends; returns what the loop gets back
    /// (nothing for a `Close`).
    /// `stopping` is raised when the worker stops: a response whose head has not gone out by
    /// then closes its connection.
    pub(super) fn run(
        &mut self,
        py: Python<'_>,
        job: Job,
        stopping: &AtomicBool,
    ) -> Option<Returned> {
        let stopping = || stopping.load(Ordering::Relaxed);
        self.date.refresh_at(Instant::now());
        let ThreadState {
            app,
            waits,
            log,
            format,
            date,
        } = self;
        let Job {
            slot,
            generation,
            fd,
            task,
            mut running,
            mut out,
            unsent,
        } = job;
        let mut stop_requested = false;
        let mut peer_strings = None;
        let (log, format) = (&*log, &*format);
        let mut ctx = Ctx {
            log,
            waits,
            date: date.get(),
            stop_requested: &mut stop_requested,
        };
        let mut ending = Ending::Complete;
        let mut step = match task {
            Task::Start(start) => {
                let Start {
                    listener,
                    head,
                    head_bytes,
                    body,
                    peer,
                    peer_strings: strings,
                    keep_alive,
                    access,
                    websocket,
                    offer_socket,
                } = *start;
                peer_strings = strings;
                let handed_socket = offer_socket.and_then(|received| match sys::dup_cloexec(fd) {
                    Ok(copy) => Some((copy, received)),
                    Err(e) => {
                        ctx.log
                            .warning(&format!("cannot offer gunicorn.socket: {e}"));
                        None
                    }
                });
                let request = Request {
                    listener,
                    head: &head,
                    head_bytes: &head_bytes,
                    body,
                    peer,
                    peer_strings: &mut peer_strings,
                    keep_alive,
                    websocket,
                    handed_socket,
                };
                match app.start(py, request, &mut ctx, &mut out) {
                    Ok(started) => {
                        let access = access.map(|mut record| {
                            if format.uses_environ() {
                                record.environ = Some(started.environ);
                            }
                            record
                        });
                        let new = running.insert(Box::new(Running {
                            response: started.response,
                            parked: None,
                            access,
                        }));
                        match started.step {
                            Some(step) => step,
                            None => {
                                if stopping() {
                                    new.response.refuse_keep_alive();
                                }
                                new.response.drive(py, &mut ctx, &mut out)
                            }
                        }
                    }
                    Err(PrepareError(e)) => {
                        ctx.log.exception("cannot prepare the request", &e);
                        out.write_with(|buf| {
                            write_error_response(
                                buf,
                                500,
                                "the request could not be prepared",
                                ctx.date,
                            )
                        });
                        flush(fd, &mut out);
                        return Some(Returned {
                            slot,
                            generation,
                            running: None,
                            out,
                            peer_strings,
                            handed: Handed::Done {
                                keep_alive: false,
                                stale_wait: false,
                            },
                            stop_requested,
                        });
                    }
                }
            }
            Task::Resume(resume) => {
                let current = running.as_mut()?;
                let response = &mut current.response;
                if stopping() {
                    response.refuse_keep_alive();
                }
                match resume {
                    Resume::Drive => response.drive(py, &mut ctx, &mut out),
                    Resume::EndBody => response.end_body(py, &mut ctx, &mut out),
                    Resume::EndForStop => {
                        ending = Ending::Stopped;
                        response.end_for_shutdown(py, &mut ctx, &mut out)
                    }
                    Resume::Close(ending) => {
                        response.close_iterable(py, &mut ctx);
                        log_ended(log, format, py, current, ending, unsent);
                        if let Some(done) = running.take() {
                            app.recycle(py, done.response);
                        }
                        return None;
                    }
                }
            }
        };
        let handed = loop {
            let Some(current) = running.as_mut() else {
                break Handed::Done {
                    keep_alive: false,
                    stale_wait: false,
                };
            };
            step = match step {
                Step::Send => match flush(fd, &mut out) {
                    Flushed::All => {
                        if stopping() {
                            current.response.refuse_keep_alive();
                        }
                        current.response.drive(py, &mut ctx, &mut out)
                    }
                    Flushed::Partial => break Handed::Send,
                    Flushed::Gone => {
                        current.response.close_iterable(py, &mut ctx);
                        ending = Ending::ClientGone;
                        break Handed::Gone;
                    }
                },
                Step::Park(wait) => break Handed::Park(wait),
                Step::SendFile => break Handed::SendFile,
                // The application has the connection: the loop closes its own copy.
                Step::TakenOver => break Handed::Gone,
                step @ (Step::Done { .. } | Step::Abort) => {
                    let (keep_alive, stale_wait) = match step {
                        Step::Done { keep_alive } => (keep_alive, current.response.stale_wait),
                        _ => {
                            if ending == Ending::Complete {
                                ending = Ending::Failed;
                            }
                            (false, false)
                        }
                    };
                    // What is left after a full socket, the loop sends.
                    if let Flushed::Gone = flush(fd, &mut out) {
                        ending = Ending::ClientGone;
                        break Handed::Gone;
                    }
                    break Handed::Done {
                        keep_alive,
                        stale_wait,
                    };
                }
            };
        };
        if matches!(handed, Handed::Done { .. } | Handed::Gone) {
            if let Some(done) = running.take() {
                log_ended(log, format, py, &done, ending, out.unsent() as u64);
                app.recycle(py, done.response);
            }
        }
        Some(Returned {
            slot,
            generation,
            running,
            out,
            peer_strings,
            handed,
            stop_requested,
        })
    }
}

/// Sends what `out` holds on `fd`, without blocking, until it is empty or the socket is full.
/// A job without a socket (-1: a TLS connection, whose bytes the loop encrypts) leaves it
/// all to the loop.
fn flush(fd: RawFd, out: &mut OutQueue<Keep>) -> Flushed {
    if fd < 0 {
        return Flushed::Partial;
    }
    while let Some(mut op) = out.next_send() {
        loop {
            // SAFETY: the op points into `out`, which is not touched during the call.
            let sent = unsafe {
                match op {
                    SendOp::Single(ptr, len) => sys::send_now(fd, ptr, len),
                    SendOp::Gathered => out.gather().send_now(fd),
                }
            };
            let n = match sent {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Flushed::Partial,
                Err(_) => return Flushed::Gone,
            };
            match out.complete(n) {
                Some(rest) => op = rest,
                None => break,
            }
        }
    }
    Flushed::All
}
