//! The loop itself: waiting when idle, cancelling what was not submitted yet, closing.

use super::{is_open, tok, Loop};
use evserver_platform::Completion;
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
    assert_eq!(
        done,
        vec![Completion {
            token: t,
            result: -libc::ECANCELED,
            more: false,
            buffer: None
        }]
    );
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
    let (a, _b) = UnixStream::pair().expect("socketpair");
    let fd = a.into_raw_fd();
    let mut lp = Loop::new();
    let t = tok(2, 2);
    lp.driver.recv_multi(fd, t);
    lp.turn(Duration::ZERO);
    lp.driver.cancel(t);
    lp.driver.close(fd);
    assert!(!is_open(fd));
    lp.settle(Duration::from_millis(30));
    assert_eq!(lp.of(t).len(), 1, "{:?}", lp.seen);
    assert_eq!(lp.of(t)[0].result, -libc::ECANCELED);
}
