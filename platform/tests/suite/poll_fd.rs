//! poll_fd, the fdevent wait: one completion per wait, carrying a poll(2) mask, -ETIME or
//! -ECANCELED; shared fds, regular files, hang-ups, and fds the application closes.

use super::{only_cancelled, pipe, tok, write_all_now, Loop};
use evserver_platform::{Completion, Interest};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const IN: i32 = libc::POLLIN as i32;
const OUT: i32 = libc::POLLOUT as i32;
const HUP: i32 = libc::POLLHUP as i32;

#[test]
fn a_pipe_becomes_readable_when_written() {
    let (r, w) = pipe();
    let mut lp = Loop::new();
    let t = tok(1, 4);
    lp.driver
        .poll_fd(r.as_raw_fd(), Interest::Readable, None, t);
    lp.settle(Duration::from_millis(30));
    assert!(lp.seen.is_empty(), "nothing written yet: {:?}", lp.seen);
    write_all_now(w.as_raw_fd(), b"x");
    let done = lp.until_final(t);
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].result & IN != 0, "{done:?}");
    assert!(!done[0].more);
}

#[test]
fn a_socket_with_room_is_writable_at_once() {
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::new();
    let t = tok(2, 4);
    lp.driver.poll_fd(
        a.as_raw_fd(),
        Interest::Writable,
        Some(Duration::from_secs(10)),
        t,
    );
    let done = lp.until_final(t);
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].result & OUT != 0, "{done:?}");
}

#[test]
fn two_waits_on_one_fd_both_wake() {
    let (r, w) = pipe();
    let mut lp = Loop::new();
    let (t1, t2) = (tok(3, 4), tok(4, 4));
    lp.driver
        .poll_fd(r.as_raw_fd(), Interest::Readable, None, t1);
    lp.driver.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_secs(10)),
        t2,
    );
    lp.settle(Duration::from_millis(20));
    assert!(lp.seen.is_empty(), "{:?}", lp.seen);
    write_all_now(w.as_raw_fd(), b"x");
    lp.until("both waits", |seen| seen.len() >= 2);
    lp.settle(Duration::from_millis(20));
    for t in [t1, t2] {
        let done = lp.of(t);
        assert_eq!(done.len(), 1, "exactly one completion each: {:?}", lp.seen);
        assert!(done[0].result & IN != 0, "{done:?}");
    }
}

#[test]
fn a_wait_added_while_the_fd_is_already_ready_and_shared_wakes() {
    let (mut a, mut b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    // A full socket is not writable: a wait for that keeps the fd registered throughout.
    let chunk = [0u8; 4096];
    while a.write(&chunk).is_ok() {}
    let mut lp = Loop::new();
    let keeper = tok(5, 4);
    lp.driver
        .poll_fd(a.as_raw_fd(), Interest::Writable, None, keeper);
    let first = tok(6, 4);
    lp.driver
        .poll_fd(a.as_raw_fd(), Interest::Readable, None, first);
    lp.turn(Duration::ZERO);
    b.write_all(b"x").expect("write");
    let done = lp.until_final(first);
    assert!(done[0].result & IN != 0, "{done:?}");
    // The data is still there; the edge that announced it is gone.
    let second = tok(7, 4);
    lp.driver
        .poll_fd(a.as_raw_fd(), Interest::Readable, None, second);
    let done = lp.until_final(second);
    assert!(done[0].result & IN != 0, "{done:?}");
    assert!(lp.of(keeper).is_empty(), "{:?}", lp.seen);
    lp.driver.cancel(keeper);
    assert_eq!(lp.until_final(keeper)[0].result, -libc::ECANCELED);
}

#[test]
fn a_regular_file_is_ready_at_once() {
    let path = std::env::temp_dir().join(format!("evserver-poll-test-{}", std::process::id()));
    let file = std::fs::File::create(&path).expect("create");
    let _ = std::fs::remove_file(&path);
    let mut lp = Loop::new();
    let (tr, tw) = (tok(8, 4), tok(9, 4));
    lp.driver
        .poll_fd(file.as_raw_fd(), Interest::Readable, None, tr);
    lp.driver
        .poll_fd(file.as_raw_fd(), Interest::Writable, None, tw);
    lp.until("both waits", |seen| seen.len() >= 2);
    assert!(lp.of(tr)[0].result & IN != 0, "{:?}", lp.seen);
    assert!(lp.of(tw)[0].result & OUT != 0, "{:?}", lp.seen);
}

#[test]
fn a_hang_up_counts_as_ready() {
    let (r, w) = pipe();
    let mut lp = Loop::new();
    let t = tok(10, 4);
    lp.driver
        .poll_fd(r.as_raw_fd(), Interest::Readable, None, t);
    lp.turn(Duration::ZERO);
    drop(w);
    let done = lp.until_final(t);
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].result & (IN | HUP) != 0, "{done:?}");
}

