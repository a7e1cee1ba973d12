//! What one thread measures, kept thread-local during the run and merged at the end.

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, up to an hour, to 3 significant digits.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// Failed requests by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub parse: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout + self.parse
    }

    fn add(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.read += o.read;
        self.write += o.write;
        self.timeout += o.timeout;
        self.parse += o.parse;
    }
}

/// The kind of a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Connect,
    Read,
    Write,
    Timeout,
    Parse,
}

/// One second of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Second {
    pub responses: u64,
    pub errors: u64,
    pub bytes: u64,
}

/// Counters and histograms of one thread (or, merged, of the whole run).
pub struct Stats {
    /// Latency: from the send, or in rate mode from the planned send time.
    pub latency: Histogram<u64>,
    /// Rate mode only: latency from the actual send.
    pub uncorrected: Option<Histogram<u64>>,
    pub responses: u64,
    pub bytes: u64,
    /// Requests handed to the kernel.
    pub sent: u64,
    /// Rate mode: requests sent more than `LATE_AFTER` after their planned time.
    pub late: u64,
    /// Rate mode: requests that were due while every connection waited for a response.
    pub starved: u64,
    /// CPU time the generator's threads used while recording, in microseconds.
    pub cpu_micros: u64,
    pub errors: ErrorCounts,
    /// Responses by status code (a status line has three digits).
    pub status: Box<[u64; 1000]>,
    pub timeline: Vec<Second>,
}

impl Stats {
    pub fn new(rate_mode: bool) -> Stats {
        Stats {
            latency: new_histogram(),
            uncorrected: rate_mode.then(new_histogram),
            responses: 0,
            bytes: 0,
            sent: 0,
            late: 0,
            starved: 0,
            cpu_micros: 0,
            errors: ErrorCounts::default(),
            status: Box::new([0; 1000]),
            timeline: Vec::with_capacity(64),
        }
    }

    /// Forgets everything (end of the warmup).
    pub fn clear(&mut self) {
        self.latency.reset();
        if let Some(h) = &mut self.uncorrected {
            h.reset();
        }
        self.responses = 0;
        self.bytes = 0;
        self.sent = 0;
        self.late = 0;
        self.starved = 0;
        self.cpu_micros = 0;
        self.errors = ErrorCounts::default();
        self.status.fill(0);
        self.timeline.clear();
    }

    /// The timeline entry of second `sec` of the run.
    #[inline]
    pub fn second(&mut self, sec: usize) -> &mut Second {
        if sec >= self.timeline.len() {
            self.timeline.resize(sec + 1, Second::default());
        }
        &mut self.timeline[sec]
    }

    #[inline]
    pub fn fail(&mut self, kind: Failure, sec: usize) {
        match kind {
            Failure::Connect => self.errors.connect += 1,
            Failure::Read => self.errors.read += 1,
            Failure::Write => self.errors.write += 1,
            Failure::Timeout => self.errors.timeout += 1,
            Failure::Parse => self.errors.parse += 1,
        }
        self.second(sec).errors += 1;
    }

    /// Responses with status >= 400, which count as errors.
    pub fn status_errors(&self) -> u64 {
        self.status[400..].iter().sum()
    }

    /// Adds another thread's figures.
    pub fn merge(&mut self, o: &Stats) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&o.latency);
        if let (Some(a), Some(b)) = (&mut self.uncorrected, &o.uncorrected) {
            let _ = a.add(b);
        }
        self.responses += o.responses;
        self.bytes += o.bytes;
        self.sent += o.sent;
        self.late += o.late;
        self.starved += o.starved;
        self.cpu_micros += o.cpu_micros;
        self.errors.add(&o.errors);
        for (a, b) in self.status.iter_mut().zip(o.status.iter()) {
            *a += b;
        }
        for (i, s) in o.timeline.iter().enumerate() {
            let d = self.second(i);
            d.responses += s.responses;
            d.errors += s.errors;
            d.bytes += s.bytes;
        }
    }
}
