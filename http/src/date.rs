//! A cached IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for the Date header, rebuilt once a second.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate.
pub const DATE_LEN: usize = 29;

/// Holds the current Date header value.
pub struct DateCache {
    second: u64,
    value: [u8; DATE_LEN],
    /// Until this instant the wall-clock second has not changed: `refresh_at` needs no
    /// clock read before it.
    valid_until: Option<Instant>,
}

impl DateCache {
    pub fn new() -> DateCache {
        let second = now();
        DateCache {
            second,
            value: imf_fixdate(second),
            valid_until: None,
        }
    }
    /// Rebuilds the value if the second changed since the last call. Call once per loop turn.
    pub fn refresh(&mut self) {
        let second = now();
        if second != self.second {
            self.second = second;
            self.value = imf_fixdate(second);
        }
    }
    /// Like `refresh`, given the loop's monotonic `now`: the wall clock is read only once
    /// the second it last showed has run out, not on every loop turn.
    pub fn refresh_at(&mut self, now: Instant) {
        if self.valid_until.is_some_and(|until| now < until) {
            return;
        }
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let second = since_epoch.as_secs();
        if second != self.second {
            self.second = second;
            self.value = imf_fixdate(second);
        }
        let left = Duration::from_secs(1) - Duration::from_nanos(since_epoch.subsec_nanos().into());
        self.valid_until = now.checked_add(left);
    }

    /// The 29-byte IMF-fixdate.
    pub fn get(&self) -> &[u8] {
        &self.value
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Formats `secs` since the Unix epoch as an IMF-fixdate (RFC 9110 §5.6.7).
pub fn imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two_digits(&mut out[12..14], year / 100 % 100);
    two_digits(&mut out[14..16], year % 100);
    two_digits(&mut out[17..19], in_day / 3600);
    two_digits(&mut out[20..22], in_day / 60 % 60);
    two_digits(&mut out[23..25], in_day % 60);
    out
}

/// Formats `secs` since the Unix epoch as Common Log Format shows time:
/// `10/Oct/2000:13:55:36 +0000`.
pub fn clf_date(secs: u64) -> String {
    let fixdate = imf_fixdate(secs);
    let field =
        |range: std::ops::Range<usize>| String::from_utf8_lossy(&fixdate[range]).into_owned();
    // From "Sun, 06 Nov 1994 08:49:37 GMT": day 5..7, month 8..11, year 12..16, time 17..25.
    format!(
        "{}/{}/{}:{} +0000",
        field(5..7),
        field(8..11),
        field(12..16),
        field(17..25)
    )
}

fn two_digits(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Formats `secs` since the Unix epoch as RFC 3339 in UTC, to the second
/// (`2026-11-24T02:13:30Z`).
pub fn rfc3339(secs: u64) -> String {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let in_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, after Howard Hinnant's
/// `civil_from_days`, restricted to dates from 1970 on.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(secs: u64) -> String {
        String::from_utf8(imf_fixdate(secs).to_vec()).unwrap()
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z"); // a leap day
    }

    #[test]
    fn formats_common_log_format_time() {
        assert_eq!(clf_date(784_111_777), "06/Nov/1994:08:49:37 +0000");
        assert_eq!(clf_date(951_782_400), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn formats_known_timestamps() {
        assert_eq!(text(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(text(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(text(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(text(1_234_567_890), "Fri, 13 Feb 2009 23:31:30 GMT");
        assert_eq!(text(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
        assert_eq!(text(1_735_689_599), "Tue, 31 Dec 2024 23:59:59 GMT");
        assert_eq!(text(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(text(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
    }

    #[test]
    fn day_boundaries_roll_over() {
        assert_eq!(text(86_399), "Thu, 01 Jan 1970 23:59:59 GMT");
        assert_eq!(text(86_400), "Fri, 02 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn refresh_at_reads_the_clock_only_once_the_second_ran_out() {
        const STALE: &[u8; DATE_LEN] = b"Thu, 01 Jan 1970 00:00:00 GMT";
        let current =
            |c: &DateCache| (now() - 1..=now()).any(|s| c.get() == imf_fixdate(s).as_slice());
        let mut cache = DateCache::new();
        let start = Instant::now();
        cache.refresh_at(start);
        assert!(current(&cache));
        // Within the second the clock is not read again: a planted stale value stays.
        (cache.second, cache.value) = (0, *STALE);
        cache.refresh_at(start);
        assert_eq!(cache.get(), STALE);
        // Once it ran out, the clock is read and the value follows it.
        cache.refresh_at(start + Duration::from_secs(1));
        assert!(current(&cache));
    }

    #[test]
    fn cache_holds_a_current_date() {
        let mut cache = DateCache::new();
        cache.refresh();
        let value = cache.get();
        assert_eq!(value.len(), DATE_LEN);
        assert!(value.ends_with(b" GMT"));
        assert_eq!(value, imf_fixdate(cache.second));
    }
}
