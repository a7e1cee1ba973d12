//! The server's TLS configuration from PEM files, with one typed error per thing that can be
//! wrong in them (each names the file).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Whether clients present certificates (`--cert-reqs`: gunicorn's 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCerts {
    /// None asked for.
    None,
    /// Asked for, and checked against `--ca-certs` when given.
    Optional,
    /// Required, and checked against `--ca-certs`.
    Required,
}

/// The files a TLS listener is configured from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub ca_certs: Option<PathBuf>,
    pub client_certs: ClientCerts,
}

/// Why the configuration cannot be built.
#[derive(Debug)]
pub enum ConfigError {
    /// A file could not be read or holds no PEM section of the kind wanted.
    File { path: PathBuf, why: String },
    /// The key does not belong to the certificate, or rustls refused them.
    Refused(String),
    /// Client certificates are required but no `--ca-certs` says whose.
    NoClientCa,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::File { path, why } => write!(f, "{}: {why}", path.display()),
            ConfigError::Refused(why) => write!(f, "the certificate and key: {why}"),
            ConfigError::NoClientCa => {
                f.write_str("--cert-reqs 2 (client certificates required) needs --ca-certs")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

fn file_error(path: &Path, why: impl fmt::Display) -> ConfigError {
    ConfigError::File {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Every certificate in a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, pem_error(&e)))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in it"));
    }
    Ok(certs)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not PEM as expected ({other:?})"),
    }
}

/// Builds the configuration: the chain in `certfile` (leaf first) with the key in `keyfile`
/// (PKCS#8, PKCS#1 or SEC1; the same file as the chain is fine), TLS 1.2 and 1.3, ALPN
/// `http/1.1`, and client certificates as `client_certs` says.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, ConfigError> {
    let chain = certificates(&files.certfile)?;
    let key = PrivateKeyDer::from_pem_file(&files.keyfile).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            file_error(&files.keyfile, "no PRIVATE KEY in it")
        }
        other => file_error(&files.keyfile, pem_error(&other)),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::Refused(e.to_string()))?;
    let builder = match (files.client_certs, &files.ca_certs) {
        (ClientCerts::None, _) | (ClientCerts::Optional, None) => builder.with_no_client_auth(),
        (ClientCerts::Required, None) => return Err(ConfigError::NoClientCa),
        (wanted, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| file_error(ca, format!("not a CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if wanted == ClientCerts::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| file_error(ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| ConfigError::Refused(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
