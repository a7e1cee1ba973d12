//! The results: the versioned JSON document (configuration, machine, time, runs, summary),
//! built from the merged statistics, and the text report printed for people.

use crate::stats::Stats;
use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The schema of the JSON document; the number changes when a field changes meaning.
pub const SCHEMA: &str = "evserver-bench/1";

/// The percentiles reported everywhere, with their JSON keys.
pub const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 50.0),
    ("p75", 75.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
];

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Document {
    pub schema: String,
    pub tool: Tool,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub machine: Machine,
    pub config: RunConfig,
    /// Median and spread over the runs.
    pub summary: Summary,
    pub runs: Vec<RunResult>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Machine {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpus: u32,
}

/// Everything the command line asked for.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunConfig {
    pub url: String,
    pub method: String,
    pub headers: Vec<String>,
    pub body_bytes: u64,
    pub connections: u32,
    pub threads: u32,
    pub duration_s: Option<f64>,
    pub requests: Option<u64>,
    pub rate: Option<f64>,
    pub timeout_s: f64,
    pub pipeline: u32,
    pub close: bool,
    pub warmup_s: f64,
    pub runs: u32,
    pub threshold_pct: f64,
    pub asserts: Vec<String>,
    /// The backend asked for ("auto", "io_uring", "poll") and the one that ran.
    pub backend: String,
    pub backend_used: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunResult {
    pub duration_s: f64,
    /// Responses received (any status).
    pub requests: u64,
    /// Requests sent.
    pub sent: u64,
    /// Bytes received (heads and bodies).
    pub bytes: u64,
    pub requests_per_sec: f64,
    pub bytes_per_sec: f64,
    /// From the send, or in rate mode from the planned send time.
    pub latency: Latency,
    /// Rate mode: from the actual send (what coordinated omission would show).
    pub latency_uncorrected: Option<Latency>,
    pub rate: Option<RateResult>,
    pub errors: Errors,
    /// Responses by status code.
    pub status: BTreeMap<String, u64>,
    pub timeline: Vec<TimelineSecond>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Latency {
    /// Always "us" (microseconds).
    pub unit: String,
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub max: u64,
    /// "p50", "p75", "p90", "p99", "p99.9", "p99.99".
    pub percentiles: BTreeMap<String, u64>,
    /// The HdrHistogram in its standard serialised form: V2 compressed, base64.
    pub histogram: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RateResult {
    pub target: f64,
    /// Requests sent per second.
    pub achieved: f64,
    /// Requests sent more than 1 ms after their planned time.
    pub late_sends: u64,
    /// Whether at least 95% of the target rate was sent.
    pub reached: bool,
    /// Requests that were due while every connection waited for a response.
    #[serde(default)]
    pub waited_for_connection: u64,
    /// How busy the generator's threads were while recording, in percent of their time.
    #[serde(default)]
    pub generator_busy_pct: f64,
}

impl RateResult {
    /// Why the target rate was not reached, and what to do, told apart from the generator's
    /// own CPU and whether requests found every connection waiting: `None` when it was.
    pub fn shortfall(&self) -> Option<String> {
        if self.reached {
            return None;
        }
        let intro = format!(
            "target rate {:.1}/s not reached (sent {:.1}/s)",
            self.target, self.achieved
        );
        Some(if self.generator_busy_pct >= GENERATOR_BUSY_PCT {
            format!(
                "{intro}: the generator is the limit (its threads were busy {:.0}% of the \
                 time); add threads (-t)",
                self.generator_busy_pct
            )
        } else if self.waited_for_connection > 0 {
            format!(
                "{intro}: the server is the limit: {} requests found every connection waiting \
                 for a response while the generator was busy only {:.0}% of the time",
                self.waited_for_connection, self.generator_busy_pct
            )
        } else {
            format!(
                "{intro}: the generator fell behind its schedule (busy {:.0}% of the time); \
                 add threads (-t)",
                self.generator_busy_pct
            )
        })
    }
}

/// Above this share of its time busy, the generator is the limit of a rate run.
const GENERATOR_BUSY_PCT: f64 = 90.0;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub parse: u64,
    /// Responses with status >= 400, by status.
    pub status: BTreeMap<String, u64>,
    pub total: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TimelineSecond {
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Summary {
    pub runs: u32,
    pub requests_per_sec: Spread,
    pub p99_us: Spread,
    pub errors: Spread,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub stdev: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread {
                median: 0.0,
                min: 0.0,
                max: 0.0,
                stdev: 0.0,
            };
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
            stdev: var.sqrt(),
        }
    }

    /// The spread as a percentage of the median: (max - min) / median.
    pub fn range_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median * 100.0
        }
    }
}

