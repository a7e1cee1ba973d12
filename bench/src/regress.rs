//! The regression gate: `--compare` against a saved baseline, and `--assert` checks.

use crate::report::{fmt_us, Document, RunResult, Spread};
use std::fmt;
use std::io::{self, Write};

/// Compares `doc` with `base`; prints the deltas and returns true on a regression
/// (throughput down, or p99 up, by more than `threshold_pct`).
pub fn compare(
    out: &mut dyn Write,
    base: &Document,
    doc: &Document,
    threshold_pct: f64,
    base_name: &str,
) -> io::Result<bool> {
    writeln!(
        out,
        "Compared with {base_name} (threshold {threshold_pct}%):"
    )?;
    let b = &base.summary;
    let c = &doc.summary;
    if b.requests_per_sec.median == 0.0 {
        writeln!(
            out,
            "  the baseline completed no request: nothing to compare with (save another)"
        )?;
        return Ok(true);
    }
    let rps_delta = delta_pct(b.requests_per_sec.median, c.requests_per_sec.median);
    let p99_delta = delta_pct(b.p99_us.median, c.p99_us.median);
    let rps_bad = rps_delta < -threshold_pct;
    let p99_bad = p99_delta > threshold_pct;
    let flag = |bad: bool| if bad { "  REGRESSION" } else { "" };
    writeln!(
        out,
        "  requests/sec  {:>12.1} -> {:>12.1}  {:+.1}%{}",
        b.requests_per_sec.median,
        c.requests_per_sec.median,
        rps_delta,
        flag(rps_bad)
    )?;
    writeln!(
        out,
        "  p99           {:>12} -> {:>12}  {:+.1}%{}",
        fmt_us(b.p99_us.median),
        fmt_us(c.p99_us.median),
        p99_delta,
        flag(p99_bad)
    )?;
    writeln!(
        out,
        "  errors        {:>12} -> {:>12}",
        b.errors.median, c.errors.median
    )?;
    let noise = b.requests_per_sec.range_pct().max(b.p99_us.range_pct());
    if b.runs > 1 && noise > threshold_pct {
        writeln!(
            out,
            "  note: the baseline's own {} runs spread {noise:.1}%, more than the threshold: \
             the gate is finer than the noise (save a baseline with more runs, or raise --threshold)",
            b.runs
        )?;
    }
    if base.config.url != doc.config.url || base.config.connections != doc.config.connections {
        writeln!(
            out,
            "  note: the baseline ran against {} with {} connections",
            base.config.url, base.config.connections
        )?;
    }
    Ok(rps_bad || p99_bad)
}

/// The change from `base` to `now` in percent of `base`.
fn delta_pct(base: f64, now: f64) -> f64 {
    if base == 0.0 {
        if now == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (now - base) / base * 100.0
    }
}

/// A comparison operator of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// One `--assert` check, e.g. `p99<2ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    text: String,
    metric: String,
    op: Op,
    value: f64,
}

/// Why a check does not parse.
#[derive(Debug)]
pub struct BadCheck(pub String);

impl fmt::Display for BadCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The metrics a check may name.
const METRICS: &str = "rps, requests, errors, connect_errors, read_errors, write_errors, \
timeouts, parse_errors, status_4xx, status_5xx, late_sends, min, mean, stdev, max, p50, p75, \
p90, p99, p99.9, p99.99";

fn is_latency(metric: &str) -> bool {
    matches!(metric, "min" | "mean" | "stdev" | "max") || metric.starts_with('p')
}