#[test]
fn a_timeout_fires_once_with_etime() {
    let (r, _w) = pipe();
    let mut lp = Loop::new();
    let t = tok(11, 4);
    let start = Instant::now();
    lp.driver.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_millis(40)),
        t,
    );
    let done = lp.until_final(t);
    assert!(
        start.elapsed() >= Duration::from_millis(40),
        "fired early: {:?}",
        start.elapsed()
    );
    assert_eq!(
        done,
        vec![Completion {
            token: t,
            result: -libc::ETIME,
            more: false,
            buffer: None
        }]
    );
    lp.settle(Duration::from_millis(60));
    assert_eq!(lp.of(t).len(), 1, "{:?}", lp.seen);
}

#[test]
fn a_wait_ready_before_its_deadline_completes_once() {
    let (r, w) = pipe();
    let mut lp = Loop::new();
    let t = tok(12, 4);
    lp.driver.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_millis(40)),
        t,
    );
    write_all_now(w.as_raw_fd(), b"x");
    let done = lp.until_final(t);
    assert!(done[0].result & IN != 0, "{done:?}");
    lp.settle(Duration::from_millis(80));
    assert_eq!(lp.of(t).len(), 1, "no -ETIME after the wake: {:?}", lp.seen);
}

#[test]
fn a_zero_timeout_on_an_idle_fd_gives_etime() {
    let (r, _w) = pipe();
    let mut lp = Loop::new();
    let t = tok(13, 4);
    lp.driver
        .poll_fd(r.as_raw_fd(), Interest::Readable, Some(Duration::ZERO), t);
    assert_eq!(lp.until_final(t)[0].result, -libc::ETIME);
}

#[test]
fn cancel_gives_one_ecanceled() {
    let (r, w) = pipe();
    let mut lp = Loop::new();
    let t = tok(14, 4);
    lp.driver.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_millis(30)),
        t,
    );
    lp.turn(Duration::ZERO);
    lp.driver.cancel(t);
    let done = lp.until_final(t);
    assert_eq!(done, only_cancelled(t));
    // Neither the data nor the deadline brings a second completion; a late cancel is harmless.
    write_all_now(w.as_raw_fd(), b"x");
    lp.driver.cancel(t);
    lp.settle(Duration::from_millis(60));
    assert_eq!(lp.of(t).len(), 1, "{:?}", lp.seen);
}

#[test]
fn the_application_may_close_its_fd_after_the_completion_and_reuse_the_number() {
    let (r, w) = pipe();
    let number = r.as_raw_fd();
    let mut lp = Loop::new();
    let t = tok(15, 4);
    lp.driver.poll_fd(number, Interest::Readable, None, t);
    write_all_now(w.as_raw_fd(), b"x");
    assert!(lp.until_final(t)[0].result & IN != 0);
    // The application closes its pipe at once and gets a new one under the same number
    // (dup2 closes the old read end and reuses its number in one step, so no other test's
    // fd can slip in between).
    let (r2, w2) = pipe();
    // SAFETY: both fds are open and owned by this test; `r` keeps owning `number`.
    let moved = unsafe { libc::dup2(r2.as_raw_fd(), number) };
    assert_eq!(moved, number);
    drop((r2, w));
    let t2 = tok(15, 5);
    lp.driver.poll_fd(number, Interest::Readable, None, t2);
    lp.settle(Duration::from_millis(30));
    assert!(lp.of(t2).is_empty(), "the new pipe is empty: {:?}", lp.seen);
    write_all_now(w2.as_raw_fd(), b"y");
    let done = lp.until_final(t2);
    assert_eq!(done.len(), 1);
    assert!(done[0].result & IN != 0, "{done:?}");
    drop(r);
}

#[test]
fn a_bad_fd_gives_ebadf() {
    let mut lp = Loop::new();
    let t = tok(16, 4);
    lp.driver.poll_fd(-1, Interest::Readable, None, t);
    assert_eq!(lp.until_final(t)[0].result, -libc::EBADF);
}

#[test]
fn an_fd_closed_behind_the_loop_s_back_leaves_its_number_usable() {
    let (r, _w) = pipe();
    let number = r.as_raw_fd();
    let mut lp = Loop::new();
    let stale = tok(17, 4);
    lp.driver.poll_fd(number, Interest::Readable, None, stale);
    lp.turn(Duration::ZERO);
    // The application closes its fd without waiting for the wait to end, and the number comes
    // back as a socket (dup2 closes and reuses in one step).
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    // SAFETY: both fds are open and owned by this test; `r` keeps owning `number`.
    assert_eq!(unsafe { libc::dup2(a.as_raw_fd(), number) }, number);
    drop(a);
    let t = tok(18, 2);
    lp.driver.recv_multi(number, t);
    lp.turn(Duration::ZERO);
    b.write_all(b"hello").expect("write");
    lp.until("data on the new socket", |seen| {
        seen.iter().any(|c| c.token == t && c.buffer.is_some())
    });
    let c = lp.of(t)[0];
    let id = c.buffer.expect("buffer");
    assert_eq!(lp.driver.buffer(id, c.result as usize), b"hello");
    lp.driver.release_buffer(id);
    // The orphaned wait still ends exactly once, one way or another.
    lp.driver.cancel(stale);
    lp.until_final(stale);
    lp.driver.cancel(t);
    lp.until_final(t);
    lp.settle(Duration::from_millis(30));
    assert_eq!(lp.of(stale).len(), 1, "{:?}", lp.seen);
    drop(r);
}
