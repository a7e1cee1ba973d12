//! `evserver [APP] [options]`: parses the command line, loads the application, binds the
//! listeners, picks the backend, prints the ready line and runs the worker.

use crate::cli::{Backend, Cli, Framework};
use crate::listen::{parse_address, Listener};
use crate::pylog::Log;
use crate::worker::{Settings, Worker};
use clap::Parser;
use evserver_http::Limits;
use evserver_platform::{Choice, Config, Driver};
use pyo3::prelude::*;
use std::io::Write;
use std::os::fd::RawFd;
use std::time::Duration;

/// Exit status for a failure at run time (bad app, busy port, backend refused).
const EXIT_FAILURE: i32 = 1;
/// Exit status for a bad command line (clap's own status for usage errors).
const EXIT_USAGE: i32 = 2;
const LISTEN_BACKLOG: i32 = 1024;

/// A startup failure: one line for the user.
struct Fatal(String);

fn fail(msg: impl Into<String>) -> Fatal {
    Fatal(msg.into())
}

/// The whole command: returns the process exit status.
pub fn main(py: Python<'_>, argv: Vec<String>, app: Option<Bound<'_, PyAny>>) -> i32 {
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    if app.is_some() && (cli.app.is_some() || cli.exec_code.is_some() || cli.framework.is_some()) {
        eprintln!("evserver: error: an application object was given; do not also name APP, --exec or --framework");
        return EXIT_USAGE;
    }
    match serve(py, cli, app) {
        Ok(()) => 0,
        Err(Fatal(msg)) => {
            eprintln!("evserver: error: {msg}");
            EXIT_FAILURE
        }
    }
}

fn serve<'py>(py: Python<'py>, cli: Cli, app: Option<Bound<'py, PyAny>>) -> Result<(), Fatal> {
    configure_logging(py, &cli)?;
    raise_open_files_limit();
    let app = match app {
        Some(app) => app,
        None => load_app(py, &cli)?,
    };
    let mut listeners = Vec::new();
    for text in &cli.listen {
        let address =
            parse_address(text).map_err(|e| fail(format!("invalid listen address {e}")))?;
        let listener = Listener::bind(&address, LISTEN_BACKLOG)
            .map_err(|e| fail(format!("cannot listen on {text}: {e}")))?;
        listeners.push(listener);
    }
    let choice = match cli.backend {
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
    let driver = selected.driver;
    if let Some(reason) = selected.fallback_reason {
        eprintln!("evserver: {reason}; using {}", driver.name());
    }
    let log = Log::new(py, cli.access_log.is_some())
        .map_err(|e| fail(format!("cannot set up logging: {e}")))?;
    let settings = Settings {
        limits: Limits {
            max_body: cli.max_body,
            ..Limits::default()
        },
        spill_body: cli.spill_body,
        keep_alive: Duration::from_secs(cli.keep_alive),
        header_timeout: Duration::from_secs(cli.header_timeout),
    };
    let addresses: Vec<String> = listeners.iter().map(Listener::display).collect();
    let backend = driver.name();
    let mut worker = Worker::new(py, driver, app, listeners, settings, log)
        .map_err(|e| fail(format!("cannot start the worker: {e}")))?;
    // Signal handlers belong to the main thread; a server started in another thread (Django's
    // autoreloader runs it so) is stopped by its process instead.
    let wakeup = if is_main_thread(py) {
        let fd = install_signal_handlers(py)
            .map_err(|e| fail(format!("cannot install signal handlers: {e}")))?;
        worker.set_wakeup_fd(fd);
        Some(fd)
    } else {
        None
    };
    eprintln!(
        "evserver: ready on {} (backend {backend}, 1 worker, pid {})",
        addresses.join(", "),
        std::process::id()
    );
    let _ = std::io::stderr().flush();
    let result = worker.run();
    drop(worker);
    if let Some(fd) = wakeup {
        restore_signal_handlers(py, fd);
    }
    result.map_err(|e| fail(format!("the event loop failed: {e}")))
}

/// Lifts the soft limit on open files to the hard one (each connection is a descriptor); if
/// that is refused the server runs on with the limit it has, and says so.
fn raise_open_files_limit() {
    if let Err(e) = evserver_platform::sys::raise_open_files_limit() {
        eprintln!("evserver: cannot raise the open files limit: {e}");
    }
}

fn configure_logging(py: Python<'_>, cli: &Cli) -> Result<(), Fatal> {
    py.import("evserver._logging")
        .and_then(|m| {
            m.call_method1(
                "configure",
                (cli.log_level.name(), cli.access_log.as_deref()),
            )
        })
        .map(|_| ())
        .map_err(|e| fail(format!("cannot configure logging: {e}")))
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

/// SIGTERM stops the server like SIGINT; both are noticed through Python's wakeup fd.
/// Returns the read end of the wakeup pipe.
fn install_signal_handlers(py: Python<'_>) -> PyResult<RawFd> {
    let signal = py.import("signal")?;
    let handler = signal.getattr("default_int_handler")?;
    signal.call_method1("signal", (signal.getattr("SIGTERM")?, &handler))?;
    signal.call_method1("signal", (signal.getattr("SIGINT")?, &handler))?;
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("warn_on_full_buffer", false)?;
    signal.call_method("set_wakeup_fd", (fds[1],), Some(&kwargs))?;
    Ok(fds[0])
}

fn restore_signal_handlers(py: Python<'_>, wakeup: RawFd) {
    if let Ok(signal) = py.import("signal") {
        if let Ok(old) = signal.call_method1("set_wakeup_fd", (-1,)) {
            if let Ok(fd) = old.extract::<RawFd>() {
                evserver_platform::sys::close(fd);
            }
        }
    }
    evserver_platform::sys::close(wakeup);
}
