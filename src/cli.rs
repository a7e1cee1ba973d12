//! The command line: clap definitions of every option (each also read from an `EVSERVER_*`
//! environment variable). The README's CLI reference is generated from these.

use clap::{Parser, ValueEnum};

/// evserver: an asynchronous WSGI server for COMET (long-poll, streaming, server push),
/// with a Rust engine on io_uring.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "evserver",
    version,
    about,
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

    /// Address to listen on: HOST:PORT, [IPV6]:PORT or unix:PATH. Repeat for several.
    #[arg(
        short,
        long = "listen",
        value_name = "ADDR",
        env = "EVSERVER_LISTEN",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    pub listen: Vec<String>,

    /// Event-loop backend: io_uring, poll (epoll/kqueue), or auto (io_uring when the
    /// kernel allows it, else poll).
    #[arg(long, value_enum, default_value_t = Backend::Auto, env = "EVSERVER_BACKEND")]
    pub backend: Backend,

    /// Log level of the `evserver` logger.
    #[arg(long, value_enum, default_value_t = LogLevel::Info, env = "EVSERVER_LOG_LEVEL")]
    pub log_level: LogLevel,

    /// Write an access log in Common Log Format to FILE, or to standard output with `-`.
    /// Off by default.
    #[arg(long, value_name = "FILE", env = "EVSERVER_ACCESS_LOG", num_args = 0..=1,
          default_missing_value = "-")]
    pub access_log: Option<String>,

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

    /// Seconds a client has to send a complete request head once it started one.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10,
        env = "EVSERVER_HEADER_TIMEOUT"
    )]
    pub header_timeout: u64,
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
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
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
        assert_eq!(cli.listen, vec!["127.0.0.1:8080"]);
        let cli =
            Cli::try_parse_from(["evserver", "-l", "127.0.0.1:1", "--listen", "unix:/x"]).unwrap();
        assert_eq!(cli.listen, vec!["127.0.0.1:1", "unix:/x"]);
    }

    #[test]
    fn app_and_exec_conflict() {
        assert!(Cli::try_parse_from(["evserver", "a:b", "--exec", "x"]).is_err());
    }
}
