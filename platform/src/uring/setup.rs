//! Creating the ring: the setup flags the kernel may refuse, the features we cannot do without,
//! and the one-line reason for the startup log when io_uring is unavailable.

use super::buf_ring::{BufRing, GROUP};
use super::{internal, KIND_PROBE};
use crate::sys;
use crate::SIMULATE_REFUSAL_ENV;
use io_uring::{cqueue, opcode, types, IoUring, Probe};
use std::fmt;
use std::io;
use std::time::Duration;

/// A feature evserver needs that this kernel's io_uring lacks. Carried inside an `io::Error`
/// (kind `Unsupported`) so `describe_refusal` can name it.
#[derive(Debug)]
pub(super) struct MissingFeature(pub(super) &'static str);

impl fmt::Display for MissingFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "io_uring lacks {}", self.0)
    }
}

impl std::error::Error for MissingFeature {}

fn missing(feature: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, MissingFeature(feature))
}

/// Setup flag sets, best first. Each later set drops what an older kernel refuses with EINVAL:
/// DEFER_TASKRUN (6.1), SINGLE_ISSUER (6.0), COOP_TASKRUN (5.19), SUBMIT_ALL (5.18).
const FLAG_SETS: [(bool, bool, bool, bool); 5] = [
    // (single_issuer, defer_taskrun, coop_taskrun, submit_all)
    (true, true, true, true),
    (true, false, true, true),
    (false, false, true, true),
    (false, false, false, true),
    (false, false, false, false),
];

/// Creates the ring with the best flags the kernel accepts; the completion queue gets twice
/// `entries` slots. Honours `SIMULATE_REFUSAL_ENV`.
pub(super) fn build_ring(entries: u32) -> io::Result<IoUring> {
    if let Some(err) = simulated_refusal() {
        return Err(err);
    }
    let entries = entries.max(1);
    let mut last = None;
    for &(single_issuer, defer_taskrun, coop_taskrun, submit_all) in &FLAG_SETS {
        let mut builder = IoUring::builder();
        // DONTFORK: a forked child (an app's subprocess) does not inherit the ring mappings.
        builder
            .dontfork()
            .setup_cqsize(entries.saturating_mul(2))
            .setup_clamp();
        if single_issuer {
            builder.setup_single_issuer();
        }
        if defer_taskrun {
            builder.setup_defer_taskrun();
        }
        if coop_taskrun {
            builder.setup_coop_taskrun();
        }
        if submit_all {
            builder.setup_submit_all();
        }
        match builder.build(entries) {
            Ok(ring) => return Ok(ring),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
}

/// The error `SIMULATE_REFUSAL_ENV` asks for, if it is set.
fn simulated_refusal() -> Option<io::Error> {
    let name = std::env::var(SIMULATE_REFUSAL_ENV).ok()?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some(match sys::errno_from_name(name) {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::other(format!(
            "simulated io_uring refusal with unknown errno name {name:?}"
        )),
    })
}

/// Fails unless the kernel supports every opcode and feature the backend uses.
pub(super) fn check_features(ring: &IoUring) -> io::Result<()> {
    if !ring.params().is_feature_ext_arg() {
        return Err(missing("timed waits (EXT_ARG)"));
    }
    if !ring.params().is_feature_nodrop() {
        return Err(missing("a completion queue that never drops (NODROP)"));
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|_| missing("opcode probing"))?;
    let needed = [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::SendMsg::CODE, "sendmsg"),
        (opcode::PollAdd::CODE, "poll"),
        (opcode::LinkTimeout::CODE, "linked timeouts"),
        (opcode::AsyncCancel::CODE, "cancel"),
        (opcode::Close::CODE, "close"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(missing(name));
        }
    }
    Ok(())
}

/// Registers `bufs` as buffer group `GROUP`.
pub(super) fn register_buf_ring(ring: &IoUring, bufs: &BufRing) -> io::Result<()> {
    // SAFETY: the ring memory is page aligned, holds `entries()` slots, and lives in the
    // `Uring` beside `ring`; `Uring`'s drop unregisters it and drops the ring before the memory.
    let res = unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(bufs.ring_addr(), bufs.entries(), GROUP, 0)
    };
    res.map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => missing("provided buffer rings"),
        _ => e,
    })
}

