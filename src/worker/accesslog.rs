//! The access log's line format: gunicorn's `%(atom)s` atoms, compiled once, with the
//! request's side captured when it arrives and the response's side filled in when it ends.

use super::conn::Running;
use crate::log::Log;
use crate::wsgi::response::Response;
use evserver_http::Head;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Common Log Format, the default.
pub const COMMON_LOG_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s"#;

/// One piece of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// Known when the request arrives; the index into `Entry::captured`.
    Request(usize),
    Status,
    /// Body bytes, `-` when zero (`b`), or `0` (`B`).
    Bytes {
        dash_for_zero: bool,
    },
    Duration(DurationUnit),
    /// A response header, by lowercase name (`Entry::response_headers` in format order).
    ResponseHeader(String),
    /// An environ value, by key (`Entry::environ_values` holds them in format order).
    Environ(String),
    Time,
    Pid,
    RemoteAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DurationUnit {
    Seconds,
    Millis,
    Micros,
    DecimalSeconds,
}

/// What a request-side atom reads from the head.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestAtom {
    Line,
    Method,
    Path,
    Query,
    Protocol,
    Header(String),
}

/// A compiled access-log format.
#[derive(Debug, Clone)]
pub struct Format {
    parts: Vec<Part>,
    request_atoms: Vec<RequestAtom>,
    uses_environ: bool,
}

/// A format that cannot be used, for one line at startup.
#[derive(Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

impl Format {
    pub fn parse(text: &str) -> Result<Format, FormatError> {
        let mut parts = Vec::new();
        let mut request_atoms = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("%%") {
                literal.push('%');
                rest = after;
                continue;
            }
            let Some(body) = rest.strip_prefix("%(") else {
                return Err(FormatError(format!(
                    "'{}': expected %(atom)s or %%",
                    truncate(rest)
                )));
            };
            let Some(close) = body.find(")s") else {
                return Err(FormatError(format!(
                    "'{}': an atom must end with )s",
                    truncate(rest)
                )));
            };
            let atom = &body[..close];
            rest = &body[close + 2..];
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            let mut request = |a: RequestAtom| {
                request_atoms.push(a);
                Part::Request(request_atoms.len() - 1)
            };
            let part = match atom {
                "h" => Part::RemoteAddr,
                "l" | "u" => Part::Text("-".into()),
                "t" => Part::Time,
                "r" => request(RequestAtom::Line),
                "m" => request(RequestAtom::Method),
                "U" => request(RequestAtom::Path),
                "q" => request(RequestAtom::Query),
                "H" => request(RequestAtom::Protocol),
                "f" => request(RequestAtom::Header("referer".into())),
                "a" => request(RequestAtom::Header("user-agent".into())),
                "s" => Part::Status,
                "b" => Part::Bytes {
                    dash_for_zero: true,
                },
                "B" => Part::Bytes {
                    dash_for_zero: false,
                },
                "T" => Part::Duration(DurationUnit::Seconds),
                "M" => Part::Duration(DurationUnit::Millis),
                "D" => Part::Duration(DurationUnit::Micros),
                "L" => Part::Duration(DurationUnit::DecimalSeconds),
                "p" => Part::Pid,
                other => match braced(other) {
                    Some((name, 'i')) => request(RequestAtom::Header(name.to_ascii_lowercase())),
                    Some((name, 'o')) => Part::ResponseHeader(name.to_ascii_lowercase()),
                    Some((name, 'e')) => Part::Environ(name.to_string()),
                    _ => return Err(FormatError(format!("unknown access log atom %({other})s"))),
                },
            };
            parts.push(part);
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        let uses_environ = parts.iter().any(|p| matches!(p, Part::Environ(_)));
        Ok(Format {
            parts,
            request_atoms,
            uses_environ,
        })
    }

    /// Whether the request's environ must be kept until the response ends.
    pub fn uses_environ(&self) -> bool {
        self.uses_environ
    }

