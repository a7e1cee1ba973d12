//! The loop itself: waiting when idle, cancelling what was not submitted yet, closing.

use super::{only_cancelled, peer_sees_eof, tok, Loop};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[test]
fn wait_returns_after_its_timeout_when_idle() {
    let mut lp = Loop::new();
    let start = Instant::now();
    lp.turn(Duration::from_millis(50));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(45),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "overslept: {took:?}");
    assert!(lp.seen.is_empty());
}

#[test]
fn wait_with_a_zero_timeout_returns_at_once() {
    let mut lp = Loop::new();
    let start = Instant::now();
    lp.turn(Duration::ZERO);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn cancel_before_submit_still_posts_one_completion() {
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::new();
    let t = tok(1, 2);
    lp.driver.recv_multi(std::os::fd::AsRawFd::as_raw_fd(&a), t);
    lp.driver.cancel(t);
    let done = lp.until_final(t);
    assert_eq!(done, only_cancelled(t));
}

#[test]
fn cancel_of_an_unknown_token_is_harmless() {
    let mut lp = Loop::new();
    lp.driver.cancel(tok(99, 9));
    lp.turn(Duration::from_millis(10));
    assert!(lp.seen.is_empty());
}

#[test]
fn close_after_cancel_closes_the_fd_and_posts_nothing_more() {
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    b.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let fd = a.into_raw_fd();
    let mut lp = Loop::new();
    let t = tok(2, 2);
    lp.driver.recv_multi(fd, t);
    lp.turn(Duration::ZERO);
    lp.driver.cancel(t);
    lp.driver.close(fd);
    // On io_uring the cancelled receive holds the socket until its completion is reaped.
    lp.settle(Duration::from_millis(30));
    assert!(peer_sees_eof(&mut b), "the fd was closed");
    assert_eq!(lp.of(t).len(), 1, "{:?}", lp.seen);
    assert_eq!(lp.of(t)[0].result, -libc::ECANCELED);
}

#[test]
fn wait_batch_returns_with_a_batch_or_at_its_timeout() {
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
    let mut lp = Loop::new();
    let data = b"x";
    for op in 1..=3 {
        // SAFETY: `data` is a static literal.
        unsafe { lp.driver.send(fd, tok(9, op), data.as_ptr(), data.len()) };
    }
    // Three sends complete at once: a batch of three is there to take.
    lp.driver
        .wait_batch(3, Some(Duration::from_secs(5)))
        .expect("wait_batch");
    lp.driver.drain(&mut lp.seen);
    lp.until("three sends", |seen| seen.len() >= 3);
    assert!(lp.seen.iter().all(|c| c.result == 1), "{:?}", lp.seen);
    // A batch larger than what can come: the timeout ends the wait, with what there is.
    // SAFETY: as above.
    unsafe { lp.driver.send(fd, tok(9, 4), data.as_ptr(), data.len()) };
    let start = Instant::now();
    lp.driver
        .wait_batch(100, Some(Duration::from_millis(100)))
        .expect("wait_batch");
    assert!(start.elapsed() < Duration::from_secs(2));
    lp.driver.drain(&mut lp.seen);
    lp.until("the fourth send", |seen| seen.len() >= 4);
}
