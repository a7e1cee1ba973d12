//! The command line: clap definitions of every option (each also read from an `EVSERVER_*`
//! environment variable, and gunicorn's spelling accepted beside evserver's), the merge of a
//! gunicorn-style config file (`config_file`) and the answer to gunicorn flags evserver does
//! not have (`gunicorn`). The README's CLI reference is generated from these.

pub mod config_file;
pub mod gunicorn;
pub mod tls;

use crate::allow::AllowList;
use clap::{Parser, ValueEnum};

/// evserver: an asynchronous WSGI server for COMET (long-poll, streaming, server push),
/// with a Rust engine on io_uring.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "evserver",
    version,
    about,
    // One usage whatever was given (clap would otherwise show the arguments seen as required).
    override_usage = "evserver [APP] [OPTIONS]\n       evserver bench URL [OPTIONS]",
    after_help = "With no APP, --exec or --framework, evserver serves its built-in demo \
                  (a clock pushed by the server) on 127.0.0.1:8080.\n\n\
                  `evserver bench URL` runs the load generator instead (see `evserver bench --help`)."
)]
pub struct Cli {
    /// The WSGI application, as `module:attribute` (`module` alone means
    /// `module:application`). The current directory is searched first.
    #[arg(value_name = "APP", env = "EVSERVER_APP")]
    pub app: Option<String>,

