//! evserver's TLS layer on plain bytes, over rustls: no sockets, no Python. [`config`] builds
//! the server's configuration from PEM files (`--certfile`, `--keyfile`, `--ca-certs`,
//! `--cert-reqs`): TLS 1.2 and 1.3, ALPN `http/1.1`, client certificates when asked. A
//! [`Session`] is one connection's TLS: the connection layer feeds it the ciphertext it
//! received and gets plaintext, gives it plaintext and gets the ciphertext to send.

pub mod config;
pub mod session;

pub use config::{load, ClientCerts, ConfigError, TlsFiles};
pub use rustls::ServerConfig;
pub use session::{Session, SessionError};
