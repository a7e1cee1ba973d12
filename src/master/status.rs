//! The status server (`-s/--status`): answers GET `/` (HTML), `/status.json` and `/metrics`
//! from a snapshot of the workers. It runs in the master's own poll loop, each client a small
//! state machine (read the head, write the answer) with its own deadline, so idle or slow
//! clients delay no one.

use super::metrics::render_metrics;
use super::status_page::{render_html, render_json, Snapshot};
use crate::listen::Listener;
use evserver_http::encode::write_server_head;
use evserver_http::{parse_head, Head, Limits, Parsed};
use evserver_platform::Interest;
use socket2::Socket;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// How long a status client may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once; beyond it the one nearest its deadline is dropped for a new one.
const MAX_CLIENTS: usize = 256;
/// The largest request head a status client may send.
const MAX_HEAD: usize = 8192;

/// The figures, made the first time an answer needs them during one pass over the clients.
struct Figures<'a> {
    made: Option<Snapshot>,
    make: &'a mut dyn FnMut() -> Snapshot,
}

impl Figures<'_> {
    fn get(&mut self) -> &Snapshot {
        self.made.get_or_insert_with(&mut *self.make)
    }
}

/// One status client.
struct Client {
    socket: Socket,
    input: Vec<u8>,
    /// The answer once the head is read, and how much of it was written.
    output: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

/// The status listener and its clients.
pub struct StatusServer {
    listener: Listener,
    clients: Vec<Client>,
}

impl StatusServer {
    pub fn new(listener: Listener) -> StatusServer {
        StatusServer {
            listener,
            clients: Vec::new(),
        }
    }

    pub fn fd(&self) -> RawFd {
        self.listener.fd()
    }

    pub fn display(&self) -> String {
        self.listener.display()
    }

    /// Appends the fds to wait on and what for: the listener, then each client.
    pub fn interests(&self, out: &mut Vec<(RawFd, Interest)>) {
        out.push((self.fd(), Interest::Readable));
        for client in &self.clients {
            let interest = if client.output.is_some() {
                Interest::Writable
            } else {
                Interest::Readable
            };
            out.push((client.socket.as_raw_fd(), interest));
        }
    }

    /// Moves every ready client on (`ready` in the order of `interests`), accepts new ones and
    /// drops those past their deadline. `snapshot` makes the figures when an answer is due.
    pub fn on_ready(&mut self, ready: &[bool], snapshot: &mut dyn FnMut() -> Snapshot) {
        let now = Instant::now();
        let mut figures = Figures {
            made: None,
            make: snapshot,
        };
        let mut keep = Vec::with_capacity(self.clients.len());
        for (i, mut client) in std::mem::take(&mut self.clients).into_iter().enumerate() {
            let alive = if ready.get(i + 1).copied().unwrap_or(false) {
                client.progress(&mut figures)
            } else {
                true
            };
            if alive && client.deadline > now {
                keep.push(client);
            }
        }
        self.clients = keep;
        if ready.first().copied().unwrap_or(false) {
            self.accept(now);
        }
    }

    fn accept(&mut self, now: Instant) {
        while let Ok((socket, _)) = self.listener.socket.accept() {
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            if self.clients.len() >= MAX_CLIENTS {
                if let Some(oldest) =
                    (0..self.clients.len()).min_by_key(|&i| self.clients[i].deadline)
                {
                    self.clients.swap_remove(oldest);
                }
            }
            self.clients.push(Client {
                socket,
                input: Vec::new(),
                output: None,
                deadline: now + CLIENT_TIMEOUT,
            });
        }
    }
}

impl Client {
    /// Reads what came, answers once the head is complete, writes what the socket takes.
    /// Returns false once the client is done with (answered, gone or broken).
    fn progress(&mut self, figures: &mut Figures<'_>) -> bool {
        if self.output.is_none() {
            let mut chunk = [0u8; 2048];
            loop {
                match self.socket.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return false,
                }
            }
            match answer(&self.input, figures) {
                Some(response) => self.output = Some((response, 0)),
                None => return self.input.len() <= MAX_HEAD,
            }
        }
        let Some((response, written)) = &mut self.output else {
            return true;
        };
        while *written < response.len() {
            match self.socket.write(&response[*written..]) {
                Ok(n) => *written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        false
    }
}

/// The whole answer to the request head in `input`, or `None` while it is incomplete.
fn answer(input: &[u8], figures: &mut Figures<'_>) -> Option<Vec<u8>> {
    let mut head = Head::default();
    let limits = Limits {
        max_head: MAX_HEAD,
        ..Limits::default()
    };
    let (status, content_type, body) = match parse_head(input, &limits, &mut head) {
        Ok(Parsed::Partial) => return None,
        Err(e) => (
            e.status(),
            "text/plain",
            format!("{}\n", evserver_http::status::reason(e.status())),
        ),
        Ok(Parsed::Complete) => {
            let method = head.method.of(input);
            if method != b"GET" && method != b"HEAD" {
                (405, "text/plain", "use GET\n".to_string())
            } else {
                match head.path.of(input) {
                    b"/" => (200, "text/html; charset=utf-8", render_html(figures.get())),
                    b"/status.json" => (200, "application/json", render_json(figures.get())),
                    b"/metrics" => (
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        render_metrics(figures.get()),
                    ),
                    _ => (404, "text/plain", "not found\n".to_string()),
                }
            }
        }
    };
    let mut out = Vec::with_capacity(160 + body.len());
    write_server_head(&mut out, status, content_type, body.len(), true, None);
    if head.method.of(input) != b"HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::status_page::tests::snapshot;

    #[test]
    fn answers_routes_and_refuses_the_rest() {
        let mut make = snapshot;
        let mut figures = Figures {
            made: None,
            make: &mut make,
        };
        let mut ask = |raw: &[u8]| {
            let answered = answer(raw, &mut figures).expect("a complete head");
            String::from_utf8(answered).unwrap()
        };
        assert!(ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(ask(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(ask(b"GET / HTTP/9.9\r\n\r\n").starts_with("HTTP/1.1 505"));
        let head_only = ask(b"HEAD /status.json HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head_only.ends_with("\r\n\r\n"));
        assert!(answer(b"GET /metrics HTTP/1.1\r\n", &mut figures).is_none());
    }
}
