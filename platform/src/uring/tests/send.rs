//! send and sendmsg: byte counts, gathered iovecs, short sends, a closed peer.

use super::*;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

#[test]
fn send_reports_the_bytes_sent() {
    let Some(mut u) = ring() else { return };
    let (a, mut b) = UnixStream::pair().expect("pair");
    let data = b"hello, world";
    let t = token(1);
    // SAFETY: `data` is a static byte string, valid until the completion.
    unsafe { u.send(a.as_raw_fd(), t, data.as_ptr(), data.len()) };
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].token, done[0].result, done[0].more),
        (t, data.len() as i32, false)
    );
    let mut got = [0; 12];
    b.read_exact(&mut got).expect("read");
    assert_eq!(&got, data);
}

#[test]
fn sendmsg_gathers_its_iovecs_in_order() {
    let Some(mut u) = ring() else { return };
    let (a, mut b) = UnixStream::pair().expect("pair");
    let parts: [&[u8]; 3] = [b"HTTP/1.1 200 OK\r\n", b"Content-Length: 2\r\n\r\n", b"ok"];
    let iov: Vec<libc::iovec> = parts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut _,
            iov_len: p.len(),
        })
        .collect();
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut _;
    msg.msg_iovlen = iov.len() as _;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let t = token(2);
    // SAFETY: `msg`, `iov` and `parts` outlive the completion collected below.
    unsafe { u.sendmsg(a.as_raw_fd(), t, &msg) };
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].token, done[0].result), (t, total as i32));
    let mut got = vec![0; total];
    b.read_exact(&mut got).expect("read");
    assert_eq!(got, parts.concat());
}

fn set_buffer(fd: RawFd, option: i32, size: i32) {
    // SAFETY: setsockopt with a pointer to a live int of the right size.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&size as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
}

#[test]
fn large_send_to_a_peer_that_does_not_read_is_short() {
    let Some(mut u) = ring() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    set_buffer(client.as_raw_fd(), libc::SO_SNDBUF, 4096);
    set_buffer(peer.as_raw_fd(), libc::SO_RCVBUF, 4096);

    let data = vec![b'x'; 8 << 20];
    let t = token(3);
    // SAFETY: `data` lives until the end of the test, after the completion.
    unsafe { u.send(client.as_raw_fd(), t, data.as_ptr(), data.len()) };
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1, "the send completes without the peer reading");
    let sent = done[0].result;
    assert!(
        sent > 0 && (sent as usize) < data.len(),
        "short send expected, got {sent}"
    );

    // The bytes it reports are what the peer can read: no more, no less.
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = vec![0; sent as usize];
    let mut peer = peer;
    peer.read_exact(&mut got).expect("read what was sent");
    assert!(got.iter().all(|&b| b == b'x'));
}

#[test]
fn send_to_a_closed_peer_fails_with_epipe() {
    let Some(mut u) = ring() else { return };
    let (a, b) = UnixStream::pair().expect("pair");
    drop(b);
    let t = token(4);
    // SAFETY: a static byte string.
    unsafe { u.send(a.as_raw_fd(), t, b"x".as_ptr(), 1) };
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done[0].result, -libc::EPIPE);
}
