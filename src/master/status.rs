//! The status server (`-s/--status`): an HTML page, a JSON document and Prometheus metrics
//! with each worker's figures, served by the master from the scoreboard.

use super::supervisor::{Master, Phase, WorkerBody};
use crate::listen::Listener;
use evserver_http::encode::write_server_head;
use evserver_http::{parse_head, Head, Limits, Parsed};
use evserver_platform::process;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// How long a status client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

/// One worker's line on the status page.
pub struct WorkerStatus {
    pub slot: usize,
    pub pid: i32,
    pub state: &'static str,
    pub backend: &'static str,
    pub connections: u64,
    pub requests: u64,
    pub parked: u64,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub heartbeat_age_ms: u64,
}

/// The whole server at one moment.
pub struct Snapshot {
    pub master_pid: u32,
    pub uptime_seconds: f64,
    pub addresses: Vec<String>,
    pub workers_desired: usize,
    pub restarts: u64,
    pub workers: Vec<WorkerStatus>,
}

/// The status listener.
pub struct StatusServer {
    listener: Listener,
}

impl StatusServer {
    pub fn new(listener: Listener) -> StatusServer {
        StatusServer { listener }
    }

    pub fn fd(&self) -> RawFd {
        self.listener.fd()
    }

    pub fn display(&self) -> String {
        self.listener.display()
    }

    /// Answers every connection waiting to be accepted, one after the other.
    pub fn serve_pending(&self, snapshot: &Snapshot) {
        while let Ok((mut socket, _)) = self.listener.socket.accept() {
            let _ = socket.set_nonblocking(false);
            let _ = socket.set_read_timeout(Some(CLIENT_TIMEOUT));
            let _ = socket.set_write_timeout(Some(CLIENT_TIMEOUT));
            answer(&mut socket, snapshot);
        }
    }
}

impl<B: WorkerBody> Master<'_, B> {
    pub(super) fn snapshot(&self) -> Snapshot {
        let now = process::monotonic_millis();
        let mut workers: Vec<WorkerStatus> = self
            .children
            .iter()
            .filter_map(|child| {
                let cell = self.board.get(child.cell)?;
                Some(WorkerStatus {
                    slot: child.slot + 1,
                    pid: child.pid,
                    state: match child.phase {
                        Phase::Booting => "booting",
                        Phase::Running => "running",
                        Phase::Stopping => "stopping",
                    },
                    backend: cell.backend_name(),
                    connections: cell.connections.load(Relaxed),
                    requests: cell.requests.load(Relaxed),
                    parked: cell.parked.load(Relaxed),
                    cpu_seconds: cell.cpu_micros.load(Relaxed) as f64 / 1e6,
                    rss_bytes: cell.rss_bytes.load(Relaxed),
                    heartbeat_age_ms: now.saturating_sub(cell.heartbeat_ms.load(Relaxed)),
                })
            })
            .collect();
        workers.sort_by_key(|w| (w.slot, w.pid));
        Snapshot {
            master_pid: self.master_pid,
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            addresses: self.sockets.display(),
            workers_desired: self.desired,
            restarts: self.restarts,
            workers,
        }
    }

    pub(super) fn serve_status(&mut self) {
        let snapshot = self.snapshot();
        if let Some(status) = &self.status {
            let py = self.py;
            py.detach(|| status.serve_pending(&snapshot));
        }
    }
}

fn answer(stream: &mut (impl Read + Write), snapshot: &Snapshot) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut head = Head::default();
    let limits = Limits {
        max_head: 8192,
        ..Limits::default()
    };
    let parsed = loop {
        match parse_head(&buf, &limits, &mut head) {
            Ok(Parsed::Complete) => break Ok(()),
            Ok(Parsed::Partial) => {}
            Err(e) => break Err(e.status()),
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // With SO_RCVTIMEO set, SA_RESTART does not restart recv: a worker's SIGCHLD
            // interrupts it (signal(7)).
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    };
    let response = match parsed {
        Err(status) => reply(
            status,
            "text/plain",
            format!("{}\n", evserver_http::status::reason(status)),
        ),
        Ok(()) => {
            let method = head.method.of(&buf);
            if method != b"GET" && method != b"HEAD" {
                reply(405, "text/plain", "use GET\n".into())
            } else {
                match head.path.of(&buf) {
                    b"/" => reply(200, "text/html; charset=utf-8", render_html(snapshot)),
                    b"/status.json" => reply(200, "application/json", render_json(snapshot)),
                    b"/metrics" => reply(
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        render_metrics(snapshot),
                    ),
                    _ => reply(404, "text/plain", "not found\n".into()),
                }
            }
        }
    };
    let body_allowed = head.method.of(&buf) != b"HEAD";
    let _ = stream.write_all(&response.0);
    if body_allowed {
        let _ = stream.write_all(response.1.as_bytes());
    }
}

