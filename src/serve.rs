//! `evserver [APP] [options]`: parses the command line, binds the listeners, picks the
//! backend and hands over to the master, which forks the workers; each worker loads the
//! application and runs its event loop.

use crate::cli::config_file::{self, MergeError};
use crate::cli::{gunicorn, Backend, Cli, Framework};
use crate::listen::{parse_address, Listener};
use crate::log::Log;
use crate::master::status::StatusServer;
use crate::master::{Assignment, Master, Sockets, Supervision, WorkerBody, EXIT_BOOT_FAILURE};
use crate::scoreboard::{CellRef, Scoreboard, MAX_WORKERS};
use crate::startup;
use crate::websocket::WsSettings;
use crate::worker::accesslog::Format;
use crate::worker::{Settings, Worker};
use clap::Parser;
use evserver_http::Limits;
use evserver_platform::signals::{Disposition, SignalPipe};
use evserver_platform::{process, Choice, Config, Driver};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// Exit status for a failure at run time (bad app, busy port, backend refused).
const EXIT_FAILURE: i32 = 1;
/// Exit status for a bad command line (clap's own status for usage errors).
const EXIT_USAGE: i32 = 2;

/// A startup failure: one line for the user (empty when it was already said), and whether
/// the command line was at fault (exit status 2) or the run (1).
struct Fatal {
    msg: String,
    usage: bool,
}

fn fail(msg: impl Into<String>) -> Fatal {
    Fatal {
        msg: msg.into(),
        usage: false,
    }
}

/// A bad value on the command line.
fn usage(msg: impl Into<String>) -> Fatal {
    Fatal {
        msg: msg.into(),
        usage: true,
    }
}

/// Printed under a usage error.
const USAGE_HINT: &str = "Usage: evserver [APP] [OPTIONS]; see 'evserver --help'";

/// The whole command: returns the process exit status.
pub fn main(py: Python<'_>, argv: Vec<String>, app: Option<Bound<'_, PyAny>>) -> i32 {
    let (argv, config) = match config_file::merge(py, argv) {
        Ok(merged) => merged,
        Err(MergeError::Cli(e)) => return report_clap_error(&e, None),
        Err(MergeError::File(msg)) => {
            eprintln!("evserver: error: {msg}");
            eprintln!("{USAGE_HINT}");
            return EXIT_USAGE;
        }
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        // The command line alone parsed: what is wrong came from the file.
        Err(e) => return report_clap_error(&e, config.as_deref()),
    };
    let result = if app.is_some()
        && (cli.app.is_some() || cli.exec_code.is_some() || cli.framework.is_some())
    {
        Err(usage(
            "an application object was given; do not also name APP, --exec or --framework",
        ))
    } else if cli.preload && cli.reload {
        Err(usage(
            "--preload and --reload do not go together: the workers would keep the code the \
             master loaded",
        ))
    } else {
        serve(py, cli, app, config.as_deref())
    };
    match result {
        Ok(()) => 0,
        Err(Fatal { msg, usage }) => {
            if !msg.is_empty() {
                eprintln!("evserver: error: {msg}");
            }
            if usage {
                eprintln!("{USAGE_HINT}");
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            }
        }
    }
}

/// Prints clap's help or version as they are, and its errors as one `evserver: error:` line
/// (with its tip, if any; naming the config file when the error came from it; saying so
/// when the flag is gunicorn's) and the usage; returns the exit status.
fn report_clap_error(e: &clap::Error, config: Option<&std::path::Path>) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return 0;
    }
    let gunicorn_flag = match (e.kind(), e.get(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, Some(ContextValue::String(arg))) => {
            gunicorn::unsupported_flag(arg)
        }
        _ => None,
    };
    let message = gunicorn_flag.unwrap_or_else(|| clap_message(&e.render().to_string()));
    match config {
        Some(path) => eprintln!("evserver: error: config file {}: {message}", path.display()),
        None => eprintln!("evserver: error: {message}"),
    }
    eprintln!("{USAGE_HINT}");
    EXIT_USAGE
}

