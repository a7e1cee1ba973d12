//! `evserver bench`: an HTTP/1.1 load generator on evserver's platform layer (io_uring or the
//! poll backend), with HdrHistogram latencies, a fixed-rate mode corrected for coordinated
//! omission, JSON output and a regression gate, and a fan-out mode (`--subscribers`) that times
//! every delivery of published messages to WebSocket, SSE or long-poll subscribers. [`main`]
//! is the whole command.

pub mod cli;
pub mod engine;
pub mod fanout;
pub mod machine;
pub mod regress;
pub mod report;
pub mod request;
pub mod response;
pub mod stats;
pub mod target;

use clap::Parser;
use cli::{exit, Args};
use engine::{Progress, ThreadPlan};
use evserver_platform::signals::StopFlag;
use hdrhistogram::Histogram;
use regress::Check;
use report::{Document, RunResult};
use stats::Stats;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use target::{Target, TargetError};

/// Raised by SIGINT during a run: the run stops early and reports what it measured.
fn interrupted() -> &'static AtomicBool {
    StopFlag::flag()
}

/// Runs `evserver bench` with `args` (the first one is the program name) and returns the
/// exit status (see [`cli::exit`]).
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(Failed(code, msg)) => {
            eprintln!("evserver bench: {msg}");
            code
        }
    }
}

/// A failure before or during the run: exit status and one line.
struct Failed(i32, String);

fn usage(msg: impl Into<String>) -> Failed {
    Failed(exit::USAGE, msg.into())
}

fn runtime(msg: impl Into<String>) -> Failed {
    Failed(exit::RUNTIME, msg.into())
}

/// Everything a run needs, prepared once.
struct Prepared {
    target: Target,
    request: Vec<u8>,
    duration: Option<Duration>,
}

fn prepare(args: &Args) -> Result<Prepared, Failed> {
    if args.threads > args.connections {
        return Err(usage("-c/--connections must be at least -t/--threads"));
    }
    if args.pipeline > 1 && (args.rate.is_some() || args.close) {
        return Err(usage(
            "--pipeline cannot be combined with --rate or --close",
        ));
    }
    let target = Target::parse(&args.url).map_err(|e| match e {
        TargetError::Syntax(m) => usage(m),
        TargetError::Resolve(m) => runtime(m),
    })?;
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone().into_bytes(),
        (None, Some(path)) => std::fs::read(path)
            .map_err(|e| runtime(format!("cannot read --body-file {}: {e}", path.display())))?,
        (None, None) => Vec::new(),
    };
    let request = request::build(&target, &args.method, &args.headers, &body, args.close)
        .map_err(|e| usage(e.0))?;
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    Ok(Prepared {
        target,
        request,
        duration,
    })
}

