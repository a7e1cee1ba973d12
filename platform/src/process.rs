//! Process supervision primitives for a pre-forking server: reaping children, sending
//! signals, the parent-death signal, a system-wide monotonic clock, resource usage and
//! memory shared between the master and its workers.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called exit with this status.
    Status(i32),
    /// A signal killed it.
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Exit::Status(code) => write!(f, "exit status {code}"),
            Exit::Signal(sig) => write!(f, "signal {sig} ({})", signal_name(sig)),
        }
    }
}

/// The conventional name of a signal number, for log lines.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "unknown signal",
    }
}

/// Reaps child `pid` if it has exited, without blocking: `Ok(None)` while it runs.
pub fn reap(pid: i32) -> io::Result<Option<Exit>> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes the status into a local we own.
    let pid = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if pid < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ECHILD) {
            // Not (or no longer) our child: someone else reaped it; it has ended.
            return Ok(Some(Exit::Status(0)));
        }
        return Err(err);
    }
    if pid == 0 {
        return Ok(None);
    }
    let exit = if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Status(libc::WEXITSTATUS(status))
    };
    Ok(Some(exit))
}

/// Sends `sig` to process `pid`; a process that is already gone is not an error.
pub fn send_signal(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid, sig) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err);
        }
    }
    Ok(())
}

/// Asks the kernel to send `sig` to this process when its parent exits (Linux); elsewhere the
/// caller watches its parent pid instead.
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_PDEATHSIG takes the signal number as its only argument.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = sig;
    Ok(())
}

/// This process's parent pid.
pub fn parent_pid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() }
}

/// Milliseconds on the system-wide monotonic clock: comparable between processes.
pub fn monotonic_millis() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// CPU time (user + system) this process has used, in microseconds.
pub fn cpu_time_micros() -> u64 {
    // SAFETY: getrusage writes into a zeroed local struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// The CPU time the calling thread used, in microseconds (user and system).
pub fn thread_cpu_time_micros() -> u64 {
    // SAFETY: clock_gettime writes into a zeroed local struct.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// Stops the calling thread from preempting others when it wakes up: on Linux it becomes
/// `SCHED_BATCH` (same share of the CPU, but a wakeup waits for the next scheduling point
/// instead of interrupting the running thread). Elsewhere this does nothing.
///
/// Only the calling thread changes; threads it starts afterwards inherit the policy.
pub fn stop_preempting_on_wakeup() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid local.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// This process's resident memory in bytes: the current figure on Linux, the peak elsewhere.
pub fn resident_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    {
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            if let Some(pages) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
            {
                // SAFETY: sysconf takes a plain constant.
                let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
                return pages * page;
            }
        }
    }
    // SAFETY: getrusage writes into a zeroed local struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let max = usage.ru_maxrss.max(0) as u64;
    if cfg!(target_os = "macos") {
        max
    } else {
        max * 1024
    }
}

/// A pipe whose both ends are non-blocking and close-on-exec: `(read, write)`.
pub fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe writes two fds into the array we own; fcntl takes plain fds.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        for fd in fds {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok((fds[0], fds[1]))
}

/// Writes one byte to a non-blocking pipe, ignoring a full pipe.
pub fn write_byte(fd: RawFd, byte: u8) {
    // SAFETY: writes one byte from a local to a plain fd.
    unsafe {
        libc::write(fd, (&byte as *const u8).cast(), 1);
    }
}

/// Reads everything waiting in a non-blocking pipe; returns the bytes and whether the writer
/// has closed its end.
pub fn drain_pipe(fd: RawFd, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: reads into a local buffer from a plain fd.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            into.extend_from_slice(&buf[..n as usize]);
        } else {
            return n == 0;
        }
    }
}

/// Waits until one of `fds` is ready for its interest (or has an error or hang-up), or
/// `timeout_ms` passes (-1: forever); returns which are ready. An interrupting signal returns
/// early with none. For a loop of a few fds that needs no event backend (the master's).
pub fn wait_ready(fds: &[(RawFd, crate::Interest)], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, interest)| libc::pollfd {
            fd,
            events: match interest {
                crate::Interest::Readable => libc::POLLIN,
                crate::Interest::Writable => libc::POLLOUT,
            },
            revents: 0,
        })
        .collect();
    // SAFETY: poll reads and writes the array we own, of the length we pass.
    let n = unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout_ms,
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(err);
    }
    Ok(pollfds
        .iter()
        .map(|p| p.revents & (p.events | libc::POLLHUP | libc::POLLERR) != 0)
        .collect())
}

/// Memory shared by a process and the children it forks afterwards: `len` zeroed values of
/// `T`, which must be valid when zeroed and safe to share between processes (atomics).
pub struct Shared<T> {
    ptr: NonNull<T>,
    len: usize,
}

impl<T> Shared<T> {
    /// Maps `len` zeroed values. `T` must be made of atomics or plain integers: valid when
    /// all bits are zero and without pointers, since other processes see the same bytes.
    pub fn new_zeroed(len: usize) -> io::Result<Shared<T>> {
        let bytes = std::mem::size_of::<T>().max(1) * len.max(1);
        // SAFETY: an anonymous shared mapping of `bytes` bytes; the kernel zeroes it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<T>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Shared { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The shared values. Only shared references are handed out, so `T` must use interior
    /// mutability (atomics) to be written.
    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.len {
            return None;
        }
        // SAFETY: the mapping holds `len` zero-initialised values of T (valid when zeroed, as
        // `new_zeroed` requires) and lives as long as `self`.
        Some(unsafe { &*self.ptr.as_ptr().add(index) })
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let bytes = std::mem::size_of::<T>().max(1) * self.len.max(1);
        // SAFETY: unmaps exactly the mapping made in `new_zeroed`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), bytes);
        }
    }
}

// SAFETY: the mapping is plain memory; `T`'s own Sync/Send rules govern access to values.
unsafe impl<T: Sync> Sync for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Shared<T> {}