/// Clap's rendered error as one line: its message and tips, without the usage it appends.
fn clap_message(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.strip_prefix("error: ")
                .or_else(|| line.strip_prefix("tip: "))
                .unwrap_or(line)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn serve<'py>(
    py: Python<'py>,
    cli: Cli,
    app: Option<Bound<'py, PyAny>>,
    config: Option<&std::path::Path>,
) -> Result<(), Fatal> {
    startup::prepare_process(py, &cli).map_err(fail)?;
    startup::configure_logging(py, &cli).map_err(fail)?;
    let identity = startup::resolve_identity(&cli).map_err(usage)?;
    let access_format = Format::parse(&cli.access_log_format)
        .map_err(|e| usage(format!("invalid --access-log-format: {}", e.0)))?;
    let log = Log::new(py, false).map_err(|e| fail(format!("cannot set up logging: {e}")))?;
    if let Some(path) = config {
        log.info(&format!("settings read from {}", path.display()));
    }
    if let Err(e) = evserver_platform::sys::raise_open_files_limit() {
        log.warning(&format!("cannot raise the open-file limit: {e}"));
    }
    let workers = cli.workers.resolve();
    let mut addresses = Vec::new();
    for text in startup::listen_addresses(py, &cli) {
        let address =
            parse_address(&text).map_err(|e| usage(format!("invalid listen address {e}")))?;
        addresses.push((text, address));
    }
    let mut sockets = Sockets::bind(&addresses, cli.backlog, workers).map_err(fail)?;
    if let Some(files) = cli.tls.files() {
        if cli.proxy_protocol {
            return Err(usage(
                "--proxy-protocol and --certfile do not go together yet: terminate TLS at the \
                 proxy that sends the PROXY header",
            ));
        }
        // Read once here so that a bad file stops the start with one line; each worker
        // reads the files again when it starts (a reload picks up renewed certificates).
        evserver_tls::load(&files).map_err(|e| usage(format!("TLS: {e}")))?;
        sockets.speak_tls();
    }
    let status = match &cli.status {
        Some(text) => {
            let address =
                parse_address(text).map_err(|e| usage(format!("invalid --status address {e}")))?;
            let listener = Listener::bind(&address, 64, false)
                .map_err(|e| fail(format!("cannot listen on {text} (--status): {e}")))?;
            Some(StatusServer::new(listener))
        }
        None => None,
    };
    let (backend, backend_name) = select_backend(cli.backend)?;
    let reload_roots = if cli.reload {
        Some(watch_roots(py, &cli)?)
    } else {
        None
    };
    let _pid_file = match &cli.pid_file {
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    // Written as the user that started: /run is root's.
    if let Some(id) = &identity {
        let unix_sockets: Vec<&std::path::Path> = addresses
            .iter()
            .filter_map(|(_, address)| match address {
                crate::listen::Address::Unix(path) => Some(path.as_path()),
                _ => None,
            })
            .collect();
        startup::switch_identity(py, id, &unix_sockets).map_err(fail)?;
    }
    let app = match (app, cli.preload) {
        (None, true) => Some(load_app(py, &cli)?),
        (app, _) => app,
    };
    if let Some(status) = &status {
        log.info(&format!("status page on {}", status.display()));
    }
    let supervision = Supervision {
        workers,
        timeout: (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout)),
        graceful_timeout: Duration::from_secs(cli.graceful_timeout),
        reload_roots,
        backend: backend_name,
        handle_signals: is_main_thread(py),
        notify: startup::service_notifier(py).map_err(fail)?,
    };
    let board = Rc::new(
        Scoreboard::new_zeroed(MAX_WORKERS)
            .map_err(|e| fail(format!("cannot set up the workers' scoreboard: {e}")))?,
    );
    let body = Body {
        cli,
        app: app.map(Bound::unbind),
        backend,
        access_format,
        multiprocess: workers > 1,
        board: board.clone(),
    };
    let mut master = Master::new(py, log, body, sockets, board, supervision, status);
    master.run().map_err(|_| fail(""))
}

