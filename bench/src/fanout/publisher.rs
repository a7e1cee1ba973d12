//! The URL publisher: a thread of its own that POSTs each message on a kept-alive blocking
//! connection at its planned time (so a slow answer never delays the subscribers' reading),
//! stamping the send time into the message just before it goes.

use super::marker::Marker;
use crate::response::ResponseParser;
use crate::target::{Endpoint, Target};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A connection to the publish URL.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn connect(endpoint: &Endpoint) -> std::io::Result<Box<dyn Stream>> {
    Ok(match endpoint {
        Endpoint::Tcp(addr) => {
            let s = std::net::TcpStream::connect_timeout(addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            Box::new(s)
        }
        Endpoint::Unix(path) => {
            let s = std::os::unix::net::UnixStream::connect(path)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            Box::new(s)
        }
    })
}

/// POSTs `body` and reads the answer: its status, and whether the connection stays open.
fn post(stream: &mut dyn Stream, target: &Target, body: &[u8]) -> std::io::Result<(u16, bool)> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        target.path,
        target.host,
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    let mut parser = ResponseParser::new(false);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut status = None;
        parser
            .feed(&buf[..n], |s| status = Some(s))
            .map_err(|e| std::io::Error::other(e.0))?;
        if let Some(s) = status {
            return Ok((s, !parser.must_close()));
        }
    }
}

pub struct Url;

impl Url {
    /// Starts publishing message `k` at `start + k * interval` until `end` (or `stop`);
    /// `published` counts the messages sent. Returns the thread and its error count.
    pub fn start(
        target: &Target,
        origin: Instant,
        (start, interval, end): (Instant, Duration, Instant),
        size: usize,
        published: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
    ) -> (JoinHandle<()>, Arc<AtomicU64>) {
        let errors = Arc::new(AtomicU64::new(0));
        let counted = errors.clone();
        let target = target.clone();
        let thread = std::thread::spawn(move || {
            let mut stream: Option<Box<dyn Stream>> = None;
            let mut due = start;
            let mut seq = 0u64;
            while due < end && !stop.load(Ordering::Relaxed) {
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let marker = Marker {
                    seq,
                    sent_ns: origin.elapsed().as_nanos() as u64,
                };
                let body = marker.message(size);
                // A kept-alive connection the server closed meanwhile gets one retry on a
                // fresh one.
                let mut sent = match stream.as_mut() {
                    Some(s) => post(s.as_mut(), &target, body.as_bytes()),
                    None => Err(std::io::ErrorKind::NotConnected.into()),
                };
                if sent.is_err() {
                    sent = connect(&target.endpoint).and_then(|mut s| {
                        let r = post(s.as_mut(), &target, body.as_bytes());
                        stream = Some(s);
                        r
                    });
                }
                match sent {
                    Ok((status, keep)) => {
                        if !keep {
                            stream = None;
                        }
                        if (200..300).contains(&status) {
                            seq += 1;
                            published.store(seq, Ordering::Relaxed);
                        } else {
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                        stream = None;
                    }
                }
                due += interval;
            }
        });
        (thread, errors)
    }
}