impl Check {
    pub fn parse(text: &str) -> Result<Check, BadCheck> {
        let bad = |why: &str| BadCheck(format!("--assert {text:?}: {why}"));
        let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (pos, len, op) = ops
            .iter()
            .filter_map(|&(sym, op)| s.find(sym).map(|p| (p, sym.len(), op)))
            .min_by_key(|&(p, len, _)| (p, usize::MAX - len))
            .ok_or_else(|| bad("expected METRIC OP VALUE, e.g. p99<2ms or errors==0"))?;
        let metric = s[..pos].to_ascii_lowercase();
        let raw = &s[pos + len..];
        if value_of_metric(&metric, None).is_none() {
            return Err(bad(&format!(
                "unknown metric {metric:?} (one of {METRICS})"
            )));
        }
        let split = raw
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
            .unwrap_or(raw.len());
        let (num, unit) = raw.split_at(split);
        let num: f64 = num.parse().map_err(|_| bad("the value is not a number"))?;
        let scale = match (is_latency(&metric), unit) {
            (_, "") => 1.0,
            (true, "us" | "µs") => 1.0,
            (true, "ms") => 1e3,
            (true, "s") => 1e6,
            (false, "k") => 1e3,
            (false, "m") => 1e6,
            _ => {
                return Err(bad(&format!(
                    "unit {unit:?} does not fit metric {metric:?}"
                )))
            }
        };
        Ok(Check {
            text: text.to_string(),
            metric,
            op,
            value: num * scale,
        })
    }

    /// Checks against the median over the runs; returns the line to print and whether it held.
    pub fn evaluate(&self, runs: &[RunResult]) -> (bool, String) {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|r| value_of_metric(&self.metric, Some(r)))
            .collect();
        let actual = Spread::of(&values).median;
        let ok = self.op.holds(actual, self.value);
        let shown = if is_latency(&self.metric) {
            fmt_us(actual)
        } else {
            format!("{actual}")
        };
        let verdict = if ok { "ok" } else { "FAILED" };
        (
            ok,
            format!(
                "  assert {}: {verdict} ({} = {shown})",
                self.text, self.metric
            ),
        )
    }
}

/// The value of `metric` in `run` (with `None`: whether the metric exists, as `Some(0.0)`).
fn value_of_metric(metric: &str, run: Option<&RunResult>) -> Option<f64> {
    let Some(r) = run else {
        let known = [
            "rps",
            "requests",
            "errors",
            "connect_errors",
            "read_errors",
            "write_errors",
            "timeouts",
            "parse_errors",
            "status_4xx",
            "status_5xx",
            "late_sends",
            "min",
            "mean",
            "stdev",
            "max",
            "p50",
            "p75",
            "p90",
            "p99",
            "p99.9",
            "p99.99",
        ];
        return known.contains(&metric).then_some(0.0);
    };
    let status_class = |first: char| -> f64 {
        r.status
            .iter()
            .filter(|(code, _)| code.starts_with(first))
            .map(|(_, &n)| n as f64)
            .sum()
    };
    let l = &r.latency;
    Some(match metric {
        "rps" => r.requests_per_sec,
        "requests" => r.requests as f64,
        "errors" => r.errors.total as f64,
        "connect_errors" => r.errors.connect as f64,
        "read_errors" => r.errors.read as f64,
        "write_errors" => r.errors.write as f64,
        "timeouts" => r.errors.timeout as f64,
        "parse_errors" => r.errors.parse as f64,
        "status_4xx" => status_class('4'),
        "status_5xx" => status_class('5'),
        "late_sends" => r.rate.as_ref().map_or(0.0, |x| x.late_sends as f64),
        "min" => l.min as f64,
        "mean" => l.mean,
        "stdev" => l.stdev,
        "max" => l.max as f64,
        p => *l.percentiles.get(p)? as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_parse_with_units() {
        let c = Check::parse("p99 < 2ms").unwrap();
        assert_eq!((c.metric.as_str(), c.op, c.value), ("p99", Op::Lt, 2000.0));
        let c = Check::parse("errors==0").unwrap();
        assert_eq!((c.metric.as_str(), c.op, c.value), ("errors", Op::Eq, 0.0));
        let c = Check::parse("rps>=10k").unwrap();
        assert_eq!((c.op, c.value), (Op::Ge, 10_000.0));
        let c = Check::parse("p99.9<=1.5s").unwrap();
        assert_eq!((c.metric.as_str(), c.value), ("p99.9", 1_500_000.0));
    }

    #[test]
    fn bad_checks_say_why() {
        for bad in ["p99", "bogus<1", "p99<fast", "errors<1ms", "rps>1s"] {
            assert!(Check::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deltas() {
        assert_eq!(delta_pct(100.0, 90.0), -10.0);
        assert_eq!(delta_pct(0.0, 0.0), 0.0);
    }
}
