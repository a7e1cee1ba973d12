//! gunicorn's flags and settings that evserver does not have, each with the one line that
//! says so (instead of clap's generic "unexpected argument"), and gunicorn's config-file
//! names for the options evserver has under another name.

/// gunicorn flags (as typed) and settings (config-file names) evserver does not support,
/// with why or what to use instead.
const UNSUPPORTED: &[(&[&str], &str, &str)] = &[
    (
        &["-D", "--daemon"],
        "daemon",
        "run evserver under a supervisor (systemd, a container) instead of detaching",
    ),
    (&["-n", "--name"], "proc_name", "process titles are not set"),
    (
        &["--worker-tmp-dir"],
        "worker_tmp_dir",
        "the workers' heartbeat lives in shared memory, not in files",
    ),
    (
        &["--reload-engine"],
        "reload_engine",
        "--reload polls the application's files",
    ),
    (
        &["--reload-extra-file"],
        "reload_extra_files",
        "--reload watches the application's directory",
    ),
    (
        &["--spew"],
        "spew",
        "trace with sys.settrace in the application instead",
    ),
    (&["--check-config"], "check_config", "not supported"),
    (&["--print-config"], "print_config", "not supported"),
    (
        &["--paste", "--paster"],
        "paste",
        "PasteDeploy files are not read; name the WSGI application as module:attribute",
    ),
    (
        &["--initgroups"],
        "initgroups",
        "--user always sets the user's supplementary groups",
    ),
    (
        &["--statsd-host"],
        "statsd_host",
        "use the Prometheus metrics of the status page (--status)",
    ),
    (
        &["--statsd-prefix"],
        "statsd_prefix",
        "use the Prometheus metrics of the status page (--status)",
    ),
    (
        &["--dogstatsd-tags"],
        "dogstatsd_tags",
        "use the Prometheus metrics of the status page (--status)",
    ),
    (
        &["--log-syslog", "--syslog"],
        "syslog",
        "log to standard error (journald takes it) or use --log-config with a SysLogHandler",
    ),
    (
        &["--log-syslog-to", "--syslog-addr"],
        "syslog_addr",
        "use --log-config with a SysLogHandler",
    ),
    (
        &["--log-syslog-prefix", "--syslog-prefix"],
        "syslog_prefix",
        "use --log-config with a SysLogHandler",
    ),
    (
        &["--log-syslog-facility", "--syslog-facility"],
        "syslog_facility",
        "use --log-config with a SysLogHandler",
    ),
    (
        &["--disable-redirect-access-to-syslog"],
        "disable_redirect_access_to_syslog",
        "syslog is not used",
    ),
    (
        &["--enable-stdio-inheritance", "-R"],
        "enable_stdio_inheritance",
        "the workers always inherit standard output and error",
    ),
    (
        &["--capture-output"],
        "capture_output",
        "the application's standard output and error go where evserver's go",
    ),
    (
        &["--logger-class"],
        "logger_class",
        "configure the `evserver` and `evserver.access` loggers with --log-config",
    ),
    (
        &["--log-config-dict"],
        "logconfig_dict",
        "put the dictionary in a JSON file for --log-config",
    ),
    (
        &["--log-config-json"],
        "logconfig_json",
        "use --log-config FILE.json",
    ),
    (
        &["--ssl-version"],
        "ssl_version",
        "evserver speaks TLS 1.3 and 1.2, the versions rustls supports",
    ),
    (
        &["--ciphers"],
        "ciphers",
        "rustls chooses among its own safe cipher suites",
    ),
    (
        &["--do-handshake-on-connect"],
        "do_handshake_on_connect",
        "the handshake is always done by the event loop before the request is read",
    ),
    (
        &["--suppress-ragged-eofs"],
        "suppress_ragged_eofs",
        "a connection closed without close_notify simply ends",
    ),
    (
        &["--no-sendfile"],
        "sendfile",
        "wsgi.file_wrapper always sends regular files with sendfile",
    ),
    (
        &["--reuse-port"],
        "reuse_port",
        "TCP listeners already use SO_REUSEPORT, one per worker",
    ),
    (
        &["--strip-header-spaces"],
        "strip_header_spaces",
        "a space before a header's colon is refused (400), as RFC 9112 requires",
    ),
    (
        &["--permit-unconventional-http-method"],
        "permit_unconventional_http_method",
        "methods are tokens as RFC 9110 defines them",
    ),
    (
        &["--permit-unconventional-http-version"],
        "permit_unconventional_http_version",
        "HTTP/1.0 and HTTP/1.1 are served",
    ),
    (
        &["--casefold-http-method"],
        "casefold_http_method",
        "methods are passed as sent",
    ),
    (
        &["--forwarder-headers"],
        "forwarder_headers",
        "not supported",
    ),
    (
        &["--header-map"],
        "header_map",
        "headers with an underscore are dropped, as nginx does",
    ),
    (
        &["--limit-request-line-size"],
        "limit_request_line_size",
        "use --limit-request-line",
    ),
    (
        &["--threads-per-worker"],
        "threads_per_worker",
        "use --threads",
    ),
    (
        &["--keyfile-password"],
        "keyfile_password",
        "give --keyfile an unencrypted key (readable by the server's user only)",
    ),
];

