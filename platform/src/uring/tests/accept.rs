//! Multishot accept.

use super::*;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

fn fd_flags(fd: RawFd) -> (i32, i32) {
    // SAFETY: fcntl queries on an fd this test owns.
    unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    }
}

#[test]
fn one_multishot_accept_takes_several_connections() {
    let Some(mut u) = ring() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let t = token(7);
    u.accept_multi(listener.as_raw_fd(), t);
    u.submit().expect("submit");

    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let done = collect(&mut u, 3, Duration::from_secs(5));
    assert_eq!(done.len(), 3, "{done:?}");
    let mut peers = Vec::new();
    for c in &done {
        assert_eq!(c.token, t);
        assert!(c.result >= 0, "accept failed: {c:?}");
        assert!(c.more, "multishot accept stays armed");
        assert_eq!(c.buffer, None);
        let fd = owned(c.result);
        let (fl, fd_fl) = fd_flags(fd.as_raw_fd());
        assert_ne!(fl & libc::O_NONBLOCK, 0, "accepted socket is non-blocking");
        assert_ne!(
            fd_fl & libc::FD_CLOEXEC,
            0,
            "accepted socket is close-on-exec"
        );
        peers.push(std::net::TcpStream::from(fd).peer_addr().expect("peer"));
    }
    let mut expected: Vec<_> = clients
        .iter()
        .map(|c| c.local_addr().expect("addr"))
        .collect();
    expected.sort();
    peers.sort();
    assert_eq!(peers, expected, "each client accepted exactly once");

    u.cancel(t);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].token, done[0].result, done[0].more),
        (t, -libc::ECANCELED, false)
    );
    assert!(settle(&mut u, Duration::from_millis(50)).is_empty());
}

#[test]
fn accept_on_a_socket_that_is_not_listening_ends_at_once() {
    let Some(mut u) = ring() else { return };
    let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let t = token(1);
    u.accept_multi(a.as_raw_fd(), t);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert!(done[0].result < 0 && !done[0].more, "{done:?}");
}
