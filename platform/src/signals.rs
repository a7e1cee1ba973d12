//! Signals as bytes in a pipe: a handler writes the signal number into a non-blocking pipe
//! that the event loop watches, so signals are handled in the loop, not in the handler.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

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

#[cfg(target_os = "linux")]
unsafe fn errno_location() -> *mut libc::c_int {
    libc::__errno_location()
}

#[cfg(not(target_os = "linux"))]
unsafe fn errno_location() -> *mut libc::c_int {
    libc::__error()
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
            // SAFETY: sigaction with a zeroed struct, a valid handler (or SIG_IGN/SIG_DFL)
            // and an empty mask; the previous action goes into a local.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = match disposition {
                    Disposition::Catch => on_signal as extern "C" fn(libc::c_int) as usize,
                    Disposition::Ignore => libc::SIG_IGN,
                    Disposition::Default => libc::SIG_DFL,
                };
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut prev) != 0 {
                    return Err(io::Error::last_os_error());
                }
                previous.push((sig, prev));
            }
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
            // SAFETY: restores an action sigaction gave us earlier.
            unsafe {
                libc::sigaction(sig, &prev, std::ptr::null_mut());
            }
        }
        let _ = WRITE_FD.compare_exchange(self.write_fd, -1, Ordering::SeqCst, Ordering::SeqCst);
        crate::sys::close(self.read_fd);
        crate::sys::close(self.write_fd);
    }
}
