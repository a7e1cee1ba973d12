//! Tests of what only the poll backend promises (the shared behaviour is in `tests/suite`).

use super::*;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

fn tok(slot: u32, op: u8) -> Token {
    Token::new(slot, 1, op)
}

fn new_poll() -> Poll {
    Poll::new(&Config::default()).expect("poll")
}

/// Turns the loop until `token` has a final completion, collecting into `seen`.
fn until_final(p: &mut Poll, seen: &mut Vec<Completion>, token: Token) {
    let start = Instant::now();
    while !seen.iter().any(|c| c.token == token && !c.more) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no final completion: {seen:?}"
        );
        p.wait(Some(Duration::from_millis(20))).expect("wait");
        p.drain(seen);
    }
}

#[test]
fn names_the_selector() {
    assert_eq!(
        NAME,
        if cfg!(target_os = "linux") {
            "epoll"
        } else {
            "kqueue"
        }
    );
}

#[test]
fn a_waited_fd_is_deregistered_before_the_completion_is_handed_out() {
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let fd = a.as_raw_fd();
    let mut p = new_poll();
    let t = tok(1, 4);
    p.poll_fd(fd, Interest::Writable, Some(Duration::from_secs(30)), t);
    let mut seen = Vec::new();
    until_final(&mut p, &mut seen, t);
    assert!(seen[0].result & i32::from(libc::POLLOUT) != 0, "{seen:?}");
    assert!(!p.fds.get(fd).is_some_and(|e| e.is_registered()));
}

#[test]
fn a_shared_registration_lasts_until_the_last_wait_ends() {
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let fd = a.as_raw_fd();
    let mut p = new_poll();
    let (t1, t2) = (tok(1, 4), tok(2, 4));
    p.poll_fd(fd, Interest::Readable, None, t1);
    p.poll_fd(fd, Interest::Readable, None, t2);
    p.submit().expect("submit");
    assert!(p.fds.get(fd).is_some_and(|e| e.is_registered()));
    p.cancel(t1);
    assert!(
        p.fds.get(fd).is_some_and(|e| e.is_registered()),
        "t2 still waits"
    );
    p.cancel(t2);
    assert!(!p.fds.get(fd).is_some_and(|e| e.is_registered()));
    let mut seen = Vec::new();
    p.drain(&mut seen);
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|c| c.result == -libc::ECANCELED));
}

#[test]
fn waits_that_end_early_do_not_pile_up_in_the_timer_heap() {
    let mut p = new_poll();
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let mut seen = Vec::new();
    for i in 0..500 {
        let t = tok(i, 4);
        p.poll_fd(
            a.as_raw_fd(),
            Interest::Writable,
            Some(Duration::from_secs(3600)),
            t,
        );
        until_final(&mut p, &mut seen, t);
    }
    assert_eq!(seen.len(), 500);
    assert!(
        p.timers.len() <= 130,
        "heap holds {} entries",
        p.timers.len()
    );
}

#[test]
fn sends_on_one_fd_go_out_in_issue_order() {
    let (mut a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    let mut filler = Vec::new();
    let chunk = [b'.'; 4096];
    loop {
        match a.write(&chunk) {
            Ok(n) => filler.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("fill: {e}"),
        }
    }
    let first = vec![b'1'; 10_000];
    let second = vec![b'2'; 10_000];
    let mut p = new_poll();
    let (t1, t2) = (tok(1, 3), tok(2, 3));
    // SAFETY: both buffers outlive the completions awaited below.
    unsafe {
        p.send(a.as_raw_fd(), t1, first.as_ptr(), first.len());
        p.send(a.as_raw_fd(), t2, second.as_ptr(), second.len());
    }
    p.submit().expect("submit");
    let mut seen = Vec::new();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    while seen.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "sends stuck: {seen:?}"
        );
        // The peer reads a little at a time, so the sends wait more than once.
        match b.read(&mut buf[..3000]) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        p.wait(Some(Duration::from_millis(5))).expect("wait");
        p.drain(&mut seen);
    }
    assert_eq!(
        seen[0].token, t1,
        "the first send completes first: {seen:?}"
    );
    let n1 = seen[0].result as usize;
    let n2 = seen[1].result as usize;
    let want = filler.len() + n1 + n2;
    while got.len() < want {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "got {} of {want}",
            got.len()
        );
        match b.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    let mut expected = filler;
    expected.extend_from_slice(&first[..n1]);
    expected.extend_from_slice(&second[..n2]);
    assert!(got == expected, "bytes out of order");
}

#[test]
fn a_flooding_connection_leaves_room_for_others_in_each_turn() {
    let mut p = new_poll();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_peer =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (busy, _) = listener.accept().expect("accept");
    let (quiet, mut quiet_peer) = UnixStream::pair().expect("socketpair");
    busy_peer.set_nonblocking(true).expect("nonblocking");
    // Queue several bursts' worth on the busy connection.
    let burst_bytes = RECV_BURST * Config::default().recv_buffer_size;
    let mut queued = 0;
    let chunk = [0u8; 16384];
    let mut w = &busy_peer;
    while queued < 4 * burst_bytes {
        match w.write(&chunk) {
            Ok(n) => queued += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(queued > 2 * burst_bytes, "only {queued} bytes queued");
    // Let loopback move the data to the receiving socket.
    std::thread::sleep(Duration::from_millis(50));
    quiet_peer.write_all(b"hi").expect("write");
    let (tb, tq) = (tok(1, 2), tok(2, 2));
    p.recv_multi(busy.as_raw_fd(), tb);
    p.recv_multi(quiet.as_raw_fd(), tq);
    let mut seen = Vec::new();
    p.wait(Some(Duration::from_secs(1))).expect("wait");
    p.drain(&mut seen);
    assert!(
        seen.iter().any(|c| c.token == tq),
        "the quiet connection got its turn"
    );
    // One burst when armed, at most one more from the retry list in the same wait.
    let busy_buffers = seen.iter().filter(|c| c.token == tb).count();
    assert!(
        busy_buffers <= 2 * RECV_BURST,
        "{busy_buffers} receives in one wait"
    );
    assert!(seen.iter().all(|c| c.more), "{seen:?}");
    for c in &seen {
        if let Some(id) = c.buffer {
            p.release_buffer(id);
        }
    }
}
