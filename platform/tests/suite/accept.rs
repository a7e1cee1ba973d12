//! Multishot accept: one completion per connection until cancelled.

use super::{peer_sees_eof, tok, Loop};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

fn listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    l
}

#[test]
fn accepts_several_connections_as_nonblocking_cloexec_sockets() {
    let l = listener();
    let addr = l.local_addr().expect("addr");
    let mut lp = Loop::new();
    let t = tok(1, 1);
    lp.driver.accept_multi(l.as_raw_fd(), t);
    lp.driver.submit().expect("submit");
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    lp.until("three accepts", |seen| seen.len() >= 3);
    let accepted = lp.of(t);
    assert_eq!(accepted.len(), 3, "{accepted:?}");
    for c in &accepted {
        assert!(c.more, "accept stays armed: {c:?}");
        assert!(c.result >= 0, "accepted fd: {c:?}");
        assert_eq!(c.buffer, None);
        // SAFETY: plain fcntl queries on the fd just accepted.
        let (fl, fdfl) = unsafe {
            (
                libc::fcntl(c.result, libc::F_GETFL),
                libc::fcntl(c.result, libc::F_GETFD),
            )
        };
        assert_ne!(fl & libc::O_NONBLOCK, 0, "non-blocking");
        assert_ne!(fdfl & libc::FD_CLOEXEC, 0, "close-on-exec");
    }
    // One more connection after the first batch arrives as well.
    clients.push(TcpStream::connect(addr).expect("connect"));
    lp.until("a fourth accept", |seen| seen.len() >= 4);
    for c in lp.of(t) {
        lp.driver.close(c.result);
    }
    for client in &mut clients {
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        assert!(peer_sees_eof(client), "the accepted end was closed");
    }
}

#[test]
fn cancel_ends_accepting_with_one_ecanceled() {
    let l = listener();
    let addr = l.local_addr().expect("addr");
    let mut lp = Loop::new();
    let t = tok(2, 1);
    lp.driver.accept_multi(l.as_raw_fd(), t);
    lp.turn(Duration::ZERO);
    assert!(lp.seen.is_empty(), "nothing to accept yet: {:?}", lp.seen);
    lp.driver.cancel(t);
    let done = lp.until_final(t);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].result, -libc::ECANCELED);
    assert!(!done[0].more);
    // Connections after the cancel are not accepted, and a second cancel is harmless.
    let _client = TcpStream::connect(addr).expect("connect");
    lp.driver.cancel(t);
    lp.settle(Duration::from_millis(50));
    assert_eq!(lp.of(t).len(), 1, "{:?}", lp.seen);
}
