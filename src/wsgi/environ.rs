//! Builds the PEP 3333 environ of a request: a copy of a per-listener template holding the
//! constant keys, plus the request's own keys; `HTTP_*` key strings come from a table of
//! common header names, or are cached by name, and the values that repeat from request to
//! request (the path, Host, Upgrade...) are one string while they stay the same.

use super::forwarded;
use super::latin1::str_from_latin1;
use crate::allow::AllowList;
use evserver_http::{percent::percent_decode, Head, Version};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::collections::HashMap;

/// Most distinct header names whose `HTTP_*` key is cached.
const MAX_CACHED_KEYS: usize = 512;

/// Longest value kept as a repeating value's string.
const MAX_REPEATED_VALUE: usize = 256;

/// The last value of a field that mostly repeats, and its string.
struct Repeated {
    bytes: Vec<u8>,
    text: Py<PyString>,
}

/// Per-worker caches and scratch space for building environs.
#[derive(Default)]
pub struct EnvironBuilder {
    keys: HashMap<Box<[u8]>, Py<PyString>>,
    scratch: Vec<u8>,
    /// The last value of `PATH_INFO` (slot 0) and of each field `repeating_slot` names: a
    /// request repeating it gets the same string, not a new one (less to allocate, and less
    /// memory held by the environs of thousands of parked requests).
    repeated: Box<[Option<Repeated>; 1 + REPEATING_FIELDS]>,
}

/// Header fields whose values mostly repeat between requests, in `repeated`'s slots 1...
const REPEATING_FIELDS: usize = 8;

/// The `repeated` slot of a header field whose value mostly repeats.
fn repeating_slot(name: &[u8]) -> Option<usize> {
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    match name.len() {
        4 if is(b"host") => Some(1),
        6 if is(b"accept") => Some(2),
        7 if is(b"upgrade") => Some(3),
        10 if is(b"connection") => Some(4),
        10 if is(b"user-agent") => Some(5),
        15 if is(b"accept-encoding") => Some(6),
        15 if is(b"accept-language") => Some(7),
        21 if is(b"sec-websocket-version") => Some(8),
        _ => None,
    }
}

const PATH_SLOT: usize = 0;

/// The parts of a request the environ is built from.
pub struct RequestParts<'a, 'py> {
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub remote_addr: &'a Bound<'py, PyString>,
    pub remote_port: &'a Bound<'py, PyString>,
    /// The body's length as the server read it (a chunked body's decoded length), for
    /// CONTENT_LENGTH; `None` when the request has no body.
    pub body_length: Option<u64>,
    /// The peer is a proxy the server trusts: its `X-Forwarded-*` fields count, with the
    /// allow list to walk `X-Forwarded-For`'s hops by.
    pub forwarded: Option<&'a AllowList>,
}

enum Key {
    ContentType,
    ContentLength,
    Skip,
    Http,
}

fn classify(name: &[u8]) -> Key {
    if name.eq_ignore_ascii_case(b"content-type") {
        Key::ContentType
    } else if name.eq_ignore_ascii_case(b"content-length") {
        Key::ContentLength
    } else if name.contains(&b'_') || name.eq_ignore_ascii_case(b"transfer-encoding") {
        // An underscore would let `X_Foo` pose as `X-Foo` (both are HTTP_X_FOO); the body
        // was de-chunked, so Transfer-Encoding no longer describes wsgi.input.
        Key::Skip
    } else {
        Key::Http
    }
}

fn method_str<'py>(py: Python<'py>, method: &[u8]) -> Bound<'py, PyString> {
    match method {
        b"GET" => intern!(py, "GET").clone(),
        b"POST" => intern!(py, "POST").clone(),
        b"HEAD" => intern!(py, "HEAD").clone(),
        b"PUT" => intern!(py, "PUT").clone(),
        b"DELETE" => intern!(py, "DELETE").clone(),
        b"PATCH" => intern!(py, "PATCH").clone(),
        b"OPTIONS" => intern!(py, "OPTIONS").clone(),
        other => str_from_latin1(py, other),
    }
}

