//! connect: one completion, 0 once connected (data then flows), a negated errno when refused.

use super::{tok, Loop};
use evserver_platform::{Completion, ConnectAddr, Token};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

/// A new socket for `addr`, owned.
fn socket(addr: &ConnectAddr) -> OwnedFd {
    let fd = addr.new_socket().expect("socket");
    // SAFETY: the fd was just created and nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Connects `s` to `addr` and returns the completions of `token`.
fn connect(lp: &mut Loop, s: &OwnedFd, token: Token, addr: &ConnectAddr) -> Vec<Completion> {
    // SAFETY: `addr` outlives the completion awaited here.
    unsafe { lp.driver.connect(s.as_raw_fd(), token, addr) };
    lp.until_final(token)
}

#[test]
fn connects_to_a_listener_and_data_flows() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = ConnectAddr::tcp(l.local_addr().expect("addr"));
    let s = socket(&addr);
    let mut lp = Loop::new();
    let t = tok(1, 4);
    let done = connect(&mut lp, &s, t, &addr);
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
    let addr = ConnectAddr::tcp(port);
    let s = socket(&addr);
    let mut lp = Loop::new();
    let t = tok(2, 4);
    let done = connect(&mut lp, &s, t, &addr);
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
    let addr = ConnectAddr::unix(&path).expect("a short path");
    let s = socket(&addr);
    let mut lp = Loop::new();
    let t = tok(3, 4);
    let done = connect(&mut lp, &s, t, &addr);
    assert_eq!(done[0].result, 0, "{done:?}");
    let (mut peer, _) = l.accept().expect("accept");
    peer.write_all(b"hi").expect("write");
    drop((peer, l));
    let _ = std::fs::remove_dir_all(&dir);
}