/// The latency summary of `h`.
pub fn latency(h: &Histogram<u64>) -> Latency {
    let empty = h.is_empty();
    let percentiles = PERCENTILES
        .iter()
        .map(|&(k, q)| {
            (
                k.to_string(),
                if empty { 0 } else { h.value_at_percentile(q) },
            )
        })
        .collect();
    Latency {
        unit: "us".into(),
        count: h.len(),
        min: if empty { 0 } else { h.min() },
        mean: if empty { 0.0 } else { h.mean() },
        stdev: if empty { 0.0 } else { h.stdev() },
        max: if empty { 0 } else { h.max() },
        percentiles,
        histogram: serialize(h),
    }
}

/// V2 compressed + base64: what HdrHistogram's log readers take.
pub fn serialize(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// Reads back a histogram written by [`serialize`].
pub fn deserialize(s: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &bytes[..])
        .ok()
}

/// Builds one run's results from the merged statistics of `threads` threads.
pub fn run_result(
    stats: &Stats,
    elapsed_s: f64,
    threads: u32,
    target_rate: Option<f64>,
) -> RunResult {
    let per_sec = |n: f64| if elapsed_s > 0.0 { n / elapsed_s } else { 0.0 };
    let status: BTreeMap<String, u64> = stats
        .status
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(code, &n)| (code.to_string(), n))
        .collect();
    let error_status: BTreeMap<String, u64> = status
        .iter()
        .filter(|(code, _)| code.as_str() >= "400")
        .map(|(c, &n)| (c.clone(), n))
        .collect();
    let e = &stats.errors;
    let total = e.total() + error_status.values().sum::<u64>();
    let rate = target_rate.map(|target| {
        let achieved = per_sec(stats.sent as f64);
        let thread_time = elapsed_s * 1e6 * f64::from(threads.max(1));
        RateResult {
            target,
            achieved,
            late_sends: stats.late,
            reached: achieved >= target * 0.95,
            waited_for_connection: stats.starved,
            generator_busy_pct: if thread_time > 0.0 {
                (stats.cpu_micros as f64 / thread_time * 100.0).min(100.0)
            } else {
                0.0
            },
        }
    });
    // The last second is cut short by the end of the run: keep only whole ones.
    let whole = elapsed_s.floor() as usize;
    let timeline = stats
        .timeline
        .iter()
        .take(whole.max(1))
        .enumerate()
        .map(|(i, s)| TimelineSecond {
            second: i as u64,
            requests: s.responses,
            errors: s.errors,
            bytes: s.bytes,
        })
        .collect();
    RunResult {
        duration_s: elapsed_s,
        requests: stats.responses,
        sent: stats.sent,
        bytes: stats.bytes,
        requests_per_sec: per_sec(stats.responses as f64),
        bytes_per_sec: per_sec(stats.bytes as f64),
        latency: latency(&stats.latency),
        latency_uncorrected: stats.uncorrected.as_ref().map(latency),
        rate,
        errors: Errors {
            connect: e.connect,
            read: e.read,
            write: e.write,
            timeout: e.timeout,
            parse: e.parse,
            status: error_status,
            total,
        },
        status,
        timeline,
    }
}

/// The median and spread over the runs.
pub fn summary(runs: &[RunResult]) -> Summary {
    let take = |f: &dyn Fn(&RunResult) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
    Summary {
        runs: runs.len() as u32,
        requests_per_sec: take(&|r| r.requests_per_sec),
        p99_us: take(&|r| r.latency.percentiles.get("p99").copied().unwrap_or(0) as f64),
        errors: take(&|r| r.errors.total as f64),
    }
}

/// A latency in microseconds, shown with a fitting unit.
pub fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

