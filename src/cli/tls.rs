//! The TLS options (gunicorn's names): a certificate chain and key in PEM files, and client
//! certificates when asked.

use clap::Args;
use evserver_tls::{ClientCerts, TlsFiles};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct TlsArgs {
    /// Serve HTTPS (TLS 1.3 and 1.2, ALPN http/1.1) on every listener with the certificate
    /// chain in FILE (PEM, the server's certificate first). A reload (SIGHUP) reads the files
    /// again.
    #[arg(long, value_name = "FILE", env = "EVSERVER_CERTFILE")]
    pub certfile: Option<PathBuf>,

    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --certfile (default: read from the
    /// certificate file).
    #[arg(
        long,
        value_name = "FILE",
        env = "EVSERVER_KEYFILE",
        requires = "certfile"
    )]
    pub keyfile: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to.
    #[arg(
        long,
        value_name = "FILE",
        env = "EVSERVER_CA_CERTS",
        requires = "certfile"
    )]
    pub ca_certs: Option<PathBuf>,

    /// Client certificates: 0 none asked for, 1 optional (checked if given), 2 required
    /// (gunicorn's values; 1 and 2 check against --ca-certs).
    #[arg(long, value_name = "0|1|2", default_value = "0", env = "EVSERVER_CERT_REQS",
          value_parser = parse_cert_reqs)]
    pub cert_reqs: ClientCerts,
}

fn parse_cert_reqs(s: &str) -> Result<ClientCerts, String> {
    match s.trim() {
        "0" | "CERT_NONE" => Ok(ClientCerts::None),
        "1" | "CERT_OPTIONAL" => Ok(ClientCerts::Optional),
        "2" | "CERT_REQUIRED" => Ok(ClientCerts::Required),
        other => Err(format!("{other:?}: expected 0, 1 or 2")),
    }
}

impl TlsArgs {
    /// The files to configure TLS from, when --certfile is given.
    pub fn files(&self) -> Option<TlsFiles> {
        let certfile = self.certfile.clone()?;
        Some(TlsFiles {
            keyfile: self.keyfile.clone().unwrap_or_else(|| certfile.clone()),
            certfile,
            ca_certs: self.ca_certs.clone(),
            client_certs: self.cert_reqs,
        })
    }
}
