//! systemd's two protocols for services: socket activation (the listening sockets passed as
//! fds 3.. with `LISTEN_FDS`/`LISTEN_PID`) and readiness notification (`sd_notify` datagrams
//! to `NOTIFY_SOCKET`). Both are plain environment variables and sockets: no libsystemd.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// The sockets systemd passed to this process, from `LISTEN_FDS` when `LISTEN_PID` names
/// this process (none otherwise). Marks them close-on-exec.
pub fn listen_fds(listen_pid: Option<&str>, listen_fds: Option<&str>) -> Vec<RawFd> {
    let ours = listen_pid
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    let count = listen_fds
        .and_then(|n| n.trim().parse::<RawFd>().ok())
        .filter(|n| (1..=1024).contains(n));
    match (ours, count) {
        (true, Some(n)) => (FIRST_FD..FIRST_FD + n)
            .inspect(|&fd| {
                // SAFETY: fcntl on an fd number only changes that fd's flags; an fd that is
                // not open just fails.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Where readiness goes: `NOTIFY_SOCKET`'s path (`@name` for the abstract namespace), or
/// nothing when the service manager does not ask.
pub struct Notifier {
    socket: UnixDatagram,
    path: String,
}

impl Notifier {
    /// A notifier for `NOTIFY_SOCKET`'s value, `None` without one.
    pub fn new(notify_socket: Option<&str>) -> io::Result<Option<Notifier>> {
        match notify_socket {
            Some(path) if !path.is_empty() => Ok(Some(Notifier {
                socket: UnixDatagram::unbound()?,
                path: path.to_string(),
            })),
            _ => Ok(None),
        }
    }

    /// Sends `state` (`READY=1`, `RELOADING=1`, `STOPPING=1`, `STATUS=...`, one per line).
    pub fn notify(&self, state: &str) -> io::Result<()> {
        if let Some(name) = self.path.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                return self
                    .socket
                    .send_to_addr(state.as_bytes(), &addr)
                    .map(|_| ());
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = name;
                return Err(io::Error::from(io::ErrorKind::Unsupported));
            }
        }
        self.socket
            .send_to(state.as_bytes(), &self.path)
            .map(|_| ())
    }
}

/// `CLOCK_MONOTONIC` in microseconds, as `RELOADING=1` wants it in `MONOTONIC_USEC=`.
pub fn monotonic_usec() -> u64 {
    crate::process::monotonic_millis().saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_need_our_pid() {
        let pid = std::process::id().to_string();
        assert_eq!(listen_fds(Some(&pid), Some("2")), vec![3, 4]);
        assert!(listen_fds(Some("1"), Some("2")).is_empty());
        assert!(listen_fds(None, Some("2")).is_empty());
        assert!(listen_fds(Some(&pid), Some("zero")).is_empty());
        assert!(listen_fds(Some(&pid), Some("0")).is_empty());
    }

    #[test]
    fn notifies_a_path_and_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("evserver-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let receiver = UnixDatagram::bind(&dir).unwrap();
        let notifier = Notifier::new(Some(dir.to_str().unwrap())).unwrap().unwrap();
        notifier.notify("READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        let _ = std::fs::remove_file(&dir);
        assert!(Notifier::new(None).unwrap().is_none());
        assert!(Notifier::new(Some("")).unwrap().is_none());
    }
}