/// The keys every request sets, with placeholder values.
const PER_REQUEST_KEYS: [&str; 9] = [
    "wsgi.input",
    "x-wsgiorg.fdevent.timeout",
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "RAW_URI",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
];

/// Adds the keys every request sets to a listener's template (interned, with placeholder
/// values), so that filling a copy replaces values in place: the copy keeps the template's
/// table size, which leaves room for the request's headers without a resize.
pub fn add_request_placeholders(template: &Bound<'_, PyDict>) -> PyResult<()> {
    let py = template.py();
    for key in PER_REQUEST_KEYS {
        template.set_item(PyString::intern(py, key), intern!(py, ""))?;
    }
    Ok(())
}

/// Defines `common_key`, which maps a common request header name to its interned `HTTP_*`
/// key (no hashing, no allocation), and, for tests, the list of those names.
macro_rules! common_keys {
    ($($len:literal => [$($header:literal => $key:literal),+ $(,)?]),+ $(,)?) => {
        /// The `HTTP_*` key of a common request header, interned once.
        fn common_key<'py>(py: Python<'py>, name: &[u8]) -> Option<Bound<'py, PyString>> {
            match name.len() {
                $($len => {
                    $(if name.eq_ignore_ascii_case($header) {
                        return Some(intern!(py, $key).clone());
                    })+
                    None
                })+
                _ => None,
            }
        }

        #[cfg(test)]
        const COMMON_NAMES: &[&[u8]] = &[$($($header),+),+];
    };
}

common_keys! {
    2 => [
        b"te" => "HTTP_TE",
    ],
    3 => [
        b"dnt" => "HTTP_DNT",
    ],
    4 => [
        b"host" => "HTTP_HOST",
    ],
    6 => [
        b"accept" => "HTTP_ACCEPT",
        b"cookie" => "HTTP_COOKIE",
        b"origin" => "HTTP_ORIGIN",
        b"pragma" => "HTTP_PRAGMA",
        b"expect" => "HTTP_EXPECT",
    ],
    7 => [
        b"referer" => "HTTP_REFERER",
        b"upgrade" => "HTTP_UPGRADE",
    ],
    8 => [
        b"priority" => "HTTP_PRIORITY",
        b"if-range" => "HTTP_IF_RANGE",
    ],
    9 => [
        b"forwarded" => "HTTP_FORWARDED",
        b"x-real-ip" => "HTTP_X_REAL_IP",
    ],
    10 => [
        b"connection" => "HTTP_CONNECTION",
        b"user-agent" => "HTTP_USER_AGENT",
        b"keep-alive" => "HTTP_KEEP_ALIVE",
    ],
    12 => [
        b"x-request-id" => "HTTP_X_REQUEST_ID",
    ],
    13 => [
        b"authorization" => "HTTP_AUTHORIZATION",
        b"cache-control" => "HTTP_CACHE_CONTROL",
        b"if-none-match" => "HTTP_IF_NONE_MATCH",
    ],
    14 => [
        b"sec-fetch-dest" => "HTTP_SEC_FETCH_DEST",
        b"sec-fetch-mode" => "HTTP_SEC_FETCH_MODE",
        b"sec-fetch-site" => "HTTP_SEC_FETCH_SITE",
        b"sec-fetch-user" => "HTTP_SEC_FETCH_USER",
    ],
    15 => [
        b"accept-encoding" => "HTTP_ACCEPT_ENCODING",
        b"accept-language" => "HTTP_ACCEPT_LANGUAGE",
        b"x-forwarded-for" => "HTTP_X_FORWARDED_FOR",
    ],
    16 => [
        b"x-forwarded-host" => "HTTP_X_FORWARDED_HOST",
        b"x-requested-with" => "HTTP_X_REQUESTED_WITH",
    ],
    17 => [
        b"if-modified-since" => "HTTP_IF_MODIFIED_SINCE",
        b"x-forwarded-proto" => "HTTP_X_FORWARDED_PROTO",
    ],
    25 => [
        b"upgrade-insecure-requests" => "HTTP_UPGRADE_INSECURE_REQUESTS",
    ],
}

