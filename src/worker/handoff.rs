//! Thread mode, the loop's side: complete requests and resumed responses go to the pool as
//! jobs (the response and the send queue move with them), and what comes back is applied:
//! send the rest, park, send a file, or finish the request.

use super::accesslog::{Ending, Record};
use super::conn::{Conn, Running, State};
use super::event_loop::Mode;
use super::op::Op;
use super::outq::OutQueue;
use super::pool::job::{Handed, Job, Resume, Returned, Start, Task};
use super::Worker;
use crate::websocket::py::WebSocketRequest;
use crate::wsgi::input::Body;
use evserver_platform::{Completion, Interest};

impl Worker {
    /// Whether application code runs on a pool of threads.
    pub(super) fn threaded(&self) -> bool {
        matches!(self.mode, Mode::Pool(_))
    }

    /// Hands a complete request to the pool. The thread writes to the socket, so nothing may
    /// be queued ahead of its answer: the caller waits until the send queue is empty.
    pub(super) fn start_on_pool(
        &mut self,
        slot: u32,
        conn: &mut Conn,
        body: Option<(Body, u64)>,
        access: Option<Box<Record>>,
        websocket: Option<WebSocketRequest>,
    ) {
        if !self.threaded() {
            return;
        }
        // Under TLS the socket carries ciphertext: there is nothing to offer.
        let offer_socket = (websocket.is_some() && conn.tls.is_none())
            .then(|| self.stop_reading_for_offer(slot, conn));
        let Mode::Pool(pool) = &self.mode else {
            return;
        };
        let peer = conn.peer();
        let (head, head_bytes) = conn.framer.head();
        let start = Start {
            listener: conn.listener,
            head: head.clone(),
            head_bytes: head_bytes.to_vec(),
            body,
            peer,
            peer_strings: conn.peer_strings.take(),
            keep_alive: head.keep_alive && !conn.eof && self.draining.is_none(),
            access,
            websocket,
            offer_socket,
        };
        conn.state = State::OnThread { close: None };
        pool.submit(Job {
            slot,
            generation: conn.generation,
            fd: conn.fd_for_threads(),
            task: Task::Start(Box::new(start)),
            running: None,
            out: std::mem::take(&mut conn.out),
            unsent: 0,
        });
    }

    /// An upgrade request's socket is offered to the application (`gunicorn.socket`, see
    /// `wsgi/handoff.rs`): the loop's receive is cancelled, synchronously, so that nothing the
    /// client sends once answered lands here instead of with the library the application
    /// hands the socket to. Returns the bytes received after the request, which go with it.
    fn stop_reading_for_offer(&mut self, slot: u32, conn: &mut Conn) -> Vec<u8> {
        conn.socket_offered = true;
        if conn.recv_armed {
            self.driver
                .cancel_now(Op::Recv.token(slot, conn.generation));
        }
        conn.framer.unconsumed().to_vec()
    }

    /// Hands the running response to a pool thread, to go on as `resume` says.
    pub(super) fn resume_on_pool(&mut self, slot: u32, conn: &mut Conn, resume: Resume) {
        let Mode::Pool(pool) = &self.mode else {
            return;
        };
        let State::App(running) =
            std::mem::replace(&mut conn.state, State::OnThread { close: None })
        else {
            return;
        };
        pool.submit(Job {
            slot,
            generation: conn.generation,
            fd: conn.fd_for_threads(),
            task: Task::Resume(resume),
            running: Some(running),
            out: std::mem::take(&mut conn.out),
            unsent: 0,
        });
    }

    /// Hands the response of a connection that ends to a pool thread, for its `close()` and
    /// its access-log line. Nothing comes back; the fd is the loop's to close.
    pub(super) fn close_on_pool(&mut self, conn: &Conn, running: Box<Running>, ending: Ending) {
        let Mode::Pool(pool) = &self.mode else {
            return;
        };
        pool.submit(Job {
            slot: 0,
            generation: 0,
            fd: -1,
            task: Task::Resume(Resume::Close(ending)),
            running: Some(running),
            out: OutQueue::new(),
            unsent: conn.out.unsent() as u64,
        });
    }

    /// The pool's wake-up fd is readable: applies every job that came back.
    pub(super) fn on_pool_wake(&mut self, c: Completion) {
        let Mode::Pool(pool) = &self.mode else {
            return;
        };
        let wake = pool.wake_fd();
        let mut returned = std::mem::take(&mut self.returned);
        pool.take_returned(&mut returned);
        if c.result != -libc::ECANCELED && !self.stop {
            self.driver
                .poll_fd(wake, Interest::Readable, None, Op::Pool.token(0, 0));
        }
        for r in returned.drain(..) {
            self.on_returned(r);
        }
        self.returned = returned;
    }

    fn on_returned(&mut self, r: Returned) {
        if r.stop_requested {
            self.stop = true;
        }
        let Some(mut conn) = self.slots.take_of(r.slot, r.generation) else {
            return; // cannot happen: a slot is kept while a thread holds its job
        };
        let slot = r.slot;
        let close = match conn.state {
            State::OnThread { close } => close,
            _ => {
                self.put_conn(slot, conn);
                return;
            }
        };
        conn.out = r.out;
        conn.socket_offered = false;
        if r.peer_strings.is_some() {
            conn.peer_strings = r.peer_strings;
        }
        conn.state = match r.running {
            Some(running) => State::App(running),
            None => State::Reading,
        };
        if let Some(ending) = close {
            // The connection ended while the thread held it.
            self.close_with(slot, &mut conn, ending);
            self.put_conn(slot, conn);
            return;
        }
        self.ws_after_step(slot, &mut conn);
        match r.handed {
            Handed::Send => {
                conn.awaiting_sent = true;
                self.start_send(slot, &mut conn);
            }
            Handed::Park(wait) if self.ends_parked_for_stop(&conn) => {
                let _ = wait;
                self.end_parked(slot, &mut conn);
            }
            Handed::Park(wait) => {
                self.start_send(slot, &mut conn);
                self.park(slot, &mut conn, &wait);
            }
            Handed::SendFile => self.send_file(slot, &mut conn),
            Handed::Done {
                keep_alive,
                stale_wait,
            } => {
                if stale_wait {
                    self.warn_stale_wait(&conn);
                }
                self.after_response(&mut conn, keep_alive);
                self.start_send(slot, &mut conn);
                self.advance(slot, &mut conn);
                self.arm_recv(slot, &mut conn);
            }
            Handed::Gone => self.close_now(slot, &mut conn),
        }
        // Reading again after an offer the application did not take.
        self.arm_recv(slot, &mut conn);
        self.put_conn(slot, conn);
    }
}
