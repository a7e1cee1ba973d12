//! evserver's engine, the `evserver._evserver` extension module.
//!
//! Rooms, from the top: `serve` (the command: parse, bind, hand over to the master) and `cli`;
//! `master/` (the supervising process: forks, signals, reloads, the status page);
//! `worker/` (a worker process's event loop and connections); `wsgi/` (the Python side of a
//! request: environ, the application call, the response iterable). What the processes share
//! sits beside them: `listen` (addresses and listening sockets), `scoreboard` (figures in
//! shared memory), `log` (Python logging). Below them are the crates: `evserver-http` (the
//! codec) and `evserver-platform` (io_uring, epoll, kqueue).

use pyo3::prelude::*;

mod allow;
mod cli;
mod listen;
mod log;
mod master;
mod scoreboard;
mod serve;
mod startup;
mod websocket;
mod worker;
mod wsgi;

/// Runs the `evserver` command with `argv` (including the program name); returns the exit
/// status. When `app` is given, that WSGI callable is served and no APP, `--exec` or
/// `--framework` may be named.
#[pyfunction]
#[pyo3(signature = (argv, app = None))]
fn main(py: Python<'_>, argv: Vec<String>, app: Option<Bound<'_, PyAny>>) -> i32 {
    // `evserver bench ...`: the load generator (the bench/ crate), pure Rust, GIL released.
    if app.is_none() && argv.get(1).is_some_and(|a| a == "bench") {
        let args: Vec<String> = std::iter::once("evserver bench".to_string())
            .chain(argv.into_iter().skip(2))
            .collect();
        return py.detach(move || evserver_bench::main(args));
    }
    serve::main(py, argv, app)
}

/// The CLI reference, as `evserver --help` prints it on a 100-column terminal (the README's
/// reference is generated from this).
#[pyfunction]
fn cli_help() -> String {
    use clap::CommandFactory;
    cli::Cli::command()
        .term_width(100)
        .render_long_help()
        .to_string()
}

// `gil_used = true` (PyO3's default, said out loud): nothing here has been run on a
// free-threaded interpreter (3.13t/3.14t cannot be installed on the machines that test it), so
// importing the module there re-enables the GIL rather than claim a safety nobody has seen.
// The thread pool itself holds no lock of its own around the application call.
#[pymodule(gil_used = true)]
fn _evserver(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(cli_help, m)?)?;
    m.add_function(wrap_pyfunction!(websocket::py::broadcast, m)?)?;
    m.add_class::<wsgi::file_wrapper::FileWrapper>()?;
    m.add_class::<wsgi::input::Input>()?;
    m.add_class::<wsgi::start_response::StartResponse>()?;
    m.add_class::<wsgi::fdevent::FdeventWait>()?;
    m.add_class::<wsgi::fdevent::FdeventSelect>()?;
    m.add_class::<wsgi::fdevent::TimeoutFlag>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
