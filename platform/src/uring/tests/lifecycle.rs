//! Setup, refusal, waiting, submission-queue overflow and close.

use super::*;
use crate::SIMULATE_REFUSAL_ENV;
use std::io::Read;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn starts_with_the_default_config() {
    let Some(mut u) = ring_with(&Config::default()) else {
        return;
    };
    u.submit().expect("submit");
}

#[test]
fn refuses_a_buffer_count_that_is_not_a_power_of_two() {
    let config = Config {
        recv_buffer_count: 3,
        ..small_config()
    };
    if let Err(e) = Uring::new(&config) {
        assert!(
            e.kind() == std::io::ErrorKind::InvalidInput
                || describe_refusal(&e).contains("io_uring"),
            "{e}"
        );
    } else {
        panic!("a count of 3 was accepted");
    }
}

#[test]
fn wait_with_a_timeout_returns_when_nothing_happens() {
    let Some(mut u) = ring() else { return };
    let start = Instant::now();
    u.wait(Some(Duration::from_millis(50))).expect("wait");
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(45), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let mut out = Vec::new();
    u.drain(&mut out);
    assert!(out.is_empty());
    u.wait(Some(Duration::ZERO))
        .expect("a zero timeout only polls");
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

#[test]
fn wait_is_interrupted_by_a_signal() {
    let Some(mut u) = ring() else { return };
    // SAFETY: installs a handler that does nothing, without SA_RESTART, for SIGUSR1, which
    // nothing else in this test binary uses.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // SAFETY: `me` is the test thread, alive until `stop` is set and we are joined.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
            }
        })
    };
    let mut result = Ok(());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        result = u.wait(Some(Duration::from_secs(1)));
        if result.is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    killer.join().expect("killer");
    let err = result.expect_err("a signal interrupts the wait");
    assert_eq!(err.kind(), std::io::ErrorKind::Interrupted);
}

/// Runs this test binary again with only `test` selected and `env` set; asserts it passed.
fn run_child(test: &str, env: (&str, &str)) {
    let exe = std::env::current_exe().expect("current exe");
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    let out = Command::new(exe)
        .args([
            &format!("{module}::{test}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env.0, env.1)
        .output()
        .expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
}

#[test]
fn simulated_refusal_fails_setup_with_that_errno() {
    run_child("simulated_refusal_child", (SIMULATE_REFUSAL_ENV, "EPERM"));
    run_child("simulated_refusal_child", (SIMULATE_REFUSAL_ENV, "ENOSYS"));
}

/// Does its work only when started by `simulated_refusal_fails_setup_with_that_errno`.
#[test]
fn simulated_refusal_child() {
    let Ok(name) = std::env::var(SIMULATE_REFUSAL_ENV) else {
        return;
    };
    let errno = crate::sys::errno_from_name(&name).expect("known errno name");
    let err = match Uring::new(&small_config()) {
        Ok(_) => panic!("setup succeeded despite {SIMULATE_REFUSAL_ENV}={name}"),
        Err(e) => e,
    };
    assert_eq!(err.raw_os_error(), Some(errno));
    let line = describe_refusal(&err);
    println!("refusal line: {line}");
    assert!(line.contains(&format!("({name}")), "{line}");
    assert!(line.contains("simulated"), "{line}");
}

#[test]
fn a_burst_larger_than_the_submission_queue_is_not_dropped() {
    let config = Config {
        entries: 4,
        ..small_config()
    };
    let Some(mut u) = ring_with(&config) else {
        return;
    };
    let (_r, w) = pipe();
    // 99 operations, a third of them linked pairs, queued without a submit in between.
    for i in 0..99 {
        let timeout = (i % 3 == 0).then_some(Duration::from_secs(5));
        u.poll_fd(w.as_raw_fd(), Interest::Writable, timeout, token(i));
    }
    let mut done = collect(&mut u, 99, Duration::from_secs(5));
    done.extend(settle(&mut u, Duration::from_millis(50)));
    let mut slots: Vec<u32> = done.iter().map(|c| c.token.slot()).collect();
    slots.sort_unstable();
    assert_eq!(
        slots,
        (0..99).collect::<Vec<_>>(),
        "every operation completes exactly once"
    );
    assert!(done.iter().all(|c| c.result > 0), "{done:?}");
    assert_eq!(u.timed_polls_in_flight(), 0);
}

#[test]
fn close_frees_the_fd_at_once_and_posts_nothing() {
    let Some(mut u) = ring() else { return };
    let (a, mut b) = UnixStream::pair().expect("pair");
    b.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    u.close(a.into_raw_fd());
    let mut buf = [0; 1];
    assert_eq!(
        b.read(&mut buf).expect("read"),
        0,
        "the peer sees end of file"
    );
    assert!(settle(&mut u, Duration::from_millis(50)).is_empty());
}

#[test]
fn an_operation_queued_before_close_still_reaches_its_own_socket() {
    let Some(mut u) = ring() else { return };
    let (a, mut b) = UnixStream::pair().expect("pair");
    let t = token(1);
    let fd = a.into_raw_fd();
    // SAFETY: a static byte string.
    unsafe { u.send(fd, t, b"bye".as_ptr(), 3) };
    u.close(fd);
    // The lowest free number is `fd` again: a send still queued by number would go here.
    let (r, _w) = pipe();
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done[0].result, 3);
    let mut got = Vec::new();
    b.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"bye");
    drop(r);
}

#[test]
fn close_of_a_socket_with_a_cancelled_recv_posts_only_the_cancel() {
    let Some(mut u) = ring() else { return };
    let (a, _b) = UnixStream::pair().expect("pair");
    let fd = a.into_raw_fd();
    let t = token(2);
    u.recv_multi(fd, t);
    u.submit().expect("submit");
    u.cancel(t);
    u.close(fd);
    let mut done = collect(&mut u, 1, Duration::from_secs(5));
    done.extend(settle(&mut u, Duration::from_millis(50)));
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!((done[0].result, done[0].more), (-libc::ECANCELED, false));
}

#[test]
fn wait_does_not_return_for_internal_completions_alone() {
    let Some(mut u) = ring() else { return };
    // A cancel that finds nothing posts only its own (swallowed) completion.
    u.cancel(token(42));
    let start = Instant::now();
    u.wait(Some(Duration::from_millis(80))).expect("wait");
    assert!(
        start.elapsed() >= Duration::from_millis(75),
        "{:?}",
        start.elapsed()
    );
    let mut out = Vec::new();
    u.drain(&mut out);
    assert!(out.is_empty());
}

#[test]
fn uring_is_send() {
    // `Uring` is `Send` so a `Driver` can live in structures that must be; it is still to be
    // created on, and used from, one thread (SINGLE_ISSUER).
    fn assert_send<T: Send>() {}
    assert_send::<Uring>();
}
