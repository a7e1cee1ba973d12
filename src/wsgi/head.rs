//! Writes the response head from the application's status and header list: the Python values
//! become latin-1 bytes here and the codec (`http::encode`) checks and writes them, so a bad
//! header is a 500, never an injection.

use super::latin1::latin1_bytes;
use evserver_http::encode::{write_app_header, write_status_line, AppHead};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

/// Why the application's head cannot be sent (answered with a 500 and logged).
#[derive(Debug)]
pub struct HeadError(pub String);

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

fn as_str<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    what: &str,
) -> Result<&'a Bound<'py, PyString>, HeadError> {
    obj.cast::<PyString>()
        .map_err(|_| HeadError(format!("{what} must be a str, not {}", type_name(obj))))
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
    let mut head = write_status_line(out, status_bytes)
        .map_err(|_| HeadError(format!("invalid status {:?}", status.to_string_lossy())))?;
    for item in headers.iter() {
        let pair = item.cast::<PyTuple>().map_err(|_| {
            HeadError(format!(
                "each header must be a (name, value) tuple, not {}",
                type_name(&item)
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
            .ok_or_else(|| HeadError(format!("header {name_str} is not latin-1")))?;
        write_app_header(out, &mut head, name, value).map_err(|e| {
            HeadError(format!(
                "{} (header {:?}: {:?})",
                e.describe(),
                name_str.to_string_lossy(),
                value_str.to_string_lossy()
            ))
        })?;
    }
    Ok(head)
}