/// Checks that multishot recv works (kernel 6.0+; 5.19 refuses it with EINVAL): receives one
/// byte and end of file from a socket pair and expects the data completion to carry `MORE`.
/// Multishot accept (5.19) comes with it.
pub(super) fn probe_multishot_recv(ring: &mut IoUring, bufs: &mut BufRing) -> io::Result<()> {
    let (a, b) = socket_pair()?;
    let _close = CloseOnDrop([a, b]);
    // SAFETY: writing one byte from a live stack buffer to an fd we own.
    if unsafe { libc::write(b, b"x".as_ptr().cast(), 1) } != 1 {
        return Err(io::Error::last_os_error());
    }
    sys::shutdown_write(b)?;

    let recv = opcode::RecvMulti::new(types::Fd(a), GROUP)
        .build()
        .user_data(internal(KIND_PROBE, 0));
    // SAFETY: the recv references no caller memory, only the registered buffer group.
    unsafe { ring.submission().push(&recv) }.map_err(|_| io::Error::other("empty ring is full"))?;

    let deadline = types::Timespec::from(Duration::from_secs(2));
    let args = types::SubmitArgs::new().timespec(&deadline);
    let mut saw_more = false;
    loop {
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "io_uring multishot recv probe got no completion",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for cqe in ring.completion() {
            if let Some(id) = cqueue::buffer_select(cqe.flags()) {
                bufs.mark_held(id);
                bufs.release(id);
            }
            if cqueue::more(cqe.flags()) {
                saw_more = true;
                continue;
            }
            return match cqe.result() {
                _ if saw_more => Ok(()),
                r if r == -libc::EINVAL => Err(missing("multishot recv")),
                r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
                _ => Err(missing("multishot recv")),
            };
        }
    }
}

fn socket_pair() -> io::Result<(i32, i32)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

struct CloseOnDrop([i32; 2]);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        for fd in self.0 {
            sys::close(fd);
        }
    }
}

/// One line for the startup log saying why io_uring setup failed.
pub fn describe_refusal(e: &io::Error) -> String {
    let mut line = if let Some(m) = e.get_ref().and_then(|i| i.downcast_ref::<MissingFeature>()) {
        format!("{m} (kernel too old)")
    } else {
        match e.raw_os_error() {
            Some(libc::EPERM) => match io_uring_disabled() {
                Some(2) => "io_uring disabled by kernel.io_uring_disabled=2 (EPERM)".to_owned(),
                Some(1) => "io_uring disabled by kernel.io_uring_disabled=1 for users outside \
                            kernel.io_uring_group (EPERM)"
                    .to_owned(),
                _ => "io_uring refused by seccomp (EPERM)".to_owned(),
            },
            Some(libc::ENOSYS) => "io_uring not supported by this kernel (ENOSYS)".to_owned(),
            Some(libc::ENOMEM) => {
                "io_uring setup ran out of memory or locked memory (ENOMEM; see ulimit -l)"
                    .to_owned()
            }
            Some(libc::EINVAL) => "io_uring refused the setup parameters (EINVAL)".to_owned(),
            Some(errno @ (libc::EMFILE | libc::ENFILE)) => format!(
                "io_uring setup failed: too many open files ({})",
                sys::errno_name(errno).unwrap_or("EMFILE")
            ),
            Some(errno) => match sys::errno_name(errno) {
                Some(name) => format!("io_uring setup failed: {e} ({name})"),
                None => format!("io_uring setup failed: {e}"),
            },
            None => format!("io_uring setup failed: {e}"),
        }
    };
    if let Some(simulated) = simulated_refusal() {
        if simulated.raw_os_error() == e.raw_os_error() {
            line.push_str(" [simulated by ");
            line.push_str(SIMULATE_REFUSAL_ENV);
            line.push(']');
        }
    }
    line
}

/// The value of the `kernel.io_uring_disabled` sysctl (Linux 6.6+), if readable.
fn io_uring_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_feature() {
        let line = describe_refusal(&missing("multishot recv"));
        assert_eq!(line, "io_uring lacks multishot recv (kernel too old)");
    }

    #[test]
    fn names_an_old_kernel() {
        let line = describe_refusal(&io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(
            line.starts_with("io_uring not supported by this kernel (ENOSYS)"),
            "{line}"
        );
    }

    #[test]
    fn names_who_refused_eperm() {
        let line = describe_refusal(&io::Error::from_raw_os_error(libc::EPERM));
        assert!(line.contains("(EPERM)"), "{line}");
        match io_uring_disabled() {
            Some(n @ (1 | 2)) => {
                assert!(line.contains(&format!("io_uring_disabled={n}")), "{line}")
            }
            _ => assert!(line.starts_with("io_uring refused by seccomp"), "{line}"),
        }
    }

    #[test]
    fn other_errors_keep_their_errno_name() {
        let line = describe_refusal(&io::Error::from_raw_os_error(libc::EACCES));
        assert!(
            line.starts_with("io_uring setup failed") && line.contains("EACCES"),
            "{line}"
        );
    }
}