    /// The environ keys the format reads, in order of appearance.
    pub fn environ_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Environ(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// The response header names the format reads (lowercase).
    pub fn response_headers(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::ResponseHeader(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Captures the request-side values from a parsed head (`buf` is what its spans index).
    pub fn capture(&self, head: &Head, buf: &[u8]) -> Vec<String> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let protocol = match head.version {
            Some(evserver_http::Version::Http10) => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        self.request_atoms
            .iter()
            .map(|atom| match atom {
                RequestAtom::Line => format!(
                    "{} {} {protocol}",
                    text(head.method.of(buf)),
                    text(head.target().of(buf))
                ),
                RequestAtom::Method => text(head.method.of(buf)),
                RequestAtom::Path => text(head.path.of(buf)),
                RequestAtom::Query => text(head.query.of(buf)),
                RequestAtom::Protocol => protocol.to_string(),
                RequestAtom::Header(name) => head
                    .headers
                    .iter()
                    .find(|(n, _)| n.of(buf).eq_ignore_ascii_case(name.as_bytes()))
                    .map_or_else(|| "-".to_string(), |(_, v)| text(v.of(buf))),
            })
            .collect()
    }

    /// Renders one line.
    pub fn render(&self, entry: &Entry<'_>) -> String {
        let mut line = String::with_capacity(128);
        let mut environ_values = entry.environ_values.iter();
        let mut response_headers = entry.response_headers.iter();
        for part in &self.parts {
            match part {
                Part::Text(t) => line.push_str(t),
                Part::Request(i) => {
                    line.push_str(entry.captured.get(*i).map_or("-", String::as_str))
                }
                // A response that ended before its head went out has no status: `-`.
                Part::Status if entry.status == 0 => line.push('-'),
                Part::Status => {
                    let _ = write!(line, "{}", entry.status);
                }
                Part::Bytes { dash_for_zero } => {
                    if *dash_for_zero && entry.bytes == 0 {
                        line.push('-');
                    } else {
                        let _ = write!(line, "{}", entry.bytes);
                    }
                }
                Part::Duration(unit) => {
                    let d = entry.duration;
                    let _ = match unit {
                        DurationUnit::Seconds => write!(line, "{}", d.as_secs()),
                        DurationUnit::Millis => write!(line, "{}", d.as_millis()),
                        DurationUnit::Micros => write!(line, "{}", d.as_micros()),
                        DurationUnit::DecimalSeconds => write!(line, "{:.6}", d.as_secs_f64()),
                    };
                }
                Part::ResponseHeader(_) => line.push_str(
                    response_headers
                        .next()
                        .and_then(|v| v.as_deref())
                        .unwrap_or("-"),
                ),
                Part::Environ(_) => line.push_str(
                    environ_values
                        .next()
                        .and_then(|v| v.as_deref())
                        .unwrap_or("-"),
                ),
                Part::Time => line.push_str(entry.time),
                Part::Pid => {
                    let _ = write!(line, "<{}>", std::process::id());
                }
                Part::RemoteAddr => line.push_str(if entry.remote.is_empty() {
                    "-"
                } else {
                    entry.remote
                }),
            }
        }
        line
    }
}

/// Everything a line needs once the response ended.
pub struct Entry<'a> {
    pub captured: &'a [String],
    pub remote: &'a str,
    /// `[10/Oct/2000:13:55:36 +0000]`.
    pub time: &'a str,
    /// 0 when no head went out.
    pub status: u16,
    pub bytes: u64,
    pub duration: Duration,
    /// Values of `Format::response_headers`, in order.
    pub response_headers: &'a [Option<String>],
    /// Values of `Format::environ_keys`, in order.
    pub environ_values: &'a [Option<String>],
}

/// How a response ended, as its access-log line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The whole response went out.
    Complete,
    /// The application failed after the head went out: the body was cut.
    Failed,
    /// A graceful stop ended it (a parked or streaming response).
    Stopped,
    /// The client went away before it ended.
    ClientGone,
}

impl Ending {
    /// What the access-log line gets after the format's own atoms.
    fn mark(self) -> &'static str {
        match self {
            Ending::Complete => "",
            Ending::Failed => " (application failed)",
            Ending::Stopped => " (ended by a graceful stop)",
            Ending::ClientGone => " (client went away)",
        }
    }
}

/// Writes the access-log line of a response that ended, when it has a record (the access log
/// is on): the format's atoms, with the body bytes the kernel took (all of them unless it
/// ended early: then all but `unsent`), and the mark of how it ended.
pub fn log_ended(
    log: &Log,
    format: &Format,
    py: Python<'_>,
    running: &Running,
    ending: Ending,
    unsent: u64,
) {
    let Some(record) = &running.access else {
        return;
    };
    let bytes = match ending {
        Ending::Complete => running.response.body_bytes(),
        _ => running.response.body_bytes().saturating_sub(unsent),
    };
    let mut line = format.line_for(py, record, &running.response, bytes);
    line.push_str(ending.mark());
    log.access(&line);
}

