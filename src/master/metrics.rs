//! `/metrics`: a snapshot of the server in Prometheus' text exposition format, one sample
//! per worker labelled by its slot (`worker="1"`: stable across a worker's replacement) and
//! backend, the request-duration histogram, and the server-wide figures.

use super::status_page::{Snapshot, WorkerStatus};
use crate::scoreboard::DURATION_BUCKETS;
use std::fmt::Write;

/// The exposition of `s`.
pub fn render_metrics(s: &Snapshot) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in per_worker_families() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for w in &s.workers {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(w), value(w));
        }
    }
    duration_histogram(&mut out, s);
    let version = env!("CARGO_PKG_VERSION");
    let _ = write!(
        out,
        "# HELP evserver_build_info evserver's version and the Python it runs.\n\
         # TYPE evserver_build_info gauge\n\
         evserver_build_info{{version=\"{version}\",python=\"{}\"}} 1\n\
         # HELP evserver_workers Worker processes running.\n\
         # TYPE evserver_workers gauge\n\
         evserver_workers {}\n\
         # HELP evserver_worker_restarts_total Workers replaced since the start.\n\
         # TYPE evserver_worker_restarts_total counter\n\
         evserver_worker_restarts_total {}\n\
         # HELP evserver_uptime_seconds Seconds since the master started.\n\
         # TYPE evserver_uptime_seconds gauge\n\
         evserver_uptime_seconds {:.3}\n\
         # HELP process_start_time_seconds Start time of the master since the Unix epoch in seconds.\n\
         # TYPE process_start_time_seconds gauge\n\
         process_start_time_seconds {:.3}\n",
        s.python_version,
        s.workers.len(),
        s.restarts,
        s.uptime_seconds,
        s.start_time_seconds,
    );
    out
}

type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&WorkerStatus) -> String,
);

fn per_worker_families() -> [Family; 10] {
    [
        ("evserver_connections", "gauge", "Connections open.", |w| {
            w.connections.to_string()
        }),
        (
            "evserver_requests_total",
            "counter",
            "Requests served.",
            |w| w.requests.to_string(),
        ),
        (
            "evserver_parked_requests",
            "gauge",
            "Requests parked in fdevent waits.",
            |w| w.parked.to_string(),
        ),
        (
            "evserver_parked_seconds_total",
            "counter",
            "Time requests spent parked in fdevent waits (seconds, summed over requests).",
            |w| format!("{:.6}", w.parked_seconds),
        ),
        (
            "evserver_threads",
            "gauge",
            "Threads of the worker's pool that run the application (0: inline, no pool).",
            |w| w.threads.to_string(),
        ),
        (
            "evserver_threads_busy",
            "gauge",
            "Pool threads running the application now.",
            |w| w.threads_busy.to_string(),
        ),
        (
            "evserver_queued_requests",
            "gauge",
            "Requests waiting for a free pool thread.",
            |w| w.queued.to_string(),
        ),
        (
            "evserver_websockets",
            "gauge",
            "Open WebSocket conversations.",
            |w| w.websockets.to_string(),
        ),
        (
            "evserver_cpu_seconds_total",
            "counter",
            "CPU time used by the worker.",
            |w| format!("{:.3}", w.cpu_seconds),
        ),
        (
            "evserver_resident_memory_bytes",
            "gauge",
            "Resident memory of the worker.",
            |w| w.rss_bytes.to_string(),
        ),
    ]
}

fn labels(w: &WorkerStatus) -> String {
    format!("worker=\"{}\",backend=\"{}\"", w.slot, w.backend)
}

/// `evserver_request_duration_seconds`: from the request's dispatch to the end of its
/// response (parked time and streaming included), cumulative buckets as Prometheus wants.
fn duration_histogram(out: &mut String, s: &Snapshot) {
    let name = "evserver_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a request's dispatch to the end of its response.\n\
         # TYPE {name} histogram"
    );
    for w in &s.workers {
        let labels = labels(w);
        let mut cumulative = 0;
        for (i, count) in w.duration_counts.iter().enumerate() {
            cumulative += count;
            let bound = DURATION_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {:.6}", w.duration_sum_seconds);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::status_page::tests::snapshot;
    use super::*;

    #[test]
    fn one_sample_per_worker_labelled_by_slot() {
        let m = render_metrics(&snapshot());
        assert!(m.contains("evserver_requests_total{worker=\"1\",backend=\"io_uring\"} 42\n"));
        assert!(m.contains("evserver_parked_requests{worker=\"1\",backend=\"io_uring\"} 2\n"));
        assert!(m.contains("evserver_parked_seconds_total{worker=\"1\",backend=\"io_uring\"} 1.5"));
        assert!(m.contains("# TYPE evserver_connections gauge\n"));
        assert!(!m.contains("pid="));
    }

    #[test]
    fn the_histogram_is_cumulative() {
        let m = render_metrics(&snapshot());
        let name = "evserver_request_duration_seconds";
        let labels = "worker=\"1\",backend=\"io_uring\"";
        assert!(m.contains(&format!("# TYPE {name} histogram\n")));
        assert!(m.contains(&format!("{name}_bucket{{{labels},le=\"0.0001\"}} 40\n")));
        assert!(m.contains(&format!("{name}_bucket{{{labels},le=\"0.5\"}} 40\n")));
        assert!(m.contains(&format!("{name}_bucket{{{labels},le=\"1\"}} 41\n")));
        assert!(m.contains(&format!("{name}_bucket{{{labels},le=\"3600\"}} 41\n")));
        assert!(m.contains(&format!("{name}_bucket{{{labels},le=\"+Inf\"}} 42\n")));
        assert!(m.contains(&format!("{name}_count{{{labels}}} 42\n")));
        assert!(m.contains(&format!("{name}_sum{{{labels}}} 7201.002000\n")));
    }

    #[test]
    fn build_info_and_start_time() {
        let m = render_metrics(&snapshot());
        assert!(m.contains(&format!(
            "evserver_build_info{{version=\"{}\",python=\"3.11.7\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(m.contains("process_start_time_seconds 1764900000.500\n"));
    }
}