/// Chooses the backend once, in the master, so a refusal is reported once; workers then
/// create the chosen one.
fn select_backend(backend: Backend) -> Result<(Choice, &'static str), Fatal> {
    let choice = match backend {
        Backend::Auto => Choice::Auto,
        Backend::IoUring => Choice::IoUring,
        Backend::Poll => Choice::Poll,
    };
    let selected = Driver::select(choice, &Config::default()).map_err(|e| match choice {
        Choice::IoUring => fail(format!(
            "cannot use the io_uring backend: {}",
            evserver_platform::describe_io_uring_refusal(&e)
        )),
        _ => fail(format!("cannot create the event loop: {e}")),
    })?;
    if let Some(reason) = &selected.fallback_reason {
        eprintln!("evserver: {reason}; using {}", selected.driver.name());
    }
    let name = selected.driver.name();
    let choice = if name == "io_uring" {
        Choice::IoUring
    } else {
        Choice::Poll
    };
    Ok((choice, name))
}

/// What each worker process runs.
struct Body {
    cli: Cli,
    /// An application object given by the caller (`evserver.run`); otherwise each worker
    /// loads the application itself, so a reload picks up new code.
    app: Option<Py<PyAny>>,
    backend: Choice,
    access_format: Format,
    multiprocess: bool,
    board: Rc<Scoreboard>,
}

impl WorkerBody for Body {
    fn run(&self, py: Python<'_>, at: Assignment, sockets: &Sockets) -> i32 {
        match self.run_worker(py, at, sockets) {
            Ok(()) => 0,
            Err((code, msg)) => {
                if !msg.is_empty() {
                    eprintln!("evserver: error: {msg}");
                }
                code
            }
        }
    }
}

impl Body {
    fn run_worker(
        &self,
        py: Python<'_>,
        at: Assignment,
        sockets: &Sockets,
    ) -> Result<(), (i32, String)> {
        let Assignment { slot, cell, ready } = at;
        let boot = |msg: String| (EXIT_BOOT_FAILURE, msg);
        // The master's signal pipe belongs to the master: a worker has its own.
        let signals = SignalPipe::install(&[
            (libc::SIGTERM, Disposition::Catch),
            (libc::SIGINT, Disposition::Catch),
            (libc::SIGQUIT, Disposition::Catch),
            (libc::SIGHUP, Disposition::Ignore),
            (libc::SIGTTIN, Disposition::Ignore),
            (libc::SIGTTOU, Disposition::Ignore),
            (libc::SIGCHLD, Disposition::Default),
        ])
        .map_err(|e| boot(format!("cannot install signal handlers: {e}")))?;
        // A worker whose master is gone stops gracefully.
        let _ = process::set_parent_death_signal(libc::SIGTERM);
        for fd in sockets.foreign_fds(slot) {
            evserver_platform::sys::close(fd);
        }
        let app = match &self.app {
            Some(app) => app.bind(py).clone(),
            None => load_app(py, &self.cli).map_err(|f| boot(f.msg))?,
        };
        let driver = Driver::select(self.backend, &Config::default())
            .map_err(|e| boot(format!("cannot create the event loop: {e}")))?
            .driver;
        let log = Log::new(py, self.cli.access_log.is_some())
            .map_err(|e| boot(format!("cannot set up logging: {e}")))?;
        let cli = &self.cli;
        let max_requests =
            (cli.max_requests > 0).then(|| cli.max_requests + jitter(cli.max_requests_jitter));
        let settings = Settings {
            limits: Limits {
                max_body: cli.max_body,
                max_request_line: cli.limit_request_line as usize,
                max_headers: cli.limit_request_fields as usize,
                max_header_field: cli.limit_request_field_size as usize,
                ..Limits::default()
            },
            spill_body: cli.spill_body,
            keep_alive: Duration::from_secs(cli.keep_alive),
            header_timeout: Duration::from_secs(cli.header_timeout),
            body_timeout: (cli.body_timeout > 0).then(|| Duration::from_secs(cli.body_timeout)),
            max_requests,
            max_rss: (cli.max_rss > 0).then(|| cli.max_rss.saturating_mul(1 << 20)),
            max_connections: cli.max_connections,
            graceful_timeout: Duration::from_secs(cli.graceful_timeout),
            timeout: (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout)),
            access_format: self.access_format.clone(),
            websocket: WsSettings {
                max_message: usize::try_from(cli.websocket_max_message).unwrap_or(usize::MAX),
                max_queue: usize::try_from(cli.websocket_max_queue).unwrap_or(usize::MAX),
                compression: cli.websocket_compression,
                ping: (cli.websocket_ping > 0).then(|| Duration::from_secs(cli.websocket_ping)),
            },
            forwarded: std::sync::Arc::new(cli.forwarded_allow_ips.clone()),
            tls: match cli.tls.files() {
                Some(files) => Some(
                    evserver_tls::load(&files)
                        .map_err(|e| boot(format!("cannot set up TLS: {e}")))?,
                ),
                None => None,
            },
            proxy_protocol: cli.proxy_protocol.then(|| cli.proxy_allow_from.clone()),
        };
        let mut worker = Worker::new(
            py,
            driver,
            app,
            sockets.endpoints(slot),
            settings,
            log,
            self.multiprocess,
            usize::from(cli.threads),
        )
        .map_err(|e| boot(format!("cannot start the worker: {e}")))?;
        worker.set_signal_fd(signals.fd());
        worker.set_master_pid(process::parent_pid());
        if let Some(cell) = CellRef::new(self.board.clone(), cell) {
            worker.set_scoreboard(cell);
        }
        process::write_byte(ready, 1);
        evserver_platform::sys::close(ready);
        let result = worker.run(py);
        drop(worker);
        signals.forget();
        result.map_err(|e| (EXIT_FAILURE, format!("the event loop failed: {e}")))
    }
}

