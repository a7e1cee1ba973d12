//! What the status page shows: a snapshot of the server (its workers' scoreboard cells), and
//! its three renderings (HTML, JSON, Prometheus metrics). Pure functions of the snapshot.

use super::supervisor::{Master, Phase, WorkerBody};
use evserver_platform::process;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// One worker's line on the status page.
pub struct WorkerStatus {
    pub slot: usize,
    pub pid: i32,
    pub state: &'static str,
    pub backend: &'static str,
    pub connections: u64,
    pub requests: u64,
    pub parked: u64,
    /// Thread mode: pool threads, those busy, requests waiting for one (0 inline).
    pub threads: u64,
    pub threads_busy: u64,
    pub queued: u64,
    pub websockets: u64,
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
                    threads: cell.threads.load(Relaxed),
                    threads_busy: cell.threads_busy.load(Relaxed),
                    queued: cell.queued.load(Relaxed),
                    websockets: cell.websockets.load(Relaxed),
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
                 \"threads\": {}, \"threads_busy\": {}, \"queued\": {}, \"websockets\": {}, \
                 \"cpu_seconds\": {:.3}, \"rss_bytes\": {}, \"heartbeat_age_ms\": {}}}",
                w.slot,
                w.pid,
                json_string(w.state),
                json_string(w.backend),
                w.connections,
                w.requests,
                w.parked,
                w.threads,
                w.threads_busy,
                w.queued,
                w.websockets,
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
        "evserver_threads",
        "gauge",
        "Threads of the worker's pool that run the application (0: inline, no pool).",
        &|w| w.threads.to_string(),
    );
    family(
        "evserver_threads_busy",
        "gauge",
        "Pool threads running the application now.",
        &|w| w.threads_busy.to_string(),
    );
    family(
        "evserver_queued_requests",
        "gauge",
        "Requests waiting for a free pool thread.",
        &|w| w.queued.to_string(),
    );
    family(
        "evserver_websockets",
        "gauge",
        "Open WebSocket conversations.",
        &|w| w.websockets.to_string(),
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
             <td>{}</td><td>{}</td><td>{:.2} s</td><td>{:.1} MiB</td><td>{} ms</td></tr>",
            w.slot,
            w.pid,
            w.state,
            w.backend,
            w.connections,
            w.requests,
            w.parked,
            w.websockets,
            if w.threads == 0 {
                "inline".to_string()
            } else {
                format!(
                    "{} busy, {} idle, {} queued",
                    w.threads_busy,
                    w.threads.saturating_sub(w.threads_busy),
                    w.queued
                )
            },
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
         <th>requests</th><th>parked</th><th>WebSockets</th><th>threads</th><th>CPU</th><th>memory</th><th>heartbeat</th></tr>{}</table>\
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
pub(super) mod tests {
    use super::*;

    pub(in crate::master) fn snapshot() -> Snapshot {
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
                threads: 4,
                threads_busy: 1,
                queued: 0,
                websockets: 0,
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
}