    /// Run CODE, which must bind `application` (as the original EvServer did).
    #[arg(
        long = "exec",
        value_name = "CODE",
        env = "EVSERVER_EXEC",
        conflicts_with = "app"
    )]
    pub exec_code: Option<String>,

    /// Serve a framework's application: `django` (needs DJANGO_SETTINGS_MODULE) or `demo`.
    #[arg(long, value_enum, value_name = "NAME", env = "EVSERVER_FRAMEWORK",
          conflicts_with_all = ["app", "exec_code"])]
    pub framework: Option<Framework>,

    /// Address to listen on: HOST:PORT, [IPV6]:PORT, unix:PATH, or fd://N (a socket
    /// inherited already listening). Repeat for several. Default: the sockets systemd passes
    /// (socket activation), else 127.0.0.1:8080.
    #[arg(
        short,
        long = "listen",
        visible_short_alias = 'b',
        visible_alias = "bind",
        value_name = "ADDR",
        env = "EVSERVER_LISTEN",
        value_delimiter = ','
    )]
    pub listen: Vec<String>,

    /// Worker processes to run: a number, or `auto` for one per CPU core. The master process
    /// supervises them (restarts, signals, reloads).
    #[arg(short, long, value_name = "N", default_value = "1", env = "EVSERVER_WORKERS",
          value_parser = parse_workers)]
    pub workers: Workers,

    /// Threads per worker that run the application (1: inline, on the worker's event-loop
    /// thread, the fastest for applications that never block). With N > 1 a pool of N
    /// threads runs views that block (a database query) while the loop keeps receiving,
    /// sending and holding parked requests, which take no thread.
    #[arg(long, value_name = "N", default_value_t = 1, env = "EVSERVER_THREADS",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,

    /// Seconds a worker may stay inside the application without its event loop turning
    /// before the master kills and replaces it (0: never). With --threads N > 1 the loop never
    /// runs the application: a request longer than this on a pool thread is logged with its
    /// stack, and the worker is replaced gracefully once its other requests finish.
    #[arg(
        short = 't',
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        env = "EVSERVER_TIMEOUT"
    )]
    pub timeout: u64,

    /// Seconds a graceful stop (SIGTERM, SIGINT, SIGHUP's old workers) may take to finish
    /// the requests in flight before the rest are cut off.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        env = "EVSERVER_GRACEFUL_TIMEOUT"
    )]
    pub graceful_timeout: u64,

    /// Restart a worker after it served this many requests (0: never), to bound leaks.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "EVSERVER_MAX_REQUESTS"
    )]
    pub max_requests: u64,

    /// Restart a worker gracefully once its resident memory passes MiB (0: never), checked
    /// every half second: a bound for applications that leak.
    #[arg(
        long,
        value_name = "MiB",
        default_value_t = 0,
        env = "EVSERVER_MAX_RSS"
    )]
    pub max_rss: u64,

    /// Add a random 0..=N to each worker's --max-requests, so workers do not restart together.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "EVSERVER_MAX_REQUESTS_JITTER"
    )]
    pub max_requests_jitter: u64,

    /// Restart the workers when a Python file under the application's directory changes
    /// (for development).
    #[arg(short = 'r', long, env = "EVSERVER_RELOAD")]
    pub reload: bool,

    /// Serve a status page, a JSON document (/status.json) and Prometheus metrics (/metrics)
    /// on this address (HOST:PORT or unix:PATH). Off by default.
    #[arg(short = 's', long, value_name = "ADDR", env = "EVSERVER_STATUS")]
    pub status: Option<String>,

    /// Write the master's process id to FILE (removed on exit).
    #[arg(
        long,
        visible_short_alias = 'p',
        visible_alias = "pid",
        value_name = "FILE",
        env = "EVSERVER_PID_FILE"
    )]
    pub pid_file: Option<std::path::PathBuf>,

    /// Read settings from a gunicorn-style Python file: gunicorn's names (`bind`, `workers`,
    /// `threads`, `timeout`, `accesslog`, `loglevel`, ...) and evserver's own (an option's
    /// long name with `_` for `-`). The command line wins over the file, the file over
    /// EVSERVER_* variables. Without this option, ./gunicorn.conf.py is read if it exists.
    #[arg(short = 'c', long, value_name = "FILE", env = "EVSERVER_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// Change to DIR before loading the application.
    #[arg(long, value_name = "DIR", env = "EVSERVER_CHDIR")]
    pub chdir: Option<std::path::PathBuf>,

    /// Directories to put first on the module search path, comma-separated.
    #[arg(
        long,
        value_name = "DIRS",
        env = "EVSERVER_PYTHONPATH",
        value_delimiter = ','
    )]
    pub pythonpath: Vec<std::path::PathBuf>,

    /// Set an environment variable (KEY=VALUE) before the application loads. Repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,

    /// Load the application in the master before starting the workers: they share its
    /// memory (copy-on-write) and a broken application fails at once. The workers then run
    /// the code loaded at startup: SIGHUP and --reload do not load new code.
    #[arg(long, visible_alias = "preload-app", env = "EVSERVER_PRELOAD")]
    pub preload: bool,

    /// Run the workers as USER (a name or a number), after the master has bound the
    /// listening sockets. Needs to start as root.
    #[arg(short = 'u', long, value_name = "USER", env = "EVSERVER_USER")]
    pub user: Option<String>,

    /// Run the workers as GROUP (a name or a number); default: USER's group.
    #[arg(short = 'g', long, value_name = "GROUP", env = "EVSERVER_GROUP")]
    pub group: Option<String>,

    /// File mode creation mask, set at startup: applies to unix sockets and every file the
    /// server and application create. Read as gunicorn reads it: 022 and 0o22 are octal,
    /// 0x12 hexadecimal, 18 decimal.
    #[arg(short = 'm', long, value_name = "MASK", env = "EVSERVER_UMASK",
          value_parser = parse_umask)]
    pub umask: Option<u32>,

    /// Event-loop backend: io_uring, poll (epoll/kqueue), or auto (io_uring when the
    /// kernel allows it, else poll).
    #[arg(long, value_enum, default_value_t = Backend::Auto, env = "EVSERVER_BACKEND")]
    pub backend: Backend,

    /// Log level of the `evserver` logger (any case).
    #[arg(long, value_enum, ignore_case = true, default_value_t = LogLevel::Info,
          env = "EVSERVER_LOG_LEVEL")]
    pub log_level: LogLevel,

    /// Write the server's log (startup, errors, tracebacks) to FILE instead of standard
    /// error (`-`).
    #[arg(
        long,
        visible_alias = "error-logfile",
        value_name = "FILE",
        env = "EVSERVER_ERROR_LOG"
    )]
    pub error_log: Option<String>,

    /// Configure logging from FILE after evserver's own setup: a `logging.config` dictConfig
    /// in JSON (`.json`) or an ini file for `fileConfig`.
    #[arg(long, value_name = "FILE", env = "EVSERVER_LOG_CONFIG")]
    pub log_config: Option<std::path::PathBuf>,

    /// Write an access log to FILE, or to standard output with `-`. Off by default.
    #[arg(long, visible_alias = "access-logfile", value_name = "FILE",
          env = "EVSERVER_ACCESS_LOG", num_args = 0..=1, default_missing_value = "-")]
    pub access_log: Option<String>,

    /// The access log's line, with gunicorn's atoms: %(h)s remote address, %(t)s time,
    /// %(r)s request line, %(m)s method, %(U)s path, %(q)s query, %(H)s protocol, %(s)s
    /// status, %(B)s / %(b)s body bytes, %(f)s referer, %(a)s user agent, %(T)s / %(M)s /
    /// %(D)s / %(L)s duration in s / ms / µs / decimal s, %(p)s pid, %({Name}i)s request
    /// header, %({Name}o)s response header, %({KEY}e)s environ value, %(l)s and %(u)s `-`.
    #[arg(
        long,
        visible_alias = "access-logformat",
        value_name = "FORMAT",
        env = "EVSERVER_ACCESS_LOG_FORMAT",
        default_value = crate::worker::accesslog::COMMON_LOG_FORMAT
    )]
    pub access_log_format: String,

    /// Largest WebSocket message accepted, in bytes (after decompression); a larger one closes
    /// the WebSocket with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20,
          env = "EVSERVER_WEBSOCKET_MAX_MESSAGE",
          value_parser = clap::value_parser!(u64).range(125..=(1 << 40)))]
    pub websocket_max_message: u64,

    /// Bytes that may wait for a WebSocket client that does not read; a send past it ends
    /// that WebSocket (its conversation sees ConnectionClosed) and drops the connection.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20,
          env = "EVSERVER_WEBSOCKET_MAX_QUEUE",
          value_parser = clap::value_parser!(u64).range(65536..=(1 << 40)))]
    pub websocket_max_queue: u64,

    /// permessage-deflate for WebSockets (RFC 7692), agreed to when the client offers it.
    #[arg(long, value_name = "on|off", default_value = "on",
          env = "EVSERVER_WEBSOCKET_COMPRESSION", value_parser = parse_on_off)]
    pub websocket_compression: bool,

    /// Seconds a WebSocket may stay silent before the server pings it; one that answers
    /// nothing for as long again is closed (1011) and its conversation ends (0: never ping).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 20,
        env = "EVSERVER_WEBSOCKET_PING"
    )]
    pub websocket_ping: u64,

    /// Largest request body accepted, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, env = "EVSERVER_MAX_BODY")]
    pub max_body: u64,

    /// Request bodies larger than this are spilled to a temporary file, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, env = "EVSERVER_SPILL_BODY")]
    pub spill_body: usize,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        env = "EVSERVER_KEEP_ALIVE"
    )]
    pub keep_alive: u64,

    /// Seconds a client has to send a complete request head once it started one, however
    /// slowly it trickles in.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10,
        env = "EVSERVER_HEADER_TIMEOUT"
    )]
    pub header_timeout: u64,

    /// Seconds a client has to send a request body once its head is complete, however slowly
    /// it trickles in (0: no limit; raise it for long uploads over slow links).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        env = "EVSERVER_BODY_TIMEOUT"
    )]
    pub body_timeout: u64,

    /// Longest request line in bytes (414 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 8190,
          env = "EVSERVER_LIMIT_REQUEST_LINE", value_parser = clap::value_parser!(u32).range(64..))]
    pub limit_request_line: u32,

    /// Most header fields in a request (431 beyond).
    #[arg(long, value_name = "N", default_value_t = 100,
          env = "EVSERVER_LIMIT_REQUEST_FIELDS", value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub limit_request_fields: u32,

    /// Longest header field line in bytes (431 beyond).
    #[arg(long, alias = "limit-request-field_size", value_name = "BYTES", default_value_t = 8190,
          env = "EVSERVER_LIMIT_REQUEST_FIELD_SIZE", value_parser = clap::value_parser!(u32).range(64..))]
    pub limit_request_field_size: u32,

    /// Open connections per worker beyond which it stops accepting; new clients wait in the
    /// listen backlog (0: no limit but the open-file limit).
    #[arg(
        long,
        visible_alias = "worker-connections",
        value_name = "N",
        default_value_t = 0,
        env = "EVSERVER_MAX_CONNECTIONS"
    )]
    pub max_connections: usize,

    /// Length of the kernel's queue of connections not yet accepted.
    #[arg(long, value_name = "N", default_value_t = 1024, env = "EVSERVER_BACKLOG",
          value_parser = clap::value_parser!(i32).range(1..))]
    pub backlog: i32,

    /// Peers whose X-Forwarded-Proto (or -Ssl, -Protocol) and X-Forwarded-For are believed:
    /// comma-separated addresses and networks (10.0.0.0/8), or `*` for every peer. From them,
    /// the scheme sets wsgi.url_scheme (and HTTPS=on), and the rightmost hop of
    /// X-Forwarded-For that is not itself in the list sets REMOTE_ADDR. A unix-socket peer
    /// is always believed.
    #[arg(long, value_name = "LIST", default_value = "127.0.0.1,::1",
          env = "EVSERVER_FORWARDED_ALLOW_IPS", value_parser = parse_allow_list)]
    pub forwarded_allow_ips: AllowList,

    #[command(flatten)]
    pub tls: tls::TlsArgs,

    /// Read a PROXY protocol header (HAProxy's, version 1 or 2) at the start of connections
    /// from --proxy-allow-from peers: the client address it carries becomes REMOTE_ADDR and
    /// REMOTE_PORT. A malformed header closes the connection.
    #[arg(long, env = "EVSERVER_PROXY_PROTOCOL")]
    pub proxy_protocol: bool,

    /// Peers whose connections may start with a PROXY header (addresses, networks, `*`).
    #[arg(long, value_name = "LIST", default_value = "127.0.0.1,::1",
          env = "EVSERVER_PROXY_ALLOW_FROM", value_parser = parse_allow_list)]
    pub proxy_allow_from: AllowList,

    /// gunicorn's worker class, accepted for a command line that names one: `sync` and
    /// `gthread` are what evserver's worker does (inline, or with --threads); other classes
    /// are refused.
    #[arg(short = 'k', long, value_name = "CLASS", env = "EVSERVER_WORKER_CLASS",
          value_parser = parse_worker_class)]
    pub worker_class: Option<String>,
}