/// A random number in `0..=max` (for `--max-requests-jitter`), from the clock and pid: it
/// only has to differ between workers.
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
        ^ (u64::from(std::process::id()) << 17);
    // One round of splitmix64 spreads the bits.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % (max + 1)
}

/// `--pid-file`: written at startup, removed at exit if it still names this process.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &std::path::Path) -> Result<PidFile, Fatal> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| fail(format!("cannot write --pid-file {}: {e}", path.display())))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// The directories `--reload` watches.
fn watch_roots(py: Python<'_>, cli: &Cli) -> Result<Vec<PathBuf>, Fatal> {
    py.import("evserver._loader")
        .and_then(|m| m.call_method1("watch_roots", (cli.app.as_deref(),)))
        .and_then(|roots| roots.extract::<Vec<PathBuf>>())
        .map_err(|e| fail(format!("cannot find the directories to watch: {e}")))
}

/// Imports the application through `evserver._loader`.
fn load_app<'py>(py: Python<'py>, cli: &Cli) -> Result<Bound<'py, PyAny>, Fatal> {
    let framework = match (&cli.app, &cli.exec_code, cli.framework) {
        (None, None, None) => Some(Framework::Demo),
        (_, _, f) => f,
    };
    let loader = py
        .import("evserver._loader")
        .map_err(|e| fail(format!("cannot import evserver._loader: {e}")))?;
    let load_error = loader
        .getattr("LoadError")
        .map_err(|e| fail(format!("evserver._loader is broken: {e}")))?;
    loader
        .call_method1(
            "load",
            (
                cli.app.as_deref(),
                cli.exec_code.as_deref(),
                framework.map(Framework::name),
            ),
        )
        .map_err(|e| {
            if e.is_instance(py, &load_error) {
                fail(e.value(py).to_string())
            } else {
                e.display(py);
                fail(format!("cannot load the application: {e}"))
            }
        })
}

/// Whether this is the interpreter's main thread (the only one that may set signal handlers).
fn is_main_thread(py: Python<'_>) -> bool {
    let check = || -> PyResult<bool> {
        let threading = py.import("threading")?;
        let current = threading.call_method0("current_thread")?;
        let main = threading.call_method0("main_thread")?;
        Ok(current.is(&main))
    };
    check().unwrap_or(true)
}
