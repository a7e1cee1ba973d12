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
    /// Seconds requests spent parked in fdevent waits, in all.
    pub parked_seconds: f64,
    /// Requests per duration bucket (`scoreboard::DURATION_BUCKETS`, then `+Inf`; not
    /// cumulative) and their total duration.
    pub duration_counts: Vec<u64>,
    pub duration_sum_seconds: f64,
}

/// The whole server at one moment.
pub struct Snapshot {
    pub master_pid: u32,
    pub uptime_seconds: f64,
    pub addresses: Vec<String>,
    pub workers_desired: usize,
    pub restarts: u64,
    pub workers: Vec<WorkerStatus>,
    /// The master's start, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// The Python running the application (`3.11.7`).
    pub python_version: String,
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
                    parked_seconds: cell.parked_micros.load(Relaxed) as f64 / 1e6,
                    duration_counts: cell
                        .duration_counts
                        .iter()
                        .map(|c| c.load(Relaxed))
                        .collect(),
                    duration_sum_seconds: cell.duration_sum_micros.load(Relaxed) as f64 / 1e6,
                })
            })
            .collect();
        workers.sort_by_key(|w| (w.slot, w.pid));
        let uptime = self.started.elapsed();
        let start_time_seconds = std::time::SystemTime::now()
            .checked_sub(uptime)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        let python = self.py.version_info();
        Snapshot {
            master_pid: self.master_pid,
            uptime_seconds: uptime.as_secs_f64(),
            start_time_seconds,
            python_version: format!("{}.{}.{}", python.major, python.minor, python.patch),
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
                parked_seconds: 1.5,
                duration_counts: {
                    let mut counts = vec![0; crate::scoreboard::DURATION_BUCKETS.len() + 1];
                    counts[0] = 40;
                    counts[12] = 1;
                    counts[crate::scoreboard::DURATION_BUCKETS.len()] = 1;
                    counts
                },
                duration_sum_seconds: 7201.002,
            }],
            start_time_seconds: 1_764_900_000.5,
            python_version: "3.11.7".into(),
        }
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
