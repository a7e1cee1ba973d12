//! The command line of `evserver bench`: flags in wrk's spirit, parsed with clap.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Exit statuses (also listed in `--help` and the README).
pub mod exit {
    /// The run finished (errors, if any, are in the report).
    pub const OK: i32 = 0;
    /// The run could not be made: bad target address, unreadable file, no event loop, ...
    pub const RUNTIME: i32 = 1;
    /// The command line is wrong.
    pub const USAGE: i32 = 2;
    /// An `--assert` check failed.
    pub const ASSERTION: i32 = 3;
    /// `--compare`: throughput fell or p99 rose beyond `--threshold`.
    pub const REGRESSION: i32 = 4;
}

const AFTER_HELP: &str = "\
Modes: as fast as possible (default), or -R/--rate N requests/second on a fixed schedule,
with latency measured from each request's planned send time (coordinated omission corrected).

Targets: http://HOST[:PORT][/PATH] or unix:/SOCKET/PATH[:/URL/PATH].

Exit statuses: 0 ok, 1 runtime error, 2 usage error, 3 an --assert failed,
4 regression against --compare.";

/// Which event-loop backend drives the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Auto,
    #[value(name = "io_uring")]
    IoUring,
    Poll,
}

impl Backend {
    /// The platform's choice of event loop.
    pub fn choice(self) -> evserver_platform::Choice {
        match self {
            Backend::Auto => evserver_platform::Choice::Auto,
            Backend::IoUring => evserver_platform::Choice::IoUring,
            Backend::Poll => evserver_platform::Choice::Poll,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::IoUring => "io_uring",
            Backend::Poll => "poll",
        }
    }
}

/// evserver bench: an HTTP/1.1 load generator with honest latencies and a regression gate.
#[derive(Parser, Debug, Clone)]
#[command(name = "evserver bench", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Target: http://HOST[:PORT][/PATH] or unix:/SOCKET/PATH[:/URL/PATH].
    pub url: String,

    /// Open connections, spread over the threads.
    #[arg(short = 'c', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,

    /// Threads, each with its own event loop, connections and histogram.
    #[arg(short = 't', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// How long to measure (e.g. 10s, 1m, 500ms). Default 10s, or no limit with -n.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after exactly this many requests (answered or failed).
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Add a request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,

    /// Request body (sets Content-Length).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,

    /// Request body read from a file.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,

    /// Abort and count a request (or connect) taking longer than this; its connection is
    /// re-opened.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Requests sent back to back on a connection before reading the answers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pipeline: u32,

    /// A new connection for every request (sends "Connection: close"); latency then
    /// includes the connect.
    #[arg(long)]
    pub close: bool,

    /// Run this long first without counting anything.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Option<Duration>,

    /// Print the full latency percentile spectrum.
    #[arg(long)]
    pub latency: bool,

    /// Fixed rate in requests/second (all threads together); latency is measured from each
    /// request's planned send time.
    #[arg(short = 'R', long, value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Write the results as JSON to FILE ("-": standard output, the text report then goes to
    /// standard error).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Keep this run as a baseline (the JSON document) in FILE.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// Compare with a baseline saved by --save (or --json); a regression exits with status 4.
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,

    /// Regression threshold for --compare in percent (throughput down or p99 up by more).
    #[arg(long, default_value = "5%", value_parser = parse_percent, value_name = "PERCENT")]
    pub threshold: f64,

    /// Repeat the run and report the median and spread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,

    /// Fail the run (status 3) unless this holds, e.g. 'p99<2ms', 'errors==0', 'rps>=1000'
    /// (repeatable).
    #[arg(long = "assert", value_name = "CHECK")]
    pub asserts: Vec<String>,

    /// Event-loop backend: io_uring where the kernel allows it, or the poll backend.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// Fan-out mode: N subscribers listen on the URL (ws://... for WebSocket) while messages
    /// are published at -R/--rate per second (default 1); reports publish-to-receive latency
    /// over every delivery, deliveries/s and lost messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub subscribers: Option<u32>,

    /// Fan-out: how subscribers listen: ws, sse (server-sent events) or poll (long-poll,
    /// GET URL?last_id=ID as evserver.comet answers it).
    #[arg(long, value_enum, default_value_t = TransportArg::Ws, requires = "subscribers")]
    pub transport: TransportArg,

    /// Fan-out: where messages are published: a URL they are POSTed to, or "ws" (over the
    /// first subscriber's WebSocket; the server must pass on what it receives).
    #[arg(long, value_name = "URL|ws", requires = "subscribers")]
    pub publish: Option<String>,

    /// Fan-out: bytes per message (its timing marker, padded).
    #[arg(long, value_name = "BYTES", default_value_t = 64, requires = "subscribers",
          value_parser = clap::value_parser!(u32).range(1..=(1 << 24)))]
    pub message_size: u32,
}

/// `--transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    Ws,
    Sse,
    Poll,
}

/// Parses "10s", "1m", "500ms", "250us", "1h", "1.5s" or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 10s, 1m, 500ms)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use us, ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{s:?} is out of range"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{s:?} is not a positive rate")),
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if p >= 0.0 && p.is_finite() => Ok(p),
        _ => Err(format!("{s:?} is not a percentage (e.g. 5 or 5%)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn percents_take_an_optional_sign() {
        assert_eq!(parse_percent("5%"), Ok(5.0));
        assert_eq!(parse_percent("2.5"), Ok(2.5));
        assert!(parse_percent("-1").is_err());
    }
}
