//! The fan-out mode's report: a few lines of text, and a JSON document with both latency
//! histograms (HdrHistogram, V2 compressed and base64, as the request mode writes them).

use super::{Counts, Outcome, Plan, Publish};
use crate::report::{fmt_us, latency, Latency, Machine, Tool};
use serde::Serialize;
use std::io::{self, Write};

pub const SCHEMA: &str = "evserver-bench-fanout/1";

#[derive(Serialize)]
pub struct Document {
    pub schema: String,
    pub tool: Tool,
    pub started_at: String,
    pub machine: Machine,
    pub config: Config,
    #[serde(flatten)]
    pub counts: Counts,
    pub deliveries_per_sec: f64,
    /// Publish-to-receive latency of every delivery.
    pub latency: Latency,
    /// For each message, the latency of its last delivery: how long a broadcast took to
    /// reach everyone.
    pub last_delivery: Latency,
    pub elapsed_sec: f64,
}

#[derive(Serialize)]
pub struct Config {
    pub url: String,
    pub transport: String,
    pub subscribers: u32,
    pub publish: String,
    pub rate: f64,
    pub duration_sec: f64,
    pub message_size: usize,
    pub backend: String,
}

impl Document {
    pub fn new(url: &str, plan: &Plan, outcome: &Outcome, started_at: String) -> Document {
        let secs = outcome.elapsed.as_secs_f64();
        Document {
            schema: SCHEMA.into(),
            tool: Tool {
                name: "evserver-bench".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            started_at,
            machine: crate::machine::describe(),
            config: Config {
                url: url.into(),
                transport: plan.transport.name().into(),
                subscribers: plan.subscribers,
                publish: match &plan.publish {
                    Publish::Url(t) => format!("POST {}{}", t.host, t.path),
                    Publish::OverWebSocket => "ws".into(),
                },
                rate: plan.rate,
                duration_sec: plan.duration.as_secs_f64(),
                message_size: plan.message_size,
                backend: outcome.backend.into(),
            },
            counts: outcome.counts.clone(),
            deliveries_per_sec: if secs > 0.0 {
                outcome.counts.deliveries as f64 / secs
            } else {
                0.0
            },
            latency: latency(&outcome.latency),
            last_delivery: latency(&outcome.last_delivery),
            elapsed_sec: secs,
        }
    }

    pub fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        let p = |l: &Latency, k: &str| fmt_us(l.percentiles.get(k).copied().unwrap_or(0) as f64);
        let c = &self.counts;
        writeln!(
            out,
            "  {} subscribers ready ({} failed{}), backend {}",
            c.subscribers_ready,
            c.subscribers_failed,
            c.first_failure
                .as_deref()
                .map(|w| format!("; first: {w}"))
                .unwrap_or_default(),
            self.config.backend
        )?;
        writeln!(
            out,
            "  {} messages published ({} errors), {} deliveries in {:.2}s ({:.1}/s), {} lost",
            c.published,
            c.publish_errors,
            c.deliveries,
            self.elapsed_sec,
            self.deliveries_per_sec,
            c.lost
        )?;
        let l = &self.latency;
        writeln!(
            out,
            "  publish -> receive: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            p(l, "p50"),
            p(l, "p90"),
            p(l, "p99"),
            p(l, "p99.9"),
            fmt_us(l.max as f64)
        )?;
        let d = &self.last_delivery;
        writeln!(
            out,
            "  each message's last delivery: p50 {}  max {}",
            p(d, "p50"),
            fmt_us(d.max as f64)
        )
    }
}
