//! send and sendmsg: at once when there is room, after waiting for writability when there is
//! not, errors as negated errnos, and no SIGPIPE.

use super::{tok, Loop, PATIENCE};
use evserver_platform::{Completion, Gather};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Reads whatever `stream` (non-blocking) holds into `into`; returns how much.
fn read_available(stream: &mut UnixStream, into: &mut Vec<u8>) -> usize {
    let mut buf = [0u8; 65536];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                total += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return total,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn set_sndbuf(fd: RawFd, size: libc::c_int) {
    // SAFETY: `size` outlives the call and its size is passed with it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(ret, 0, "SO_SNDBUF");
}

#[test]
fn send_completes_at_once_when_there_is_room() {
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::new();
    let t = tok(1, 3);
    let data = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    // SAFETY: `data` outlives the completion awaited below.
    unsafe { lp.driver.send(a.as_raw_fd(), t, data.as_ptr(), data.len()) };
    let done = lp.until_final(t);
    assert_eq!(
        done,
        vec![Completion {
            token: t,
            result: data.len() as i32,
            more: false,
            buffer: None
        }]
    );
    let mut got = vec![0u8; data.len()];
    b.read_exact(&mut got).expect("read");
    assert_eq!(got, data);
}

#[test]
fn sendmsg_sends_gathered_buffers_in_order() {
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::new();
    let t = tok(2, 3);
    let parts: [&[u8]; 3] = [b"head ", b"middle ", b"tail"];
    let mut gather = Gather::new();
    for part in parts {
        gather.push(part.as_ptr(), part.len());
    }
    // SAFETY: `gather` and `parts` outlive the completion awaited below.
    unsafe { lp.driver.sendmsg(a.as_raw_fd(), t, &mut gather) };
    let done = lp.until_final(t);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].result, 16);
    let mut got = vec![0u8; 16];
    b.read_exact(&mut got).expect("read");
    assert_eq!(got, b"head middle tail");
}

#[test]
fn send_waits_for_writability_while_a_recv_runs_on_the_same_socket() {
    let (mut a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    set_sndbuf(a.as_raw_fd(), 4096);
    // Fill the socket until it would block.
    let chunk = [b'.'; 1024];
    let mut filler = 0;
    loop {
        match a.write(&chunk) {
            Ok(n) => filler += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("fill: {e}"),
        }
    }
    let mut lp = Loop::new();
    let r = tok(3, 2);
    let s = tok(3, 3);
    lp.driver.recv_multi(a.as_raw_fd(), r);
    let payload: Vec<u8> = (0..256 * 1024).map(|i| (i % 253) as u8).collect();
    // SAFETY: `payload` outlives the completion awaited below.
    unsafe {
        lp.driver
            .send(a.as_raw_fd(), s, payload.as_ptr(), payload.len())
    };
    lp.settle(Duration::from_millis(50));
    assert!(lp.of(s).is_empty(), "the socket is full: {:?}", lp.seen);

    // The other direction still works while the send waits.
    b.write_all(b"ping").expect("write");
    lp.until("the recv beside the waiting send", |seen| {
        seen.iter().any(|c| c.token == r)
    });
    let c = lp.of(r)[0];
    let id = c.buffer.expect("buffer");
    assert_eq!(lp.driver.buffer(id, c.result as usize), b"ping");
    lp.driver.release_buffer(id);
    assert!(lp.of(s).is_empty(), "still full");

    // The peer reads: the send completes, fully or short, with what it sent.
    let mut got = Vec::new();
    let start = Instant::now();
    let sent = loop {
        assert!(start.elapsed() < PATIENCE, "send never completed");
        read_available(&mut b, &mut got);
        lp.turn(Duration::from_millis(5));
        if let Some(c) = lp.of(s).first() {
            break c.result;
        }
    };
    assert!(sent > 0 && sent as usize <= payload.len(), "sent {sent}");
    let want = filler + sent as usize;
    while got.len() < want {
        assert!(
            start.elapsed() < PATIENCE,
            "got {} of {want} bytes",
            got.len()
        );
        if read_available(&mut b, &mut got) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(got.len(), want, "nothing beyond what the send reported");
    assert!(
        got[filler..] == payload[..sent as usize],
        "the sent bytes arrive in order"
    );
    assert_eq!(lp.of(s).len(), 1);
    lp.driver.cancel(r);
    let end = lp.until_final(r);
    assert_eq!(end.last().map(|c| c.result), Some(-libc::ECANCELED));
}

#[test]
fn send_to_a_closed_peer_reports_epipe_without_a_signal() {
    let (a, b) = UnixStream::pair().expect("socketpair");
    drop(b);
    let mut lp = Loop::new();
    let t = tok(4, 3);
    let data = b"lost";
    // The Rust runtime ignores SIGPIPE; restore the default (fatal) action around the send
    // so that a missing MSG_NOSIGNAL would kill the test.
    #[cfg(target_os = "linux")]
    // SAFETY: swapping a signal disposition to a default action; restored right after.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: `data` is a static literal.
    unsafe { lp.driver.send(a.as_raw_fd(), t, data.as_ptr(), data.len()) };
    lp.driver.submit().expect("submit");
    #[cfg(target_os = "linux")]
    // SAFETY: restoring the disposition saved above.
    unsafe {
        libc::signal(libc::SIGPIPE, old);
    }
    let done = lp.until_final(t);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].result, -libc::EPIPE);
}