fn run(args: &Args) -> Result<i32, Failed> {
    if args.subscribers.is_some() {
        return run_fanout(args);
    }
    let prepared = prepare(args)?;
    let checks = args
        .asserts
        .iter()
        .map(|a| Check::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| usage(e.0))?;
    let baseline = match &args.compare {
        Some(path) => Some(load_baseline(path)?),
        None => None,
    };
    let json_to_stdout = args.json.as_deref() == Some("-");
    let mut out: Box<dyn Write> = if json_to_stdout {
        Box::new(io::stderr())
    } else {
        Box::new(io::stdout())
    };
    let mode = match (args.rate, args.requests, prepared.duration) {
        (Some(r), _, _) => format!("fixed rate {r}/s"),
        (None, Some(n), Some(d)) => format!("{n} requests or {d:?}"),
        (None, Some(n), None) => format!("{n} requests"),
        (None, None, d) => format!("{:?}", d.unwrap_or_default()),
    };
    let _ = writeln!(
        out,
        "evserver bench {} : {} thread(s), {} connections, {mode}",
        args.url, args.threads, args.connections
    );

    // A connection needs an fd: where the limit stays too low, sockets that cannot be created
    // count as connect errors and the first failure is reported.
    let _ = evserver_platform::sys::raise_open_files_limit();
    let started_at = SystemTime::now();
    // SIGINT stops the run (which then reports) instead of killing the process.
    let guard = StopFlag::install(libc::SIGINT).ok();
    let mut runs = Vec::new();
    let mut hists = Vec::new();
    let mut backend_used = String::new();
    for i in 0..args.runs {
        let (result, hist, backend, fallback) = run_once(args, &prepared)?;
        if i == 0 {
            if let Some(reason) = fallback {
                let _ = writeln!(out, "  note: {reason}; using the poll backend");
            }
        }
        backend_used = backend.to_string();
        if args.runs > 1 {
            let _ = writeln!(
                out,
                "  run {}/{}: {:.1} requests/sec, p99 {}, {} errors",
                i + 1,
                args.runs,
                result.requests_per_sec,
                report::fmt_us(result.latency.percentiles.get("p99").copied().unwrap_or(0) as f64),
                result.errors.total
            );
        }
        runs.push(result);
        hists.push(hist);
        if interrupted().load(Ordering::Relaxed) {
            break;
        }
    }
    drop(guard);
    let finished_at = SystemTime::now();

    let summary = report::summary(&runs);
    let doc = Document {
        schema: report::SCHEMA.into(),
        tool: report::Tool {
            name: "evserver-bench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        started_at: machine::rfc3339(started_at),
        finished_at: machine::rfc3339(finished_at),
        machine: machine::describe(),
        config: run_config(args, &prepared, &backend_used),
        summary,
        runs,
    };

    // The text report: the median run (the only one, usually).
    let median = median_run(&doc.runs);
    let _ = writeln!(out, "  backend {backend_used}");
    let _ = report::print_run(&mut out, &doc.runs[median]);
    if args.latency {
        let _ = report::print_spectrum(&mut out, "Latency", &hists[median].0);
        if let Some(u) = &hists[median].1 {
            let _ = report::print_spectrum(&mut out, "Uncorrected latency", u);
        }
    }
    if doc.runs.len() > 1 {
        let s = &doc.summary;
        let _ = writeln!(
            out,
            "  Over {} runs: requests/sec median {:.1} (min {:.1}, max {:.1}, spread {:.1}%), p99 median {}",
            s.runs,
            s.requests_per_sec.median,
            s.requests_per_sec.min,
            s.requests_per_sec.max,
            s.requests_per_sec.range_pct(),
            report::fmt_us(s.p99_us.median)
        );
    }
    if let Some(why) = doc.runs.iter().find_map(|r| r.rate.as_ref()?.shortfall()) {
        let _ = writeln!(out, "  warning: {why}");
    }
    if interrupted().load(Ordering::Relaxed) {
        let _ = writeln!(
            out,
            "  note: interrupted, the figures cover the time until then"
        );
    }

    let text = serde_json::to_string_pretty(&doc).map_err(|e| runtime(e.to_string()))?;
    if let Some(dest) = &args.json {
        if dest == "-" {
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "{text}");
        } else {
            write_file(std::path::Path::new(dest), &text)?;
        }
    }
    let mut code = exit::OK;
    if let Some(path) = &args.save {
        if doc.runs.iter().any(|r| r.requests == 0) {
            // An endless response (a stream, a long-poll) or a server that never answered:
            // nothing to compare a later run with.
            let _ = out.flush();
            eprintln!(
                "evserver bench: not saved as a baseline: {}: a run completed no request",
                path.display()
            );
            code = exit::RUNTIME;
        } else {
            write_file(path, &text)?;
            let _ = writeln!(out, "  saved as baseline: {}", path.display());
        }
    }

    let mut regressed = false;
    if let Some((path, base)) = &baseline {
        regressed = regress::compare(
            &mut out,
            base,
            &doc,
            args.threshold,
            &path.display().to_string(),
        )
        .unwrap_or(false);
    }
    let mut failed = false;
    for check in &checks {
        let (ok, line) = check.evaluate(&doc.runs);
        let _ = writeln!(out, "{line}");
        failed |= !ok;
    }
    if failed {
        code = exit::ASSERTION;
    } else if regressed {
        code = exit::REGRESSION;
    }
    let _ = out.flush();
    Ok(code)
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), Failed> {
    std::fs::write(path, format!("{text}\n"))
        .map_err(|e| runtime(format!("cannot write {}: {e}", path.display())))
}

fn load_baseline(path: &std::path::Path) -> Result<(std::path::PathBuf, Document), Failed> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| runtime(format!("cannot read --compare {}: {e}", path.display())))?;
    let doc: Document = serde_json::from_str(&text).map_err(|e| {
        runtime(format!(
            "{} is not an evserver bench result ({e})",
            path.display()
        ))
    })?;
    if !doc.schema.starts_with("evserver-bench/") {
        return Err(runtime(format!(
            "{} has schema {:?}, not {}",
            path.display(),
            doc.schema,
            report::SCHEMA
        )));
    }
    Ok((path.to_path_buf(), doc))
}