/// `--forwarded-allow-ips`, `--proxy-allow-from`.
fn parse_allow_list(text: &str) -> Result<AllowList, String> {
    AllowList::parse(text)
        .map_err(|entry| format!("'{entry}' is not an address, a network (10.0.0.0/8) or *"))
}

/// `-e KEY=VALUE`.
fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

/// `-m/--umask`, read as gunicorn reads it: a leading `0` or `0o` means octal (`022`), `0x`
/// hexadecimal, `0b` binary, anything else decimal (`18` is 0o22).
fn parse_umask(text: &str) -> Result<u32, String> {
    let digits = text.trim().to_ascii_lowercase();
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        u32::from_str_radix(hex, 16)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        u32::from_str_radix(bin, 2)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        u32::from_str_radix(oct, 8)
    } else if digits.len() > 1 && digits.starts_with('0') {
        u32::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse::<u32>()
    };
    match parsed {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err("expected a mask from 0 to 0o777 (e.g. 022)".into()),
    }
}

/// `-k`: the gunicorn worker classes evserver's worker stands for.
fn parse_worker_class(text: &str) -> Result<String, String> {
    let class = text.trim();
    let short = class
        .rsplit('.')
        .next()
        .unwrap_or(class)
        .to_ascii_lowercase();
    match short.as_str() {
        "sync" | "syncworker" | "gthread" | "threadworker" => Ok(class.to_string()),
        _ => Err(format!(
            "evserver has one worker class, an event loop that parks waiting requests \
             (fdevent) and runs views inline or on --threads N; gunicorn's '{class}' worker \
             is not available"
        )),
    }
}