fn reply(status: u16, content_type: &str, body: String) -> (Vec<u8>, String) {
    let mut head = Vec::with_capacity(160);
    write_server_head(&mut head, status, content_type, body.len(), true, None);
    (head, body)
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn render_json(s: &Snapshot) -> String {
    let addresses: Vec<String> = s.addresses.iter().map(|a| json_string(a)).collect();
    let workers: Vec<String> = s
        .workers
        .iter()
        .map(|w| {
            format!(
                "{{\"worker\": {}, \"pid\": {}, \"state\": {}, \"backend\": {}, \
                 \"connections\": {}, \"requests\": {}, \"parked\": {}, \
                 \"cpu_seconds\": {:.3}, \"rss_bytes\": {}, \"heartbeat_age_ms\": {}}}",
                w.slot,
                w.pid,
                json_string(w.state),
                json_string(w.backend),
                w.connections,
                w.requests,
                w.parked,
                w.cpu_seconds,
                w.rss_bytes,
                w.heartbeat_age_ms
            )
        })
        .collect();
    format!(
        "{{\"server\": {}, \"master_pid\": {}, \"uptime_seconds\": {:.3}, \"listen\": [{}], \
         \"workers_desired\": {}, \"worker_restarts\": {}, \"workers\": [{}]}}\n",
        json_string(concat!("evserver/", env!("CARGO_PKG_VERSION"))),
        s.master_pid,
        s.uptime_seconds,
        addresses.join(", "),
        s.workers_desired,
        s.restarts,
        workers.join(", ")
    )
}

pub fn render_metrics(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, value: &dyn Fn(&WorkerStatus) -> String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for w in &s.workers {
                let _ = writeln!(
                    out,
                    "{name}{{worker=\"{}\",pid=\"{}\",backend=\"{}\"}} {}",
                    w.slot,
                    w.pid,
                    w.backend,
                    value(w)
                );
            }
        };
    family("evserver_connections", "gauge", "Connections open.", &|w| {
        w.connections.to_string()
    });
    family(
        "evserver_requests_total",
        "counter",
        "Requests served.",
        &|w| w.requests.to_string(),
    );
    family(
        "evserver_parked_requests",
        "gauge",
        "Requests parked in fdevent waits.",
        &|w| w.parked.to_string(),
    );
    family(
        "evserver_cpu_seconds_total",
        "counter",
        "CPU time used by the worker.",
        &|w| format!("{:.3}", w.cpu_seconds),
    );
    family(
        "evserver_resident_memory_bytes",
        "gauge",
        "Resident memory of the worker.",
        &|w| w.rss_bytes.to_string(),
    );
    let _ = writeln!(
        out,
        "# HELP evserver_workers Worker processes running.\n# TYPE evserver_workers gauge\nevserver_workers {}",
        s.workers.len()
    );
    let _ = writeln!(
        out,
        "# HELP evserver_worker_restarts_total Workers replaced since the start.\n# TYPE evserver_worker_restarts_total counter\nevserver_worker_restarts_total {}",
        s.restarts
    );
    let _ = writeln!(
        out,
        "# HELP evserver_uptime_seconds Seconds since the master started.\n# TYPE evserver_uptime_seconds gauge\nevserver_uptime_seconds {:.3}",
        s.uptime_seconds
    );
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render_html(s: &Snapshot) -> String {
    let mut rows = String::new();
    for w in &s.workers {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.2} s</td><td>{:.1} MiB</td><td>{} ms</td></tr>",
            w.slot,
            w.pid,
            w.state,
            w.backend,
            w.connections,
            w.requests,
            w.parked,
            w.cpu_seconds,
            w.rss_bytes as f64 / (1024.0 * 1024.0),
            w.heartbeat_age_ms
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>evserver status</title>\
         <meta http-equiv=\"refresh\" content=\"2\"><style>body{{font-family:sans-serif}}\
         td,th{{padding:2px 10px;text-align:right}}</style></head><body>\
         <h1>evserver status</h1><p>master pid {}, up {:.0} s, listening on {}, {} workers \
         wanted, {} restarts. <a href=\"/status.json\">JSON</a> · <a href=\"/metrics\">metrics</a></p>\
         <table><tr><th>worker</th><th>pid</th><th>state</th><th>backend</th><th>connections</th>\
         <th>requests</th><th>parked</th><th>CPU</th><th>memory</th><th>heartbeat</th></tr>{}</table>\
         </body></html>\n",
        s.master_pid,
        s.uptime_seconds,
        html_escape(&s.addresses.join(", ")),
        s.workers_desired,
        s.restarts,
        rows
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            master_pid: 10,
            uptime_seconds: 1.5,
            addresses: vec!["http://127.0.0.1:8080".into()],
            workers_desired: 1,
            restarts: 0,
            workers: vec![WorkerStatus {
                slot: 1,
                pid: 11,
                state: "running",
                backend: "io_uring",
                connections: 3,
                requests: 42,
                parked: 2,
                cpu_seconds: 0.25,
                rss_bytes: 1 << 20,
                heartbeat_age_ms: 5,
            }],
        }
    }

    #[test]
    fn metrics_have_one_sample_per_worker() {
        let m = render_metrics(&snapshot());
        assert!(m.contains(
            "evserver_requests_total{worker=\"1\",pid=\"11\",backend=\"io_uring\"} 42\n"
        ));
        assert!(m.contains(
            "evserver_parked_requests{worker=\"1\",pid=\"11\",backend=\"io_uring\"} 2\n"
        ));
        assert!(m.contains("# TYPE evserver_connections gauge\n"));
    }

    #[test]
    fn json_names_every_figure() {
        let j = render_json(&snapshot());
        for key in [
            "\"requests\": 42",
            "\"parked\": 2",
            "\"connections\": 3",
            "\"backend\": \"io_uring\"",
            "\"master_pid\": 10",
        ] {
            assert!(j.contains(key), "{key} in {j}");
        }
    }

    #[test]
    fn answers_routes_and_refuses_the_rest() {
        struct Pipe(std::io::Cursor<Vec<u8>>, Vec<u8>);
        impl Read for Pipe {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(b)
            }
        }
        impl Write for Pipe {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.1.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let ask = |raw: &[u8]| {
            let mut p = Pipe(std::io::Cursor::new(raw.to_vec()), Vec::new());
            answer(&mut p, &snapshot());
            String::from_utf8(p.1).unwrap()
        };
        assert!(ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(ask(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(ask(b"GET / HTTP/9.9\r\n\r\n").starts_with("HTTP/1.1 505"));
        let head_only = ask(b"HEAD /status.json HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head_only.ends_with("\r\n\r\n"));
    }
}