/// The index of the run with the median throughput.
fn median_run(runs: &[RunResult]) -> usize {
    let mut idx: Vec<usize> = (0..runs.len()).collect();
    idx.sort_by(|&a, &b| {
        runs[a]
            .requests_per_sec
            .total_cmp(&runs[b].requests_per_sec)
    });
    idx[idx.len() / 2]
}

fn run_config(args: &Args, p: &Prepared, backend_used: &str) -> report::RunConfig {
    report::RunConfig {
        url: args.url.clone(),
        method: args.method.clone(),
        headers: args.headers.clone(),
        body_bytes: match (&args.body, &args.body_file) {
            (Some(b), _) => b.len() as u64,
            (None, Some(f)) => std::fs::metadata(f).map_or(0, |m| m.len()),
            _ => 0,
        },
        connections: args.connections,
        threads: args.threads,
        duration_s: p.duration.map(|d| d.as_secs_f64()),
        requests: args.requests,
        rate: args.rate,
        timeout_s: args.timeout.as_secs_f64(),
        pipeline: args.pipeline,
        close: args.close,
        warmup_s: args.warmup.unwrap_or_default().as_secs_f64(),
        runs: args.runs,
        threshold_pct: args.threshold,
        asserts: args.asserts.clone(),
        backend: args.backend.as_str().into(),
        backend_used: backend_used.into(),
    }
}

type Hists = (Histogram<u64>, Option<Histogram<u64>>);

/// One run: the threads, the progress line, the merged result.
fn run_once(
    args: &Args,
    p: &Prepared,
) -> Result<(RunResult, Hists, &'static str, Option<String>), Failed> {
    let threads = args.threads as usize;
    let choice = args.backend.choice();
    let mut batch = Vec::with_capacity(p.request.len() * args.pipeline as usize);
    for _ in 0..args.pipeline {
        batch.extend_from_slice(&p.request);
    }
    let start = Instant::now();
    let measure_from = start + args.warmup.unwrap_or_default();
    let progress: Vec<Progress> = (0..threads).map(|_| Progress::default()).collect();
    let share = |total: u64, i: usize| {
        total / threads as u64 + u64::from((i as u64) < total % threads as u64)
    };
    let addr = p.target.endpoint.connect_addr().map_err(|e| {
        Failed(
            exit::RUNTIME,
            format!("cannot connect to {}: {e}", args.url),
        )
    })?;
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let plan = ThreadPlan {
                    addr: Box::new(addr.clone()),
                    batch: batch.clone().into_boxed_slice(),
                    request_len: p.request.len(),
                    pipeline: args.pipeline,
                    connections: share(u64::from(args.connections), i) as u32,
                    close: args.close,
                    head_requests: args.method.eq_ignore_ascii_case("HEAD"),
                    timeout: args.timeout,
                    rate: args.rate.map(|r| r / threads as f64),
                    quota: args.requests.map(|n| share(n, i)),
                    backend: choice,
                    measure_from,
                    duration: p.duration,
                };
                let progress = &progress[i];
                std::thread::Builder::new()
                    .name(format!("bench-{i}"))
                    .spawn_scoped(s, move || engine::run_thread(plan, progress, interrupted()))
            })
            .collect();
        show_progress(&handles, &progress, measure_from, p.duration);
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a bench thread panicked"))),
                Err(e) => Err(e),
            })
            .collect::<Vec<_>>()
    });
    let mut merged = Stats::new(args.rate.is_some());
    let mut elapsed = Duration::ZERO;
    let mut backend = "";
    let mut fallback = None;
    for r in results {
        let r = r.map_err(|e| runtime(format!("cannot run: {e}")))?;
        merged.merge(&r.stats);
        elapsed = elapsed.max(r.elapsed);
        backend = r.backend;
        fallback = fallback.or(r.fallback);
    }
    let result = report::run_result(&merged, elapsed.as_secs_f64(), args.threads, args.rate);
    Ok((
        result,
        (merged.latency, merged.uncorrected),
        backend,
        fallback,
    ))
}

