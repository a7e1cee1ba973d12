//! `-c/--config FILE` (or `./gunicorn.conf.py`): runs the gunicorn-style Python config file
//! through `evserver._config` and puts its settings under the command line: an option given
//! on the command line wins over the file, the file over `EVSERVER_*` variables.

use super::gunicorn::{unsupported_setting, HOOKS, RENAMED_SETTINGS};
use super::Cli;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};

/// The file gunicorn reads when no `-c` is given; evserver reads it too.
const DEFAULT_FILE: &str = "gunicorn.conf.py";

/// Why the command line could not be put together.
pub enum MergeError {
    /// The command line itself is wrong.
    Cli(clap::Error),
    /// The config file is (one line for the user).
    File(String),
}

/// The command line to parse: `argv` with the config file's settings before its own
/// arguments, each setting the command line also gives left out. Returns `argv` as it is
/// when there is no config file. Also returns the file read, if any.
pub fn merge(
    py: Python<'_>,
    argv: Vec<String>,
) -> Result<(Vec<String>, Option<PathBuf>), MergeError> {
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(&argv)
        .map_err(MergeError::Cli)?;
    let path = match matches.get_one::<PathBuf>("config") {
        Some(path) => path.clone(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok((argv, None)),
    };
    let settings = run_file(py, &command, &path).map_err(MergeError::File)?;
    let mut merged = vec![argv.first().cloned().unwrap_or_else(|| "evserver".into())];
    for (option, values) in settings {
        merged.extend(tokens(&command, &matches, &option, values));
    }
    merged.extend(argv.into_iter().skip(1));
    Ok((merged, Some(path)))
}

/// The tokens one setting adds, none when the command line gives that option itself.
fn tokens(
    command: &clap::Command,
    matches: &ArgMatches,
    option: &str,
    values: Vec<String>,
) -> Vec<String> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if option == "APP" {
        if given("app") || given("exec_code") || given("framework") {
            return Vec::new();
        }
        return values;
    }
    let Some(arg) = command
        .get_arguments()
        .find(|a| a.get_long() == Some(option))
    else {
        return Vec::new();
    };
    if given(arg.get_id().as_str()) {
        return Vec::new();
    }
    if takes_value(arg) {
        values
            .into_iter()
            .map(|v| format!("--{option}={v}"))
            .collect()
    } else if values.iter().any(|v| v == "true") {
        vec![format!("--{option}")]
    } else {
        Vec::new()
    }
}

fn takes_value(arg: &clap::Arg) -> bool {
    !matches!(
        arg.get_action(),
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
    )
}

/// Runs the file through `evserver._config.load`; its settings, or the line saying why not.
fn run_file(
    py: Python<'_>,
    command: &clap::Command,
    path: &Path,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let build = || -> PyResult<Vec<(String, Vec<String>)>> {
        let options = PyDict::new(py);
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                options.set_item(long, takes_value(arg))?;
            }
        }
        let renamed = PyDict::new(py);
        for (gunicorn, ours) in RENAMED_SETTINGS {
            renamed.set_item(gunicorn, ours)?;
        }
        let unsupported = PyDict::new(py);
        for name in super::gunicorn::unsupported_setting_names() {
            if let Some(line) = unsupported_setting(name) {
                unsupported.set_item(name, line)?;
            }
        }
        py.import("evserver._config")?
            .call_method1(
                "load",
                (
                    path.as_os_str(),
                    options,
                    renamed,
                    unsupported,
                    HOOKS.to_vec(),
                ),
            )?
            .extract()
    };
    build().map_err(|e| {
        let is_config_error = py
            .import("evserver._config")
            .and_then(|m| m.getattr("ConfigError"))
            .is_ok_and(|class| e.is_instance(py, &class));
        if is_config_error {
            e.value(py).to_string()
        } else {
            format!("cannot read config file {}: {e}", path.display())
        }
    })
}
