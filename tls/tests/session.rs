//! The TLS layer against rustls' own client, in memory: handshakes (1.3, 1.2, ALPN), data both
//! ways, garbage and plain HTTP on a TLS connection, client certificates, and the
//! configuration's errors. Certificates are made for each test with rcgen.

use evserver_tls::{load, ClientCerts, ConfigError, Session, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// A test CA, a server certificate for "localhost" and a client certificate, as PEM files.
struct Pki {
    dir: PathBuf,
    ca_der: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("evserver-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        std::fs::write(dir.join("server.pem"), server.pem() + &ca.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            ca_der: ca.der().clone(),
            client_cert: client.der().clone(),
            client_key: client_key.serialize_der(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn files(&self, client_certs: ClientCerts, with_ca: bool) -> TlsFiles {
        TlsFiles {
            certfile: self.path("server.pem"),
            keyfile: self.path("server.key"),
            ca_certs: with_ca.then(|| self.path("ca.pem")),
            client_certs,
        }
    }

    fn client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        cert: bool,
    ) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let builder =
            ClientConfig::builder_with_protocol_versions(versions).with_root_certificates(roots);
        let mut config = if cert {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key.clone()));
            builder
                .with_client_auth_cert(vec![self.client_cert.clone()], key)
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = ServerName::try_from("localhost").unwrap();
        ClientConnection::new(Arc::new(config), name).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Moves bytes between client and server until neither has anything to say; returns the
/// plaintext the server received, or the server's error.
fn pump(client: &mut ClientConnection, server: &mut Session) -> Result<Vec<u8>, String> {
    let mut plaintext = Vec::new();
    for _ in 0..20 {
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        if !wire.is_empty() {
            server.receive(&wire, &mut plaintext).map_err(|e| e.0)?;
        }
        let mut back = Vec::new();
        server.outgoing(&mut back);
        if !back.is_empty() {
            let mut rd = &back[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
                client
                    .process_new_packets()
                    .map_err(|e| format!("client: {e}"))?;
            }
        }
        if wire.is_empty() && back.is_empty() {
            break;
        }
    }
    Ok(plaintext)
}

#[test]
fn a_request_and_its_answer_cross_tls_1_3_and_1_2_with_alpn_http_1_1() {
    let pki = Pki::new("roundtrip");
    let config = load(&pki.files(ClientCerts::None, false)).unwrap();
    for (version, name) in [
        (&rustls::version::TLS13, "TLSv1.3"),
        (&rustls::version::TLS12, "TLSv1.2"),
    ] {
        let mut client = pki.client(&[version], false);
        let mut server = Session::new(&config).unwrap();
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let got = pump(&mut client, &mut server).unwrap();
        assert_eq!(got, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(!server.is_handshaking());
        assert_eq!(server.version(), Some(name));
        assert_eq!(server.alpn(), Some(&b"http/1.1"[..]));
        server.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        pump(&mut client, &mut server).unwrap();
        let mut answer = vec![0; 64];
        let n = client.reader().read(&mut answer).unwrap();
        assert_eq!(
            &answer[..n],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        );
        // The client's close_notify: the server sees the end.
        client.send_close_notify();
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        assert_eq!(server.receive(&wire, &mut Vec::new()), Ok(true));
    }
}

#[test]
fn ciphertext_cut_anywhere_is_put_back_together() {
    let pki = Pki::new("cut");
    let config = load(&pki.files(ClientCerts::None, false)).unwrap();
    let mut client = pki.client(&[&rustls::version::TLS13], false);
    let mut server = Session::new(&config).unwrap();
    pump(&mut client, &mut server).unwrap();
    let body = vec![b'x'; 40_000];
    client.writer().write_all(&body).unwrap();
    let mut wire = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut wire).unwrap();
    }
    let mut got = Vec::new();
    for piece in wire.chunks(777) {
        server.receive(piece, &mut got).unwrap();
    }
    assert_eq!(got, body);
}

#[test]
fn plain_http_and_garbage_on_a_tls_connection_are_errors() {
    let pki = Pki::new("garbage");
    let config = load(&pki.files(ClientCerts::None, false)).unwrap();
    // Not TLS at all: an error (the connection closes; nothing sensible can be sent back).
    let mut server = Session::new(&config).unwrap();
    let plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(server.receive(plain, &mut Vec::new()).is_err());
    // A handshake record that breaks the protocol: an error too.
    let mut server = Session::new(&config).unwrap();
    let junk = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5];
    let err = server.receive(&junk, &mut Vec::new()).unwrap_err();
    assert!(err.0.contains("corrupt message"), "{err}");
    // Whatever rustls has to say then (an alert, or nothing) can be taken.
    server.outgoing(&mut Vec::new());
}

#[test]
fn client_certificates_required_optional_and_checked() {
    let pki = Pki::new("clients");
    let required = load(&pki.files(ClientCerts::Required, true)).unwrap();
    let mut server = Session::new(&required).unwrap();
    let mut with_cert = pki.client(&[&rustls::version::TLS13], true);
    with_cert.writer().write_all(b"hi").unwrap();
    assert_eq!(pump(&mut with_cert, &mut server).unwrap(), b"hi");
    assert!(server.peer_certificate().is_some());
    let mut server = Session::new(&required).unwrap();
    let mut without = pki.client(&[&rustls::version::TLS13], false);
    without.writer().write_all(b"hi").unwrap();
    assert!(pump(&mut without, &mut server).is_err());

    let optional = load(&pki.files(ClientCerts::Optional, true)).unwrap();
    let mut server = Session::new(&optional).unwrap();
    let mut without = pki.client(&[&rustls::version::TLS13], false);
    without.writer().write_all(b"hi").unwrap();
    assert_eq!(pump(&mut without, &mut server).unwrap(), b"hi");
    assert!(server.peer_certificate().is_none());
}

#[test]
fn configuration_errors_name_what_is_wrong() {
    let pki = Pki::new("errors");
    let mut files = pki.files(ClientCerts::None, false);
    files.certfile = pki.path("missing.pem");
    let err = load(&files).unwrap_err().to_string();
    assert!(
        err.contains("missing.pem") && err.contains("No such file"),
        "{err}"
    );

    let mut files = pki.files(ClientCerts::None, false);
    files.certfile = pki.path("server.key");
    let err = load(&files).unwrap_err().to_string();
    assert!(err.contains("server.key: no CERTIFICATE in it"), "{err}");

    let mut files = pki.files(ClientCerts::None, false);
    files.keyfile = pki.path("ca.pem");
    let err = load(&files).unwrap_err().to_string();
    assert!(err.contains("ca.pem: no PRIVATE KEY in it"), "{err}");

    let other = KeyPair::generate().unwrap();
    std::fs::write(pki.path("other.key"), other.serialize_pem()).unwrap();
    let mut files = pki.files(ClientCerts::None, false);
    files.keyfile = pki.path("other.key");
    assert!(matches!(load(&files), Err(ConfigError::Refused(_))));

    assert!(matches!(
        load(&pki.files(ClientCerts::Required, false)),
        Err(ConfigError::NoClientCa)
    ));
}