/// A live progress line on a terminal (standard error), once a second, until the threads end.
fn show_progress<T>(
    handles: &[io::Result<std::thread::ScopedJoinHandle<'_, T>>],
    progress: &[Progress],
    measure_from: Instant,
    duration: Option<Duration>,
) {
    let tty = io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64);
    let mut next = Instant::now() + Duration::from_secs(1);
    let mut shown = false;
    while handles
        .iter()
        .any(|h| h.as_ref().is_ok_and(|h| !h.is_finished()))
    {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if !tty || now < next {
            continue;
        }
        next += Duration::from_secs(1);
        let done: u64 = progress
            .iter()
            .map(|p| p.responses.load(Ordering::Relaxed))
            .sum();
        let errors: u64 = progress
            .iter()
            .map(|p| p.errors.load(Ordering::Relaxed))
            .sum();
        let rate = (done.saturating_sub(last.1)) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, done);
        let line = if now < measure_from {
            format!(
                "  warming up, {:.0}s left",
                (measure_from - now).as_secs_f64()
            )
        } else {
            let t = now.duration_since(measure_from).as_secs();
            let of = duration.map_or(String::new(), |d| format!("/{}s", d.as_secs()));
            format!("  [{t}s{of}] {done} requests, {rate:.0} req/s, {errors} errors")
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        shown = true;
    }
    if shown {
        let _ = write!(io::stderr(), "\r\x1b[2K");
    }
}

/// `--subscribers N`: the fan-out mode (see [`fanout`]).
fn run_fanout(args: &Args) -> Result<i32, Failed> {
    let plan = fanout_plan(args)?;
    let _ = evserver_platform::sys::raise_open_files_limit();
    let json_to_stdout = args.json.as_deref() == Some("-");
    let mut out: Box<dyn Write> = if json_to_stdout {
        Box::new(io::stderr())
    } else {
        Box::new(io::stdout())
    };
    let _ = writeln!(
        out,
        "evserver bench {} : fan-out, {} {} subscribers, publishing {}/s for {:?}",
        args.url,
        plan.subscribers,
        plan.transport.name(),
        plan.rate,
        plan.duration
    );
    let started_at = machine::rfc3339(SystemTime::now());
    let outcome = fanout::run(&plan).map_err(|e| runtime(format!("fan-out: {e}")))?;
    let doc = fanout::report::Document::new(&args.url, &plan, &outcome, started_at);
    let _ = doc.print(&mut out);
    if args.latency {
        let _ = report::print_spectrum(&mut out, "Publish -> receive latency", &outcome.latency);
    }
    let _ = out.flush();
    if let Some(dest) = &args.json {
        let text = serde_json::to_string_pretty(&doc).map_err(|e| runtime(e.to_string()))?;
        if dest == "-" {
            let _ = writeln!(io::stdout().lock(), "{text}");
        } else {
            write_file(std::path::Path::new(dest), &text)?;
        }
    }
    Ok(exit::OK)
}

fn fanout_plan(args: &Args) -> Result<fanout::Plan, Failed> {
    use cli::TransportArg;
    use fanout::subscriber::Transport;
    let transport = match args.transport {
        TransportArg::Ws => Transport::Ws,
        TransportArg::Sse => Transport::Sse,
        TransportArg::Poll => Transport::Poll,
    };
    // A ws:// URL is an http:// one that asks for the upgrade.
    let url = match args.url.strip_prefix("ws://") {
        Some(rest) => format!("http://{rest}"),
        None => args.url.clone(),
    };
    let parse = |url: &str| {
        Target::parse(url).map_err(|e| match e {
            TargetError::Syntax(m) => usage(m),
            TargetError::Resolve(m) => runtime(m),
        })
    };
    let target = parse(&url)?;
    let publish = match args.publish.as_deref() {
        Some("ws") if transport == Transport::Ws => fanout::Publish::OverWebSocket,
        Some("ws") => return Err(usage("--publish ws needs --transport ws")),
        Some(url) => fanout::Publish::Url(parse(url)?),
        None => return Err(usage("--subscribers needs --publish URL (or ws)")),
    };
    let addr = target
        .endpoint
        .connect_addr()
        .map_err(|e| runtime(format!("{}: {e}", args.url)))?;
    Ok(fanout::Plan {
        addr,
        host: target.host,
        path: target.path,
        transport,
        subscribers: args.subscribers.unwrap_or(1),
        publish,
        rate: args.rate.unwrap_or(1.0),
        duration: args.duration.unwrap_or(Duration::from_secs(10)),
        message_size: args.message_size as usize,
        backend: args.backend.choice(),
    })
}
