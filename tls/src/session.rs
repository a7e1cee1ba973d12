//! One connection's TLS on plain bytes: ciphertext in, plaintext out; plaintext in,
//! ciphertext out. The connection layer owns the socket and the buffers around this.

use rustls::{ServerConfig, ServerConnection};
use std::io::{Read, Write};
use std::sync::Arc;

/// Why a session cannot go on: the peer broke the protocol (not TLS at all, a bad record, a
/// failed handshake). What [`Session::outgoing`] still holds (an alert) may be sent before
/// the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError(pub String);

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A server-side TLS session.
pub struct Session {
    conn: ServerConnection,
}

impl Session {
    pub fn new(config: &Arc<ServerConfig>) -> Result<Session, SessionError> {
        let mut conn =
            ServerConnection::new(config.clone()).map_err(|e| SessionError(e.to_string()))?;
        // The connection layer bounds what it queues (its high-water mark); a limit here
        // would make `send` drop what does not fit.
        conn.set_buffer_limit(None);
        Ok(Session { conn })
    }

    /// Takes ciphertext the peer sent; the plaintext it held is appended to `plaintext`.
    /// Returns whether the peer closed its side (close_notify).
    pub fn receive(
        &mut self,
        mut ciphertext: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<bool, SessionError> {
        while !ciphertext.is_empty() {
            // read_tls takes one record's worth at most per call (it buffers the rest of a
            // record cut short).
            let n = self
                .conn
                .read_tls(&mut ciphertext)
                .map_err(|e| SessionError(e.to_string()))?;
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| SessionError(e.to_string()))?;
            let ready = state.plaintext_bytes_to_read();
            if ready > 0 {
                let at = plaintext.len();
                plaintext.resize(at + ready, 0);
                let got = self
                    .conn
                    .reader()
                    .read(&mut plaintext[at..])
                    .map_err(|e| SessionError(e.to_string()))?;
                plaintext.truncate(at + got);
            }
            if state.peer_has_closed() {
                return Ok(true);
            }
            if n == 0 {
                break;
            }
        }
        Ok(false)
    }

    /// Queues plaintext to send (encrypted once the handshake allows; buffered before).
    pub fn send(&mut self, plaintext: &[u8]) {
        // Writing to rustls' own buffer cannot fail short.
        let _ = self.conn.writer().write_all(plaintext);
    }

    /// Queues the close_notify alert.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }

    /// Appends the ciphertext waiting to go (handshake messages, records, alerts) to `out`;
    /// returns how many bytes.
    pub fn outgoing(&mut self, out: &mut Vec<u8>) -> usize {
        let mut total = 0;
        // Not gated on wants_write(): after an error it is false, yet the alert is there.
        loop {
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The protocol ALPN agreed on, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The negotiated version, e.g. `TLSv1.3` (once the handshake is done).
    pub fn version(&self) -> Option<&'static str> {
        self.conn.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        })
    }

    /// The client's certificate (DER), when it presented one.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.conn.peer_certificates()?.first().map(|c| c.as_ref())
    }
}