/// The request's side of an access-log line, captured when the request arrived.
pub struct Record {
    pub captured: Vec<String>,
    /// The client's address (`%(h)s`).
    pub remote: String,
    pub started: Instant,
    /// Kept when the format reads environ values.
    pub environ: Option<Py<PyDict>>,
}

impl Format {
    /// The line of a response that ended, with `bytes` of body sent.
    pub fn line_for(
        &self,
        py: Python<'_>,
        record: &Record,
        response: &Response,
        bytes: u64,
    ) -> String {
        let time = format!(
            "[{}]",
            evserver_http::date::clf_date(evserver_http::date::now())
        );
        let response_headers: Vec<Option<String>> = self
            .response_headers()
            .map(|name| response.response_header(py, name))
            .collect();
        let environ_values: Vec<Option<String>> = match &record.environ {
            Some(environ) => {
                let environ = environ.bind(py);
                self.environ_keys()
                    .map(|key| {
                        environ
                            .get_item(key)
                            .ok()
                            .flatten()
                            .and_then(|v| v.str().ok().map(|s| s.to_string()))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        self.render(&Entry {
            captured: &record.captured,
            remote: &record.remote,
            time: &time,
            status: response.status,
            bytes,
            duration: Instant::now().saturating_duration_since(record.started),
            response_headers: &response_headers,
            environ_values: &environ_values,
        })
    }
}

/// `{Name}x` → (`Name`, `x`).
fn braced(atom: &str) -> Option<(&str, char)> {
    let inner = atom.strip_prefix('{')?;
    let (name, kind) = inner.rsplit_once('}')?;
    let mut chars = kind.chars();
    let kind = chars.next()?;
    (chars.next().is_none() && !name.is_empty()).then_some((name, kind))
}

fn truncate(text: &str) -> &str {
    let end = text.char_indices().nth(12).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use evserver_http::{parse_head, Limits};

    fn head(raw: &[u8]) -> Head {
        let mut h = Head::default();
        parse_head(raw, &Limits::default(), &mut h).unwrap();
        h
    }

    fn entry<'a>(
        captured: &'a [String],
        resp: &'a [Option<String>],
        env: &'a [Option<String>],
    ) -> Entry<'a> {
        Entry {
            captured,
            remote: "10.0.0.1",
            time: "[24/Nov/2026:02:00:00 +0000]",
            status: 200,
            bytes: 0,
            duration: Duration::from_micros(1500),
            response_headers: resp,
            environ_values: env,
        }
    }

    #[test]
    fn the_default_is_common_log_format() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        let f = Format::parse(COMMON_LOG_FORMAT).unwrap();
        let c = f.capture(&head(raw), raw);
        assert_eq!(
            f.render(&entry(&c, &[], &[])),
            r#"10.0.0.1 - - [24/Nov/2026:02:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 -"#
        );
    }

    #[test]
    fn every_atom_renders() {
        let raw = b"POST /p?q HTTP/1.0\r\nReferer: r\r\nUser-Agent: ua\r\nX-Id: 7\r\n\r\n";
        let f = Format::parse(
            "%(m)s %(U)s %(q)s %(H)s %(f)s %(a)s %({x-id}i)s %({missing}i)s %(B)s %(b)s \
             %(T)s %(M)s %(D)s %(L)s %({content-type}o)s %({PATH_INFO}e)s %(l)s%% %(u)s",
        )
        .unwrap();
        let c = f.capture(&head(raw), raw);
        let resp = [Some("text/plain".to_string())];
        let env = [Some("/p".to_string())];
        assert_eq!(
            f.render(&entry(&c, &resp, &env)),
            "POST /p q HTTP/1.0 r ua 7 - 0 - 0 1 1500 0.001500 text/plain /p -% -"
        );
        assert!(f.uses_environ());
        assert_eq!(f.response_headers().collect::<Vec<_>>(), ["content-type"]);
    }

    #[test]
    fn bad_formats_say_why() {
        assert!(Format::parse("%(zz)s").unwrap_err().0.contains("%(zz)s"));
        assert!(Format::parse("%(h)").is_err());
        assert!(Format::parse("100%").is_err());
        assert!(Format::parse("%({}i)s").is_err());
    }
}
