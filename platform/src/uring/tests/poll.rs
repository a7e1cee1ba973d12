//! poll_fd: readiness, hang-up, regular files, linked timeouts, one completion per wait.

use super::*;
use std::os::fd::AsRawFd;

const IN: i32 = libc::POLLIN as i32;
const OUT: i32 = libc::POLLOUT as i32;
const HUP: i32 = libc::POLLHUP as i32;

fn eventfd() -> OwnedFd {
    // SAFETY: plain eventfd creation.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

fn signal(efd: &OwnedFd) {
    write_fd(efd.as_raw_fd(), &1u64.to_ne_bytes());
}

#[test]
fn waits_until_a_pipe_becomes_readable() {
    let Some(mut u) = ring() else { return };
    let (r, w) = pipe();
    let t = token(1);
    u.poll_fd(r.as_raw_fd(), Interest::Readable, None, t);
    assert!(
        settle(&mut u, Duration::from_millis(50)).is_empty(),
        "not ready yet"
    );
    write_fd(w.as_raw_fd(), b"!");
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].token, done[0].more), (t, false));
    assert_ne!(done[0].result & IN, 0, "{done:?}");
    assert!(
        settle(&mut u, Duration::from_millis(30)).is_empty(),
        "one-shot"
    );
}

#[test]
fn writable_pipe_is_ready_at_once() {
    let Some(mut u) = ring() else { return };
    let (_r, w) = pipe();
    u.poll_fd(w.as_raw_fd(), Interest::Writable, None, token(2));
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_ne!(done[0].result & OUT, 0, "{done:?}");
}

#[test]
fn hang_up_ends_a_readable_wait() {
    let Some(mut u) = ring() else { return };
    let (r, w) = pipe();
    u.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_secs(5)),
        token(3),
    );
    u.submit().expect("submit");
    drop(w);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_ne!(done[0].result & HUP, 0, "{done:?}");
}

#[test]
fn regular_file_is_ready_at_once() {
    let Some(mut u) = ring() else { return };
    let path = std::env::temp_dir().join(format!("evserver-uring-poll-{}", std::process::id()));
    let file = std::fs::File::create(&path).expect("create");
    let _ = std::fs::remove_file(&path);
    let timeout = Some(Duration::from_secs(5));
    u.poll_fd(file.as_raw_fd(), Interest::Readable, timeout, token(4));
    u.poll_fd(file.as_raw_fd(), Interest::Writable, timeout, token(5));
    let start = Instant::now();
    let done = collect(&mut u, 2, Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|c| c.result > 0), "{done:?}");
    assert_eq!(u.timed_polls_in_flight(), 0);
}

#[test]
fn ready_before_the_timeout_gives_one_completion_with_the_mask() {
    let Some(mut u) = ring() else { return };
    let efd = eventfd();
    let t = token(6);
    u.poll_fd(
        efd.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_secs(5)),
        t,
    );
    assert!(settle(&mut u, Duration::from_millis(30)).is_empty());
    signal(&efd);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].token, t);
    assert_ne!(done[0].result & IN, 0, "{done:?}");
    assert!(
        settle(&mut u, Duration::from_millis(100)).is_empty(),
        "exactly one completion"
    );
    assert_eq!(u.timed_polls_in_flight(), 0, "slot freed after both CQEs");
}

#[test]
fn timeout_fires_with_etime_once() {
    let Some(mut u) = ring() else { return };
    let (r, _w) = pipe();
    let t = token(7);
    let start = Instant::now();
    u.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::from_millis(50)),
        t,
    );
    let done = collect(&mut u, 1, Duration::from_secs(5));
    let elapsed = start.elapsed();
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].token, done[0].result, done[0].more),
        (t, -libc::ETIME, false)
    );
    assert!(
        elapsed >= Duration::from_millis(45),
        "fired after {elapsed:?}"
    );
    assert!(
        settle(&mut u, Duration::from_millis(100)).is_empty(),
        "exactly one completion"
    );
    assert_eq!(u.timed_polls_in_flight(), 0);
}

#[test]
fn zero_timeout_on_an_idle_fd_gives_etime() {
    let Some(mut u) = ring() else { return };
    let (r, _w) = pipe();
    u.poll_fd(
        r.as_raw_fd(),
        Interest::Readable,
        Some(Duration::ZERO),
        token(8),
    );
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done[0].result, -libc::ETIME);
}

#[test]
fn many_waits_on_one_fd_all_wake_once() {
    let Some(mut u) = ring() else { return };
    let efd = eventfd();
    for i in 0..20 {
        let timeout = (i % 2 == 0).then_some(Duration::from_secs(5));
        u.poll_fd(efd.as_raw_fd(), Interest::Readable, timeout, token(i));
    }
    assert!(settle(&mut u, Duration::from_millis(30)).is_empty());
    signal(&efd);
    let mut done = collect(&mut u, 20, Duration::from_secs(5));
    done.extend(settle(&mut u, Duration::from_millis(50)));
    let mut slots: Vec<u32> = done.iter().map(|c| c.token.slot()).collect();
    slots.sort_unstable();
    assert_eq!(
        slots,
        (0..20).collect::<Vec<_>>(),
        "each wait completes exactly once"
    );
    assert!(done.iter().all(|c| c.result & IN != 0), "{done:?}");
    assert_eq!(u.timed_polls_in_flight(), 0);
}

#[test]
fn many_timeouts_fire_once_each() {
    let Some(mut u) = ring() else { return };
    let (r, _w) = pipe();
    for i in 0..100 {
        u.poll_fd(
            r.as_raw_fd(),
            Interest::Readable,
            Some(Duration::from_millis(20)),
            token(i),
        );
    }
    let mut done = collect(&mut u, 100, Duration::from_secs(5));
    done.extend(settle(&mut u, Duration::from_millis(50)));
    assert_eq!(done.len(), 100);
    assert!(done.iter().all(|c| c.result == -libc::ETIME));
    assert_eq!(u.timed_polls_in_flight(), 0);
}

#[test]
fn a_bad_fd_fails_once_with_or_without_a_timeout() {
    let Some(mut u) = ring() else { return };
    u.poll_fd(-1, Interest::Readable, None, token(1));
    u.poll_fd(
        -1,
        Interest::Readable,
        Some(Duration::from_secs(5)),
        token(2),
    );
    let mut done = collect(&mut u, 2, Duration::from_secs(5));
    done.extend(settle(&mut u, Duration::from_millis(50)));
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|c| c.result == -libc::EBADF), "{done:?}");
    assert_eq!(u.timed_polls_in_flight(), 0);
}
