//! Multishot recv on the provided-buffer ring: data, end of file, running out of buffers.

use super::*;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

#[test]
fn receives_several_messages_then_end_of_file() {
    let Some(mut u) = ring() else { return };
    let (a, mut b) = UnixStream::pair().expect("pair");
    let t = token(3);
    u.recv_multi(a.as_raw_fd(), t);
    u.submit().expect("submit");

    for msg in [&b"one"[..], b"two!", b"three"] {
        b.write_all(msg).expect("write");
        let done = collect(&mut u, 1, Duration::from_secs(5));
        assert_eq!(done.len(), 1, "{done:?}");
        let c = done[0];
        assert_eq!((c.token, c.result, c.more), (t, msg.len() as i32, true));
        let id = c.buffer.expect("data comes in a provided buffer");
        assert_eq!(u.buffer(id, c.result as usize), msg);
        u.release_buffer(id);
    }

    drop(b);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].result, done[0].more, done[0].buffer),
        (0, false, None),
        "EOF ends it"
    );
    assert!(
        settle(&mut u, Duration::from_millis(50)).is_empty(),
        "nothing after EOF"
    );
    assert_eq!(u.buffers_held(), 0);
}

#[test]
fn data_queued_before_end_of_file_comes_first() {
    let Some(mut u) = ring() else { return };
    let (a, mut b) = UnixStream::pair().expect("pair");
    b.write_all(b"last words").expect("write");
    drop(b);
    let t = token(4);
    u.recv_multi(a.as_raw_fd(), t);
    let done = collect(&mut u, 2, Duration::from_secs(5));
    assert_eq!(done.len(), 2, "{done:?}");
    assert_eq!((done[0].result, done[0].more), (10, true));
    let id = done[0].buffer.expect("buffer");
    assert_eq!(u.buffer(id, 10), b"last words");
    u.release_buffer(id);
    assert_eq!(
        (done[1].result, done[1].more, done[1].buffer),
        (0, false, None)
    );
}

#[test]
fn running_out_of_buffers_ends_the_recv_and_a_rearm_resumes() {
    // Two buffers of four bytes: 64 bytes need eight rounds of fill, ENOBUFS, release, re-arm.
    let config = Config {
        entries: 16,
        recv_buffer_size: 4,
        recv_buffer_count: 2,
    };
    let Some(mut u) = ring_with(&config) else {
        return;
    };
    let (a, mut b) = UnixStream::pair().expect("pair");
    let sent: Vec<u8> = (0..64u8).collect();
    b.write_all(&sent).expect("write");

    let t = token(5);
    u.recv_multi(a.as_raw_fd(), t);
    let mut received = Vec::new();
    let mut held = Vec::new();
    let mut ids_seen = Vec::new();
    let mut enobufs = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.len() < sent.len() && Instant::now() < deadline {
        for c in collect(&mut u, 1, Duration::from_secs(1)) {
            if let Some(id) = c.buffer {
                received.extend_from_slice(u.buffer(id, c.result as usize));
                held.push(id);
                ids_seen.push(id);
            }
            if !c.more {
                assert_eq!(c.result, -libc::ENOBUFS, "{c:?}");
                enobufs += 1;
                // Only now give the buffers back, then re-arm.
                for id in held.drain(..) {
                    u.release_buffer(id);
                }
                u.recv_multi(a.as_raw_fd(), t);
            }
        }
    }
    assert_eq!(received, sent, "every byte, in order, exactly once");
    assert!(enobufs >= 7, "ran out of buffers {enobufs} times");
    assert!(
        ids_seen.iter().filter(|&&id| id == 0).count() > 1,
        "buffer 0 was reused: {ids_seen:?}"
    );
    assert!(ids_seen.iter().all(|&id| id < 2));

    for id in held.drain(..) {
        u.release_buffer(id);
    }
    drop(b);
    let done = collect(&mut u, 1, Duration::from_secs(5));
    assert_eq!((done[0].result, done[0].more), (0, false), "{done:?}");
}

#[test]
fn buffers_come_in_ring_order_and_return_in_release_order() {
    let config = Config {
        entries: 16,
        recv_buffer_size: 8,
        recv_buffer_count: 4,
    };
    let Some(mut u) = ring_with(&config) else {
        return;
    };
    let (a, mut b) = UnixStream::pair().expect("pair");
    let t = token(6);
    u.recv_multi(a.as_raw_fd(), t);
    u.submit().expect("submit");
    let mut ids = Vec::new();
    for i in 0..8u8 {
        b.write_all(&[i]).expect("write");
        let done = collect(&mut u, 1, Duration::from_secs(5));
        let id = done[0].buffer.expect("buffer");
        assert_eq!(u.buffer(id, 1), [i]);
        ids.push(id);
        if i == 3 {
            // Give back 2, then 0: the ring hands them out again in that order.
            u.release_buffer(2);
            u.release_buffer(0);
        }
        if i == 5 {
            u.release_buffer(3);
            u.release_buffer(1);
        }
    }
    // The first four come in ring order (which buffer is first depends on what ran before),
    // then the released ones in release order.
    let first = ids[0];
    assert_eq!(
        ids[..4],
        [first, (first + 1) % 4, (first + 2) % 4, (first + 3) % 4]
    );
    assert_eq!(ids[4..], [2, 0, 3, 1]);
}
