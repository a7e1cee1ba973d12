//! connect: one completion, 0 once connected (data then flows), a negated errno when refused.

use super::{set_nonblocking, tok, Loop};
use evserver_platform::{Completion, Token};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

/// A new non-blocking stream socket of `family`.
fn socket(family: libc::c_int) -> OwnedFd {
    // SAFETY: plain socket(2) call; the fd is checked before it is owned.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket");
    set_nonblocking(fd);
    // SAFETY: the fd was just created and nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `addr` as a sockaddr_in (IPv4 only, which is all these tests use).
fn sockaddr_in(addr: SocketAddr) -> libc::sockaddr_in {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 expected")
    };
    // SAFETY: sockaddr_in is plain data, all zeros is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = v4.port().to_be();
    sa.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
    sa
}

/// Connects `s` to `addr` (any sockaddr type) and returns the completions of `token`.
fn connect<A>(lp: &mut Loop, s: &OwnedFd, token: Token, addr: &A) -> Vec<Completion> {
    let len = std::mem::size_of::<A>() as libc::socklen_t;
    // SAFETY: `addr` is a sockaddr of `len` bytes that outlives the completion awaited here.
    unsafe {
        lp.driver
            .connect(s.as_raw_fd(), token, (addr as *const A).cast(), len)
    };
    lp.until_final(token)
}

#[test]
fn connects_to_a_listener_and_data_flows() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let sa = sockaddr_in(l.local_addr().expect("addr"));
    let s = socket(libc::AF_INET);
    let mut lp = Loop::new();
    let t = tok(1, 4);
    let done = connect(&mut lp, &s, t, &sa);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].result, 0, "{done:?}");
    assert_eq!(done[0].buffer, None);
    let (mut peer, _) = l.accept().expect("accept");
    let data = b"GET / HTTP/1.1\r\n\r\n";
    // SAFETY: `data` is a static literal.
    unsafe {
        lp.driver
            .send(s.as_raw_fd(), tok(1, 3), data.as_ptr(), data.len())
    };
    let sent = lp.until_final(tok(1, 3));
    assert_eq!(sent[0].result, data.len() as i32);
    let mut got = vec![0u8; data.len()];
    peer.read_exact(&mut got).expect("read");
    assert_eq!(&got, data);
}

#[test]
fn a_refused_connect_reports_econnrefused() {
    // A port that was just free: bind, note it, close.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let sa = sockaddr_in(port);
    let s = socket(libc::AF_INET);
    let mut lp = Loop::new();
    let t = tok(2, 4);
    let done = connect(&mut lp, &s, t, &sa);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].result, -libc::ECONNREFUSED, "{done:?}");
}

#[test]
fn connects_to_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("evp-connect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).expect("bind");
    // SAFETY: sockaddr_un is plain data, all zeros is a valid value.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_encoded_bytes();
    for (dst, &b) in sa.sun_path.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    let s = socket(libc::AF_UNIX);
    let mut lp = Loop::new();
    let t = tok(3, 4);
    let done = connect(&mut lp, &s, t, &sa);
    assert_eq!(done[0].result, 0, "{done:?}");
    let (mut peer, _) = l.accept().expect("accept");
    peer.write_all(b"hi").expect("write");
    drop((peer, l));
    let _ = std::fs::remove_dir_all(&dir);
}