/// A byte count with a binary unit.
pub fn fmt_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0}{}", UNITS[i])
    } else {
        format!("{v:.2}{}", UNITS[i])
    }
}

fn latency_lines(out: &mut dyn Write, label: &str, l: &Latency) -> io::Result<()> {
    writeln!(
        out,
        "  {label:<12} min {}  mean {}  stdev {}  max {}",
        fmt_us(l.min as f64),
        fmt_us(l.mean),
        fmt_us(l.stdev),
        fmt_us(l.max as f64)
    )?;
    let pcts: Vec<String> = PERCENTILES
        .iter()
        .map(|&(k, _)| {
            format!(
                "{k} {}",
                fmt_us(l.percentiles.get(k).copied().unwrap_or(0) as f64)
            )
        })
        .collect();
    writeln!(out, "  {:<12} {}", "", pcts.join("  "))
}

/// The text report of one run.
pub fn print_run(out: &mut dyn Write, r: &RunResult) -> io::Result<()> {
    writeln!(
        out,
        "  {} requests in {:.2}s, {} read",
        r.requests,
        r.duration_s,
        fmt_bytes(r.bytes as f64)
    )?;
    writeln!(
        out,
        "  Requests/sec {:.1}   Transfer/sec {}",
        r.requests_per_sec,
        fmt_bytes(r.bytes_per_sec)
    )?;
    // Rate mode: from the planned send time (coordinated omission corrected), and beside it
    // from the actual send.
    let label = if r.rate.is_some() {
        "Corrected"
    } else {
        "Latency"
    };
    latency_lines(out, label, &r.latency)?;
    if let Some(u) = &r.latency_uncorrected {
        latency_lines(out, "Uncorrected", u)?;
    }
    if let Some(rate) = &r.rate {
        writeln!(
            out,
            "  Rate         target {:.1}/s  achieved {:.1}/s  late sends {}",
            rate.target, rate.achieved, rate.late_sends
        )?;
    }
    let e = &r.errors;
    if e.total == 0 {
        writeln!(out, "  Errors       none")?;
    } else {
        let mut parts = Vec::new();
        for (name, n) in [
            ("connect", e.connect),
            ("read", e.read),
            ("write", e.write),
            ("timeout", e.timeout),
            ("parse", e.parse),
        ] {
            if n > 0 {
                parts.push(format!("{name} {n}"));
            }
        }
        for (code, n) in &e.status {
            parts.push(format!("status {code}: {n}"));
        }
        writeln!(out, "  Errors       {} ({})", e.total, parts.join(", "))?;
    }
    Ok(())
}

/// The full percentile spectrum of `h` (--latency).
pub fn print_spectrum(out: &mut dyn Write, label: &str, h: &Histogram<u64>) -> io::Result<()> {
    writeln!(out, "  {label} distribution (us):")?;
    writeln!(
        out,
        "  {:>12} {:>12} {:>14}",
        "value", "percentile", "count"
    )?;
    if h.is_empty() {
        return Ok(());
    }
    for v in h.iter_quantiles(5) {
        writeln!(
            out,
            "  {:>12} {:>12.6} {:>14}",
            v.value_iterated_to(),
            v.quantile_iterated_to(),
            v.count_since_last_iteration()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(busy: f64, waited: u64) -> RateResult {
        RateResult {
            target: 1000.0,
            achieved: 600.0,
            late_sends: 10,
            reached: false,
            waited_for_connection: waited,
            generator_busy_pct: busy,
        }
    }

    #[test]
    fn a_missed_rate_blames_the_generator_or_the_server_not_both() {
        let busy = rate(97.0, 50).shortfall().unwrap();
        assert!(busy.contains("generator is the limit") && busy.contains("add threads"));
        let server = rate(20.0, 50).shortfall().unwrap();
        assert!(server.contains("server is the limit"), "{server}");
        assert!(
            !server.contains("add connections") && !server.contains("-c"),
            "{server}"
        );
        let behind = rate(40.0, 0).shortfall().unwrap();
        assert!(behind.contains("fell behind"), "{behind}");
        let mut reached = rate(20.0, 0);
        reached.reached = true;
        assert_eq!(reached.shortfall(), None);
    }
}
