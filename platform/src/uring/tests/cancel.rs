//! cancel: pending polls (plain and timed), multishot recv, finished operations.

use super::*;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

#[test]
fn cancelled_poll_completes_once_with_ecanceled() {
    let Some(mut u) = ring() else { return };
    let (r, _w) = pipe();
    let t = token(1);
    u.poll_fd(r.as_raw_fd(), Interest::Readable, None, t);
    u.submit().expect("submit");
    u.cancel(t);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].token, done[0].result), (t, -libc::ECANCELED));
    assert!(
        settle(&mut u, Duration::from_millis(50)).is_empty(),
        "the cancel's own CQE is swallowed"
    );
}

#[test]
fn cancelled_timed_poll_completes_once_with_ecanceled() {
    let Some(mut u) = ring() else { return };
    let (r, _w) = pipe();
    let t = token(2);
    u.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_secs(10)),
        t,
    );
    assert!(settle(&mut u, Duration::from_millis(20)).is_empty());
    u.cancel(t);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].token, done[0].result, done[0].more),
        (t, -libc::ECANCELED, false)
    );
    assert!(settle(&mut u, Duration::from_millis(50)).is_empty());
    assert_eq!(u.timed_polls_in_flight(), 0);
}

#[test]
fn cancel_in_the_same_batch_as_the_poll_still_gives_one_completion() {
    let Some(mut u) = ring() else { return };
    let (r, _w) = pipe();
    let (a, b) = (token(3), token(4));
    u.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_secs(10)),
        a,
    );
    u.poll_fd(r.as_raw_fd(), Interest::Readable, None, b);
    u.cancel(a);
    u.cancel(b);
    let mut done = collect(&mut u, 2, Duration::from_secs(5));
    done.extend(settle(&mut u, Duration::from_millis(50)));
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|c| c.result == -libc::ECANCELED));
}

#[test]
fn cancelled_multishot_recv_ends_with_ecanceled() {
    let Some(mut u) = ring() else { return };
    let (a, mut b) = UnixStream::pair().expect("pair");
    let t = token(5);
    u.recv_multi(a.as_raw_fd(), t);
    u.submit().expect("submit");
    b.write_all(b"ping").expect("write");
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!((done[0].result, done[0].more), (4, true));
    u.release_buffer(done[0].buffer.expect("buffer"));

    u.cancel(t);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].token, done[0].result, done[0].more, done[0].buffer),
        (t, -libc::ECANCELED, false, None)
    );
    b.write_all(b"late").expect("write");
    assert!(
        settle(&mut u, Duration::from_millis(50)).is_empty(),
        "no data after the final completion"
    );
    assert_eq!(u.buffers_held(), 0);
}

#[test]
fn cancel_of_a_finished_operation_is_harmless() {
    let Some(mut u) = ring() else { return };
    let (_r, w) = pipe();
    let t = token(6);
    u.poll_fd(
        w.as_raw_fd(),
        Interest::Writable,
        Some(Duration::from_secs(5)),
        t,
    );
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert!(done[0].result > 0);
    u.cancel(t);
    u.cancel(token(99));
    assert!(settle(&mut u, Duration::from_millis(50)).is_empty());
}
