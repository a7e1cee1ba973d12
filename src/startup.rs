//! What the master does to its own process before it forks the workers, in this order: the
//! umask, the working directory, the environment and module path the application will see,
//! logging, the addresses to listen on (systemd's sockets by default); then, once the
//! sockets are bound, the user and group to run as.

use crate::cli::Cli;
use evserver_platform::identity::{self, Identity};
use evserver_platform::systemd;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::path::Path;

/// Sets the umask, changes directory, exports `-e` variables and puts `--pythonpath` first
/// on the module search path. Returns the line saying what went wrong.
pub fn prepare_process(py: Python<'_>, cli: &Cli) -> Result<(), String> {
    if let Some(mask) = cli.umask {
        identity::set_umask(mask);
    }
    if let Some(dir) = &cli.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| format!("cannot change to directory {}: {e}", dir.display()))?;
    }
    let export = || -> PyResult<()> {
        let environ = py.import("os")?.getattr("environ")?;
        for (key, value) in &cli.env {
            // Through os.environ, so that Python sees the variable as well as the workers.
            environ.set_item(key, value)?;
        }
        let path = py.import("sys")?.getattr("path")?.cast_into::<PyList>()?;
        for dir in cli.pythonpath.iter().rev() {
            let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            path.insert(0, absolute.as_os_str())?;
        }
        Ok(())
    };
    export().map_err(|e| format!("cannot set up the environment: {e}"))
}

/// Sets up the `evserver` loggers (level, access log, error log), then applies
/// `--log-config`.
pub fn configure_logging(py: Python<'_>, cli: &Cli) -> Result<(), String> {
    let logging = py
        .import("evserver._logging")
        .map_err(|e| format!("cannot configure logging: {e}"))?;
    logging
        .call_method1(
            "configure",
            (
                cli.log_level.name(),
                cli.access_log.as_deref(),
                cli.error_log.as_deref(),
            ),
        )
        .map_err(|e| format!("cannot configure logging: {}", e.value(py)))?;
    if let Some(path) = &cli.log_config {
        logging
            .call_method1("apply_config_file", (path.as_os_str(),))
            .map_err(|e| e.value(py).to_string())?;
    }
    Ok(())
}

/// Where no `-l` is given without socket activation.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The addresses to listen on: `-l`'s, else the sockets systemd passed (`LISTEN_FDS` for this
/// pid; the variables are then removed, as `sd_listen_fds` does, so that nothing the
/// application starts takes them for its own), else 127.0.0.1:8080.
pub fn listen_addresses(py: Python<'_>, cli: &Cli) -> Vec<String> {
    let (pid, count) = (pop_env(py, "LISTEN_PID"), pop_env(py, "LISTEN_FDS"));
    let _ = pop_env(py, "LISTEN_FDNAMES");
    if !cli.listen.is_empty() {
        return cli.listen.clone();
    }
    let inherited = systemd::listen_fds(pid.as_deref(), count.as_deref());
    if inherited.is_empty() {
        return vec![DEFAULT_LISTEN.to_string()];
    }
    inherited.iter().map(|fd| format!("fd://{fd}")).collect()
}

/// systemd's readiness socket when `NOTIFY_SOCKET` is set (the variable is then removed, so
/// that the application does not notify too).
pub fn service_notifier(py: Python<'_>) -> Result<Option<systemd::Notifier>, String> {
    systemd::Notifier::new(pop_env(py, "NOTIFY_SOCKET").as_deref())
        .map_err(|e| format!("cannot create the systemd notification socket: {e}"))
}

/// Removes an environment variable through `os.environ` (so Python's view agrees), returning
/// its value.
fn pop_env(py: Python<'_>, name: &str) -> Option<String> {
    let environ = py.import("os").ok()?.getattr("environ").ok()?;
    let value = environ.call_method1("pop", (name, py.None())).ok()?;
    value.extract::<Option<String>>().ok().flatten()
}

/// The user and group `-u`/`-g` name, resolved before anything is bound (a typo fails
/// before the port is taken); `None` when neither is given.
pub fn resolve_identity(cli: &Cli) -> Result<Option<Identity>, String> {
    if cli.user.is_none() && cli.group.is_none() {
        return Ok(None);
    }
    identity::resolve(cli.user.as_deref(), cli.group.as_deref())
        .map(Some)
        .map_err(|e| format!("cannot run as the user or group asked for: {e}"))
}

/// Hands the unix sockets to the new user and switches the process to it: the master keeps
/// the bound sockets, so nothing needs root afterwards. evserver's application loader is
/// imported first, so the workers need not be able to read evserver's own files.
pub fn switch_identity(
    py: Python<'_>,
    id: &Identity,
    unix_sockets: &[&Path],
) -> Result<(), String> {
    py.import("evserver._loader")
        .map_err(|e| format!("cannot import evserver._loader: {e}"))?;
    for path in unix_sockets {
        std::os::unix::fs::chown(path, Some(id.uid), Some(id.gid))
            .map_err(|e| format!("cannot give {} to the user: {e}", path.display()))?;
    }
    identity::switch_to(id).map_err(|e| {
        format!(
            "cannot switch to user {} and group {} (start as root to use --user/--group): {e}",
            id.uid, id.gid
        )
    })
}
