//! Where and when a run happened: the machine's description and UTC timestamps.

use crate::report::Machine;
use std::ffi::CStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The machine running the benchmark.
pub fn describe() -> Machine {
    // SAFETY: utsname is plain data; uname fills it with NUL-terminated strings on success.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, exclusively borrowed utsname.
    let ok = unsafe { libc::uname(&mut u) } == 0;
    let field = |f: &[libc::c_char]| -> String {
        if !ok {
            return String::new();
        }
        // SAFETY: uname NUL-terminates every field within its array.
        unsafe { CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Machine {
        hostname: field(&u.nodename),
        os: std::env::consts::OS.to_string(),
        kernel: field(&u.release),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    }
}

/// `t` as RFC 3339 in UTC, to the second (e.g. `2026-11-24T02:13:30Z`).
pub fn rfc3339(t: SystemTime) -> String {
    evserver_http::date::rfc3339(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }
}
