//! Tiny local HTTP servers written with std, and a helper that runs the bench and reads its
//! JSON document back.

#![allow(dead_code)]

use evserver_bench::report::Document;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

/// The backends every test runs with (io_uring only where the kernel allows it).
pub fn backends() -> Vec<&'static str> {
    let cfg = evserver_platform::Config {
        entries: 64,
        recv_buffer_size: 4096,
        recv_buffer_count: 64,
    };
    let mut v = vec!["poll"];
    if evserver_platform::Driver::select(evserver_platform::Choice::IoUring, &cfg).is_ok() {
        v.push("io_uring");
    }
    v
}

/// What a test server saw.
#[derive(Default)]
pub struct Seen {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
}

impl Seen {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// How a test server answers.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Keep-alive answers with `status` and a short body.
    Answer(u16),
    /// Accepts, reads, never answers.
    Silent,
}

/// Serves requests on one connection until it closes.
fn serve<S: Read + Write>(mut s: S, behaviour: Behaviour, seen: &Seen) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut close = false;
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            close |= head.contains("connection: close");
            buf.drain(..end + 4);
            seen.requests.fetch_add(1, Ordering::SeqCst);
            if let Behaviour::Answer(status) = behaviour {
                out.extend_from_slice(
                    format!("HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\nhello").as_bytes(),
                );
            }
        }
        if !out.is_empty() && s.write_all(&out).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

/// Serves every connection `incoming` yields on its own thread, counting them in `seen`.
fn accept_all<S, I>(incoming: I, behaviour: Behaviour, seen: Arc<Seen>)
where
    S: Read + Write + Send + 'static,
    I: Iterator<Item = std::io::Result<S>> + Send + 'static,
{
    thread::spawn(move || {
        for conn in incoming.flatten() {
            seen.connections.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            thread::spawn(move || serve(conn, behaviour, &seen));
        }
    });
}

/// A TCP server on a free loopback port; returns its URL and what it saw.
pub fn tcp_server(behaviour: Behaviour) -> (String, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hello", l.local_addr().expect("addr"));
    let seen = Arc::new(Seen::default());
    let incoming = std::iter::from_fn(move || Some(l.accept().map(|(s, _)| s)));
    accept_all(incoming, behaviour, seen.clone());
    (url, seen)
}

/// A keep-alive server on a unix socket; returns its `unix:` target and what it saw.
pub fn unix_server(dir: &std::path::Path) -> (String, Arc<Seen>) {
    let path = dir.join("bench.sock");
    let l = UnixListener::bind(&path).expect("bind");
    let seen = Arc::new(Seen::default());
    let incoming = std::iter::from_fn(move || Some(l.accept().map(|(s, _)| s)));
    accept_all(incoming, Behaviour::Answer(200), seen.clone());
    (format!("unix:{}:/hello", path.display()), seen)
}

/// A URL on a loopback port nobody listens on.
pub fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/")
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("evserver-bench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// Runs the bench with `args` (after the program name), writing JSON to a temp file; returns
/// the exit status and the document.
pub fn bench(name: &str, args: &[&str]) -> (i32, Document) {
    let dir = temp_dir(name);
    let json = dir.join("out.json");
    let mut argv = vec!["evserver-bench".to_string(), "--json".into()];
    argv.push(json.display().to_string());
    argv.extend(args.iter().map(|s| s.to_string()));
    let code = evserver_bench::main(argv);
    let text =
        std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no JSON ({e}), exit {code}"));
    let doc = serde_json::from_str(&text).expect("JSON document");
    let _ = std::fs::remove_dir_all(&dir);
    (code, doc)
}