impl EnvironBuilder {
    /// The string of `bytes`, the value last seen in `slot` of `repeated`: the same string as
    /// last time if the value did not change.
    fn repeated_str<'py>(
        &mut self,
        py: Python<'py>,
        slot: usize,
        bytes: &[u8],
    ) -> Bound<'py, PyString> {
        let entry = &mut self.repeated[slot];
        if let Some(last) = entry {
            if last.bytes == bytes {
                return last.text.bind(py).clone();
            }
        }
        let text = str_from_latin1(py, bytes);
        if bytes.len() <= MAX_REPEATED_VALUE {
            match entry {
                Some(last) => {
                    last.bytes.clear();
                    last.bytes.extend_from_slice(bytes);
                    last.text = text.clone().unbind();
                }
                None => {
                    *entry = Some(Repeated {
                        bytes: bytes.to_vec(),
                        text: text.clone().unbind(),
                    })
                }
            }
        }
        text
    }

    /// The `HTTP_*` key for a header name.
    fn http_key<'py>(&mut self, py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
        if let Some(key) = common_key(py, name) {
            return key;
        }
        self.scratch.clear();
        self.scratch.extend(name.iter().map(u8::to_ascii_lowercase));
        if let Some(key) = self.keys.get(self.scratch.as_slice()) {
            return key.bind(py).clone();
        }
        let mut key = Vec::with_capacity(5 + name.len());
        key.extend_from_slice(b"HTTP_");
        key.extend(name.iter().map(|&b| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        }));
        let key = str_from_latin1(py, &key);
        // SAFETY: interning a str we own a reference to; CPython replaces the reference.
        let key = unsafe {
            let mut ptr = key.into_ptr();
            pyo3::ffi::PyUnicode_InternInPlace(&mut ptr);
            Bound::from_owned_ptr(py, ptr).cast_into_unchecked::<PyString>()
        };
        if self.keys.len() < MAX_CACHED_KEYS {
            self.keys.insert(
                self.scratch.clone().into_boxed_slice(),
                key.clone().unbind(),
            );
        }
        key
    }

    /// Fills `environ` (a fresh copy of the listener's template) with the request's keys.
    pub fn fill<'py>(
        &mut self,
        environ: &Bound<'py, PyDict>,
        req: &RequestParts<'_, 'py>,
    ) -> PyResult<()> {
        let py = environ.py();
        let head = req.head;
        let buf = req.buf;
        environ.set_item(
            intern!(py, "REQUEST_METHOD"),
            method_str(py, head.method.of(buf)),
        )?;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        percent_decode(head.path.of(buf), &mut scratch);
        let path = self.repeated_str(py, PATH_SLOT, &scratch);
        self.scratch = scratch;
        environ.set_item(intern!(py, "PATH_INFO"), &path)?;
        let query = head.query.of(buf);
        if query.is_empty() {
            environ.set_item(intern!(py, "QUERY_STRING"), intern!(py, ""))?;
        } else {
            environ.set_item(intern!(py, "QUERY_STRING"), str_from_latin1(py, query))?;
        }
        let raw_uri = head.target().of(buf);
        if raw_uri == self.scratch.as_slice() {
            // Nothing was percent-decoded and there is no query: the same text.
            environ.set_item(intern!(py, "RAW_URI"), path)?;
        } else {
            environ.set_item(intern!(py, "RAW_URI"), str_from_latin1(py, raw_uri))?;
        }
        let protocol = match head.version {
            Some(Version::Http10) => intern!(py, "HTTP/1.0"),
            _ => intern!(py, "HTTP/1.1"),
        };
        environ.set_item(intern!(py, "SERVER_PROTOCOL"), protocol)?;
        environ.set_item(intern!(py, "REMOTE_ADDR"), req.remote_addr)?;
        environ.set_item(intern!(py, "REMOTE_PORT"), req.remote_port)?;
        if let Some(length) = req.body_length {
            let mut text = itoa::Buffer::new();
            environ.set_item(intern!(py, "CONTENT_LENGTH"), text.format(length))?;
        }
        // CONTENT_LENGTH is the number the server parsed, never the field as sent
        // (`Content-Length: 5, 5` is 5); an explicit 0 is passed on.
        let mut zero_length_sent = false;
        // Whether a trusted proxy sent any X-Forwarded-* field (read after this loop).
        let mut forwarded_sent = false;
        for (name, value) in &head.headers {
            let name = name.of(buf);
            let value = value.of(buf);
            forwarded_sent |= req.forwarded.is_some() && forwarded::is_forwarded_field(name);
            let key = match classify(name) {
                Key::Skip => continue,
                Key::ContentType => intern!(py, "CONTENT_TYPE").clone(),
                Key::ContentLength => {
                    zero_length_sent = req.body_length.is_none();
                    continue;
                }
                Key::Http => self.http_key(py, name),
            };
            let value = match repeating_slot(name) {
                Some(slot) => self.repeated_str(py, slot, value),
                None => str_from_latin1(py, value),
            };
            let before = environ.len();
            // SAFETY: the GIL is held and all three are live objects; setdefault returns a
            // borrowed reference (or NULL with an exception set), taken as a new one at once.
            let existing = unsafe {
                let found =
                    pyo3::ffi::PyDict_SetDefault(environ.as_ptr(), key.as_ptr(), value.as_ptr());
                Bound::from_borrowed_ptr_or_err(py, found)?
            };
            // One lookup. Whether it inserted shows in the length, not in `existing` being
            // `value`: the same string may be there already (a one-character value is a
            // shared object, as is a repeating value's).
            let existing = (environ.len() == before).then_some((existing, value));
            if let Some((existing, value)) = existing {
                let separator = if name.eq_ignore_ascii_case(b"cookie") {
                    "; "
                } else {
                    ", "
                };
                let joined = format!(
                    "{}{}{}",
                    existing.str()?.to_cow()?,
                    separator,
                    value.to_cow()?
                );
                environ.set_item(key, joined)?;
            }
        }
        if zero_length_sent {
            environ.set_item(intern!(py, "CONTENT_LENGTH"), intern!(py, "0"))?;
        }
        if let (Some(allow), true) = (req.forwarded, forwarded_sent) {
            let said = forwarded::read(head, buf, allow);
            if said.https == Some(true) {
                environ.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "https"))?;
                environ.set_item(intern!(py, "HTTPS"), intern!(py, "on"))?;
            }
            if let Some(client) = said.client {
                environ.set_item(intern!(py, "REMOTE_ADDR"), client.to_string())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_keys_match_the_general_rule() {
        Python::initialize();
        Python::attach(|py| {
            let mixed_case: [&[u8]; 4] = [
                b"USER-AGENT",
                b"Upgrade-Insecure-Requests",
                b"X-Forwarded-Proto",
                b"TE",
            ];
            let names = COMMON_NAMES.iter().chain(mixed_case.iter());
            for name in names {
                let table = common_key(py, name).expect("in the table").to_string();
                let rule: String = "HTTP_".to_string()
                    + &String::from_utf8_lossy(name)
                        .to_ascii_uppercase()
                        .replace('-', "_");
                assert_eq!(table, rule);
            }
            assert!(common_key(py, b"X-Custom").is_none());
            assert!(common_key(py, b"Hostx").is_none());
        });
    }
}