/// `-w/--workers`: a count or one per core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    Count(usize),
    PerCore,
}

impl Workers {
    /// How many workers to start.
    pub fn resolve(self) -> usize {
        match self {
            Workers::Count(n) => n,
            Workers::PerCore => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

fn parse_on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

fn parse_workers(text: &str) -> Result<Workers, String> {
    if text == "auto" {
        return Ok(Workers::PerCore);
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=crate::scoreboard::MAX_WORKERS).contains(&n) => Ok(Workers::Count(n)),
        _ => Err(format!(
            "expected a number from 1 to {} or `auto`",
            crate::scoreboard::MAX_WORKERS
        )),
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    Django,
    Demo,
}

impl Framework {
    pub fn name(self) -> &'static str {
        match self {
            Framework::Django => "django",
            Framework::Demo => "demo",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Auto,
    #[value(name = "io_uring")]
    IoUring,
    Poll,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_repeats_and_defaults() {
        let cli = Cli::try_parse_from(["evserver", "app:x"]).unwrap();
        assert!(cli.listen.is_empty(), "the default is chosen at startup");
        let cli =
            Cli::try_parse_from(["evserver", "-l", "127.0.0.1:1", "--listen", "unix:/x"]).unwrap();
        assert_eq!(cli.listen, vec!["127.0.0.1:1", "unix:/x"]);
    }

    #[test]
    fn workers_take_a_count_or_auto() {
        let cli = Cli::try_parse_from(["evserver", "-w", "3"]).unwrap();
        assert_eq!(cli.workers, Workers::Count(3));
        let cli = Cli::try_parse_from(["evserver", "--workers", "auto"]).unwrap();
        assert!(cli.workers.resolve() >= 1);
        assert!(Cli::try_parse_from(["evserver", "-w", "0"]).is_err());
        assert!(Cli::try_parse_from(["evserver", "-w", "many"]).is_err());
    }

    #[test]
    fn gunicorn_spellings_are_accepted() {
        let cli = Cli::try_parse_from([
            "evserver",
            "-b",
            "0.0.0.0:8000",
            "--bind",
            "unix:/x",
            "-t",
            "60",
            "--access-logfile",
            "-",
            "--access-logformat",
            "%(h)s",
            "--error-logfile",
            "e.log",
            "--log-level",
            "CRITICAL",
            "-p",
            "x.pid",
            "-u",
            "nobody",
            "-g",
            "nogroup",
            "-m",
            "022",
            "-k",
            "gthread",
            "--worker-connections",
            "100",
            "-e",
            "A=b=c",
            "--limit-request-field_size",
            "100",
            "mysite.wsgi",
        ])
        .unwrap();
        assert_eq!(cli.listen, vec!["0.0.0.0:8000", "unix:/x"]);
        assert_eq!(cli.timeout, 60);
        assert_eq!(cli.access_log.as_deref(), Some("-"));
        assert_eq!(cli.access_log_format, "%(h)s");
        assert_eq!(cli.error_log.as_deref(), Some("e.log"));
        assert_eq!(cli.log_level, LogLevel::Critical);
        assert_eq!(cli.umask, Some(0o22));
        assert_eq!(cli.max_connections, 100);
        assert_eq!(cli.env, vec![("A".to_string(), "b=c".to_string())]);
        assert_eq!(cli.limit_request_field_size, 100);
        assert_eq!(cli.app.as_deref(), Some("mysite.wsgi"));
    }

    #[test]
    fn umask_reads_as_gunicorn_does() {
        for (text, mask) in [
            ("022", 0o22),
            ("0o27", 0o27),
            ("18", 18),
            ("0x12", 0x12),
            ("0", 0),
        ] {
            assert_eq!(parse_umask(text), Ok(mask), "{text}");
        }
        assert!(parse_umask("0o1000").is_err());
        assert!(parse_umask("089").is_err());
    }

    #[test]
    fn worker_classes_other_than_sync_and_gthread_are_refused() {
        assert!(Cli::try_parse_from(["evserver", "-k", "sync"]).is_ok());
        assert!(
            Cli::try_parse_from(["evserver", "-k", "gunicorn.workers.gthread.ThreadWorker"])
                .is_ok()
        );
        assert!(Cli::try_parse_from(["evserver", "-k", "gevent"]).is_err());
    }

    #[test]
    fn app_and_exec_conflict() {
        assert!(Cli::try_parse_from(["evserver", "a:b", "--exec", "x"]).is_err());
    }
}