/// gunicorn's config-file names for options evserver spells differently (or that take
/// gunicorn's form of value); every other evserver option is its long name with `_`.
pub const RENAMED_SETTINGS: &[(&str, &str)] = &[
    ("bind", "listen"),
    ("accesslog", "access-log"),
    ("access_log_format", "access-log-format"),
    ("errorlog", "error-log"),
    ("loglevel", "log-level"),
    ("logconfig", "log-config"),
    ("pidfile", "pid-file"),
    ("preload_app", "preload"),
    ("raw_env", "env"),
    ("keepalive", "keep-alive"),
    ("worker_connections", "max-connections"),
    ("proxy_allow_ips", "proxy-allow-from"),
    ("wsgi_app", "APP"),
];

/// gunicorn's server hooks: a config file defining one is refused (evserver cannot call it).
pub const HOOKS: &[&str] = &[
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_exec",
    "pre_request",
    "post_request",
    "child_exit",
    "worker_exit",
    "nworkers_changed",
    "on_exit",
    "ssl_context",
];

/// The line for a gunicorn flag evserver does not have (`--daemon`, `-D`, `--statsd-host=x`),
/// or `None` when `arg` is not one.
pub fn unsupported_flag(arg: &str) -> Option<String> {
    let flag = arg.split_once('=').map_or(arg, |(flag, _)| flag);
    UNSUPPORTED
        .iter()
        .find(|(flags, _, _)| flags.contains(&flag))
        .map(|(_, _, why)| format!("gunicorn's {flag} is not supported by evserver: {why}"))
}

/// Every gunicorn config-file setting evserver does not have.
pub fn unsupported_setting_names() -> impl Iterator<Item = &'static str> {
    UNSUPPORTED.iter().map(|(_, setting, _)| *setting)
}

/// The line for a gunicorn config-file setting evserver does not have, or `None`.
pub fn unsupported_setting(name: &str) -> Option<String> {
    UNSUPPORTED
        .iter()
        .find(|(_, setting, _)| *setting == name)
        .map(|(_, _, why)| {
            format!("gunicorn's setting '{name}' is not supported by evserver: {why}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_flag_with_or_without_its_value() {
        let line = unsupported_flag("--statsd-host=localhost:8125").unwrap();
        assert!(
            line.starts_with("gunicorn's --statsd-host is not supported"),
            "{line}"
        );
        assert!(unsupported_flag("-D").unwrap().contains("supervisor"));
        assert!(unsupported_flag("--listen").is_none());
        assert!(unsupported_flag("--no-such-flag").is_none());
    }

    #[test]
    fn names_settings() {
        assert!(unsupported_setting("statsd_host").is_some());
        assert!(unsupported_setting("workers").is_none());
    }
}
