//! Signals handled outside their handler: as bytes in a pipe that an event loop watches
//! ([`SignalPipe`]), or as a flag that a run polls ([`StopFlag`]).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The write end the handler writes to (-1: none).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; errno is saved and restored around it.
        unsafe {
            let saved = *errno_location();
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *errno_location() = saved;
        }
    }
}

/// The calling thread's `errno`.
///
/// # Safety
/// The pointer is valid only on the calling thread, for as long as it runs.
#[cfg(target_os = "linux")]
unsafe fn errno_location() -> *mut libc::c_int {
    // SAFETY: __errno_location has no preconditions; it returns this thread's errno slot.
    unsafe { libc::__errno_location() }
}

/// The calling thread's `errno`.
///
/// # Safety
/// The pointer is valid only on the calling thread, for as long as it runs.
#[cfg(not(target_os = "linux"))]
unsafe fn errno_location() -> *mut libc::c_int {
    // SAFETY: __error has no preconditions; it returns this thread's errno slot.
    unsafe { libc::__error() }
}

/// Sets the action of `sig` to `handler` (a function, `SIG_IGN` or `SIG_DFL`) with an empty
/// mask and `flags`; returns the previous action, for [`restore`].
fn set_action(sig: i32, handler: usize, flags: libc::c_int) -> io::Result<libc::sigaction> {
    // SAFETY: both structs are plain data, zeroed and then filled; `handler` is a valid
    // `extern "C" fn(c_int)` or one of the special values; sigaction writes only `prev`.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        let mut prev: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, &action, &mut prev) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(prev)
    }
}

/// Puts back an action [`set_action`] returned.
fn restore(sig: i32, prev: &libc::sigaction) {
    // SAFETY: `prev` is an action sigaction gave us; nothing is written back.
    unsafe {
        libc::sigaction(sig, prev, std::ptr::null_mut());
    }
}

/// What a signal does while a [`SignalPipe`] is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Written to the pipe.
    Catch,
    /// Ignored.
    Ignore,
    /// The system default.
    Default,
}

/// Installed signal handlers writing to a pipe; dropping it restores the previous handlers.
pub struct SignalPipe {
    read_fd: RawFd,
    write_fd: RawFd,
    previous: Vec<(i32, libc::sigaction)>,
}

impl SignalPipe {
    /// Installs `dispositions` (replacing any earlier pipe of this process).
    pub fn install(dispositions: &[(i32, Disposition)]) -> io::Result<SignalPipe> {
        let (read_fd, write_fd) = crate::process::pipe()?;
        let old = WRITE_FD.swap(write_fd, Ordering::SeqCst);
        let mut previous = Vec::new();
        for &(sig, disposition) in dispositions {
            let handler = match disposition {
                Disposition::Catch => on_signal as extern "C" fn(libc::c_int) as usize,
                Disposition::Ignore => libc::SIG_IGN,
                Disposition::Default => libc::SIG_DFL,
            };
            previous.push((sig, set_action(sig, handler, libc::SA_RESTART)?));
        }
        if old >= 0 && old != write_fd {
            // An earlier pipe inherited over fork: its read end belongs to the parent.
            crate::sys::close(old);
        }
        Ok(SignalPipe {
            read_fd,
            write_fd,
            previous,
        })
    }

    /// The fd to watch for readability.
    pub fn fd(&self) -> RawFd {
        self.read_fd
    }

    /// The signals received since the last call, in order.
    pub fn take(&self) -> Vec<i32> {
        let mut bytes = Vec::new();
        crate::process::drain_pipe(self.read_fd, &mut bytes);
        bytes.into_iter().map(i32::from).collect()
    }

    /// Forgets the pipe without restoring handlers or closing anything (in a forked child
    /// that installs its own).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for (sig, prev) in self.previous.drain(..).rev() {
            restore(sig, &prev);
        }
        let _ = WRITE_FD.compare_exchange(self.write_fd, -1, Ordering::SeqCst, Ordering::SeqCst);
        crate::sys::close(self.read_fd);
        crate::sys::close(self.write_fd);
    }
}

/// Raised by [`StopFlag`]'s handler.
static STOP_RAISED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Storing to an atomic is async-signal-safe.
    STOP_RAISED.store(true, Ordering::Relaxed);
}

/// A signal (SIGINT, say) that raises a flag instead of ending the process, for a run that
/// stops early and still reports; dropping it puts the previous action back.
pub struct StopFlag {
    sig: i32,
    previous: libc::sigaction,
}

impl StopFlag {
    /// Lowers the flag and makes `sig` raise it.
    pub fn install(sig: i32) -> io::Result<StopFlag> {
        STOP_RAISED.store(false, Ordering::Relaxed);
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as usize;
        let previous = set_action(sig, handler, 0)?;
        Ok(StopFlag { sig, previous })
    }

    /// The flag, for threads to poll (the last installed `StopFlag`'s).
    pub fn flag() -> &'static AtomicBool {
        &STOP_RAISED
    }

    /// Whether the signal came since `install`.
    pub fn raised(&self) -> bool {
        STOP_RAISED.load(Ordering::Relaxed)
    }
}

impl Drop for StopFlag {
    fn drop(&mut self) {
        restore(self.sig, &self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_flag_is_raised_by_its_signal_and_uninstalled_on_drop() {
        let flag = StopFlag::install(libc::SIGUSR2).unwrap();
        assert!(!flag.raised());
        // SAFETY: raise(3) sends a signal to this thread; the handler only stores a flag.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert!(flag.raised());
        assert!(StopFlag::flag().load(Ordering::Relaxed));
        drop(flag);
        // The action the drop put back is the default one.
        let after_drop = set_action(libc::SIGUSR2, libc::SIG_DFL, 0).unwrap();
        assert_eq!(after_drop.sa_sigaction, libc::SIG_DFL);
    }
}
