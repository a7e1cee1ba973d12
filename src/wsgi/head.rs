//! Writes the response head from the application's status and headers, validating them (a bad
//! header is a 500, never an injection) and noting the headers the server must act on.

use super::latin1::latin1_bytes;
use evserver_http::response::{parse_status, valid_header_name, valid_header_value};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

/// What the application's headers said that the server acts on.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppHead {
    pub status: u16,
    pub content_length: Option<u64>,
    /// The application sent `Connection: close`.
    pub close: bool,
    pub has_date: bool,
    pub has_server: bool,
}

/// Why the application's head cannot be sent (answered with a 500 and logged).
#[derive(Debug)]
pub struct HeadError(pub String);

fn as_str<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    what: &str,
) -> Result<&'a Bound<'py, PyString>, HeadError> {
    obj.cast::<PyString>().map_err(|_| {
        HeadError(format!(
            "{what} must be a str, not {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// Appends `HTTP/1.1 <status>\r\n` and the application's header lines to `out`.
/// On error `out` may hold a partial head: the caller truncates it.
pub fn write_app_head(
    out: &mut Vec<u8>,
    status: &Bound<'_, PyString>,
    headers: &Bound<'_, PyList>,
) -> Result<AppHead, HeadError> {
    let status_bytes =
        latin1_bytes(status).ok_or_else(|| HeadError("status is not latin-1".to_string()))?;
    let code = parse_status(status_bytes)
        .ok_or_else(|| HeadError(format!("invalid status {:?}", status.to_string_lossy())))?;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status_bytes);
    out.extend_from_slice(b"\r\n");
    let mut head = AppHead {
        status: code,
        ..AppHead::default()
    };
    for item in headers.iter() {
        let pair = item.cast::<PyTuple>().map_err(|_| {
            HeadError(format!(
                "each header must be a (name, value) tuple, not {}",
                item.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        if pair.len() != 2 {
            return Err(HeadError(format!(
                "each header must be a (name, value) tuple, got {} items",
                pair.len()
            )));
        }
        let name_obj = pair.get_item(0).map_err(|e| HeadError(e.to_string()))?;
        let value_obj = pair.get_item(1).map_err(|e| HeadError(e.to_string()))?;
        let name_str = as_str(&name_obj, "a header name")?;
        let value_str = as_str(&value_obj, "a header value")?;
        let name = latin1_bytes(name_str)
            .ok_or_else(|| HeadError("a header name is not latin-1".to_string()))?;
        let value = latin1_bytes(value_str)
            .ok_or_else(|| HeadError(format!("header {} is not latin-1", name_str)))?;
        if !valid_header_name(name) {
            return Err(HeadError(format!(
                "invalid header name {:?}",
                name_str.to_string_lossy()
            )));
        }
        if !valid_header_value(value) {
            return Err(HeadError(format!(
                "invalid character (CR, LF or control) in the value of header {}",
                name_str.to_string_lossy()
            )));
        }
        match classify(name) {
            Special::ContentLength => {
                let n = parse_length(value).ok_or_else(|| {
                    HeadError(format!(
                        "invalid Content-Length {:?}",
                        value_str.to_string_lossy()
                    ))
                })?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err(HeadError("conflicting Content-Length headers".to_string()));
                }
                head.content_length = Some(n);
            }
            Special::Connection => {
                if value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                {
                    head.close = true;
                }
                // The server writes its own Connection header.
                continue;
            }
            // The server frames the body itself; an app's Transfer-Encoding would double it.
            Special::TransferEncoding => continue,
            Special::Date => head.has_date = true,
            Special::Server => head.has_server = true,
            Special::Other => {}
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    Ok(head)
}

enum Special {
    ContentLength,
    Connection,
    TransferEncoding,
    Date,
    Server,
    Other,
}

fn classify(name: &[u8]) -> Special {
    match name.len() {
        14 if name.eq_ignore_ascii_case(b"content-length") => Special::ContentLength,
        10 if name.eq_ignore_ascii_case(b"connection") => Special::Connection,
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => Special::TransferEncoding,
        4 if name.eq_ignore_ascii_case(b"date") => Special::Date,
        6 if name.eq_ignore_ascii_case(b"server") => Special::Server,
        _ => Special::Other,
    }
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}
