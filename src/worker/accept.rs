//! Accepting connections: a multishot accept per listener, paused at `--max-connections`
//! (new clients wait in the kernel's backlog) and while the worker stops.

use super::body::BodySink;
use super::conn::Conn;
use super::drain::DRAIN_IDLE;
use super::op::Op;
use super::Worker;
use evserver_http::Framer;
use evserver_platform::Completion;

/// Bytes of trailers or chunk-size lines allowed in a chunked body.
const MAX_CHUNK_METADATA: usize = 16 * 1024;

impl Worker {
    pub(super) fn arm_accept(&mut self, index: usize) {
        if self.draining.is_some() || self.accept_paused {
            return;
        }
        let l = &mut self.listeners[index];
        if !l.armed && l.fd >= 0 {
            l.armed = true;
            self.driver
                .accept_multi(l.fd, Op::Accept.token(index as u32, 0));
        }
    }

    pub(super) fn on_accept(&mut self, c: Completion) {
        let index = c.token.slot() as usize;
        if !c.more {
            self.listeners[index].armed = false;
        }
        if c.result >= 0 {
            self.adopt_connection(index, c.result);
        }
        if !c.more && self.draining.is_some() {
            self.take_backlog_and_close(index);
            return;
        }
        if c.result < 0 {
            let errno = -c.result;
            if errno != libc::ECANCELED {
                self.log.warning(&format!(
                    "accept failed: {}",
                    std::io::Error::from_raw_os_error(errno)
                ));
            }
            // Re-armed by the next sweep, so a persistent error (EMFILE) cannot spin.
            return;
        }
        let limit = self.settings.max_connections;
        if limit > 0 && self.open_connections >= limit && !self.accept_paused {
            self.pause_accepting();
        } else if !c.more {
            self.arm_accept(index);
        }
    }

    /// Takes connection `fd`, accepted on listener `index`, and waits for its request.
    fn adopt_connection(&mut self, index: usize, fd: i32) {
        let (slot, generation) = self.slots.allocate();
        let framer = Framer::new(self.settings.limits.clone(), MAX_CHUNK_METADATA);
        let body = BodySink::new(self.settings.spill_body);
        let mut conn = Box::new(Conn::new(fd, generation, index, framer, body, self.now));
        conn.deadline = Some(self.now + self.settings.keep_alive);
        if let Some(config) = &self.settings.tls {
            match super::tls::TlsConn::new(config) {
                Ok(tls) => conn.tls = Some(tls),
                Err(e) => {
                    self.log
                        .warning(&format!("cannot start TLS on a connection: {e}"));
                    conn.eof = true;
                }
            }
        }
        if let Some(allowed) = &self.settings.proxy_protocol {
            if allowed.allows(conn.peer().map(|a| a.ip())) {
                conn.proxy_pending = Some(Vec::new());
            }
        }
        self.open_connections += 1;
        if self.draining.is_some() {
            // Accepted just before the accept was cancelled: take one request, then close.
            conn.deadline = Some(self.now + DRAIN_IDLE);
        }
        self.arm_recv(slot, &mut conn);
        self.slots.put(slot, conn);
    }

    /// The stop's last word on listener `index`, once its accept has ended: the connections
    /// already waiting in its backlog are taken (a client the kernel announced to this
    /// worker's accept alone, as it was cancelled, would otherwise wait there unseen by the
    /// other workers), then this worker's copy of the listener is closed.
    fn take_backlog_and_close(&mut self, index: usize) {
        let fd = self.listeners[index].fd;
        if fd >= 0 {
            // accept_now retries EINTR; any error (WouldBlock: the backlog is empty) ends it.
            while let Ok(conn) = evserver_platform::sys::accept_now(fd) {
                self.adopt_connection(index, conn);
            }
        }
        self.close_listener(index);
    }

    pub(super) fn close_listener(&mut self, index: usize) {
        let l = &mut self.listeners[index];
        if l.fd >= 0 {
            self.driver.close(l.fd);
            l.fd = -1;
        }
    }

    /// Stops accepting until a connection closes (`--max-connections` reached); new clients
    /// wait in the kernel's backlog meanwhile.
    fn pause_accepting(&mut self) {
        self.accept_paused = true;
        self.log.warning(&format!(
            "{} connections open (--max-connections); not accepting until one closes",
            self.open_connections
        ));
        self.cancel_accepts();
    }

    /// Accepts again once a connection closed below `--max-connections`.
    pub(super) fn resume_accepting(&mut self) {
        if self.accept_paused && self.open_connections < self.settings.max_connections {
            self.accept_paused = false;
            self.log
                .info("below --max-connections again; accepting new connections");
            for i in 0..self.listeners.len() {
                self.arm_accept(i);
            }
        }
    }

    pub(super) fn cancel_accepts(&mut self) {
        for (i, l) in self.listeners.iter().enumerate() {
            if l.armed {
                self.driver.cancel(Op::Accept.token(i as u32, 0));
            }
        }
    }
}
