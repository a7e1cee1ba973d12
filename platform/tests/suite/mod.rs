//! Behaviour every backend must show, driven through the public `Driver` with real sockets,
//! pipes and files. Each file including this suite names the backend in `BACKEND`.

mod accept;
mod connect;
mod lifecycle;
mod poll_fd;
mod recv;
mod send;

use evserver_platform::{Completion, Config, Driver, Token};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen at once before it fails.
const PATIENCE: Duration = Duration::from_secs(5);

/// A token for operation kind `op` of slot `slot`.
/// What a cancelled operation reports: one final completion with ECANCELED, nothing else.
pub fn only_cancelled(t: Token) -> Vec<Completion> {
    vec![Completion {
        token: t,
        result: -libc::ECANCELED,
        more: false,
        buffer: None,
    }]
}

pub fn tok(slot: u32, op: u8) -> Token {
    Token::new(slot, 7, op)
}

/// A driver and the completions it has produced so far.
pub struct Loop {
    pub driver: Driver,
    pub seen: Vec<Completion>,
}

impl Loop {
    pub fn new() -> Loop {
        Loop::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Loop {
        let selected = match Driver::select(super::BACKEND, &config) {
            Ok(selected) => selected,
            Err(e) if super::BACKEND == evserver_platform::Choice::IoUring => {
                // The kernel refuses io_uring here (seccomp, sysctl, old kernel): skip the
                // whole binary rather than fail on the machine's account.
                // Written to the stderr handle itself: the harness captures eprintln!.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP: io_uring unavailable: {}",
                    evserver_platform::describe_io_uring_refusal(&e)
                );
                std::process::exit(0);
            }
            Err(e) => panic!("driver: {e}"),
        };
        Loop {
            driver: selected.driver,
            seen: Vec::new(),
        }
    }

    /// One `wait` of at most `timeout`, then drain.
    pub fn turn(&mut self, timeout: Duration) {
        self.driver.wait(Some(timeout)).expect("wait");
        self.driver.drain(&mut self.seen);
    }

    /// Turns the loop until `done` holds on everything seen, failing after `PATIENCE`.
    pub fn until(&mut self, what: &str, done: impl Fn(&[Completion]) -> bool) {
        let start = Instant::now();
        while !done(&self.seen) {
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; seen: {:?}",
                self.seen
            );
            self.turn(Duration::from_millis(50));
        }
    }

    /// Turns the loop until `token` has a final completion; returns every completion of
    /// `token` seen, the final one last.
    pub fn until_final(&mut self, token: Token) -> Vec<Completion> {
        self.until("a final completion", |seen| {
            seen.iter().any(|c| c.token == token && !c.more)
        });
        self.of(token)
    }

    /// Turns the loop for `span`, collecting whatever arrives.
    pub fn settle(&mut self, span: Duration) {
        let end = Instant::now() + span;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.turn(left);
        }
    }

    /// The completions of `token` seen so far.
    pub fn of(&self, token: Token) -> Vec<Completion> {
        self.seen
            .iter()
            .filter(|c| c.token == token)
            .copied()
            .collect()
    }
}

/// A pipe: (read end, write end), both non-blocking.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two fds pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: pipe succeeded, so both fds are open and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    set_nonblocking(r.as_raw_fd());
    set_nonblocking(w.as_raw_fd());
    (r, w)
}

pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: plain fcntl calls on an open fd.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0);
        assert!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0);
    }
}

/// Writes `data` to `fd`, which must take it all at once.
pub fn write_all_now(fd: RawFd, data: &[u8]) {
    // SAFETY: `data` is valid for its length.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    assert_eq!(n, data.len() as isize, "write to fd {fd}");
}

/// Whether the other end of `peer` was closed: a read sees end of file (the caller sets a
/// read timeout, so that an end left open fails instead of hanging).
/// (Asking whether the fd number is still open would race with the other tests, which run on
/// threads of this process and may be handed the same number the moment it is closed.)
pub fn peer_sees_eof(peer: &mut impl std::io::Read) -> bool {
    let mut byte = [0u8; 1];
    matches!(peer.read(&mut byte), Ok(0))
}
