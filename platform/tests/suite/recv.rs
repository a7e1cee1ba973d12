//! Multishot recv into provided buffers: data, end of file, running out of buffers, cancel.

use super::{only_cancelled, tok, Loop};
use evserver_platform::{Completion, Config};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Copies out the data of buffer completions and gives the buffers back.
fn take_data(lp: &mut Loop, completions: &[Completion]) -> Vec<u8> {
    let mut data = Vec::new();
    for c in completions {
        if let Some(id) = c.buffer {
            assert!(c.result > 0, "a buffer comes with data: {c:?}");
            data.extend_from_slice(lp.driver.buffer(id, c.result as usize));
            lp.driver.release_buffer(id);
        }
    }
    data
}

#[test]
fn receives_several_messages_then_end_of_file() {
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::new();
    let t = tok(1, 2);
    lp.driver.recv_multi(a.as_raw_fd(), t);
    lp.turn(Duration::ZERO);
    assert!(lp.seen.is_empty(), "nothing sent yet: {:?}", lp.seen);

    b.write_all(b"hello ").expect("write");
    lp.until("the first message", |seen| !seen.is_empty());
    b.write_all(b"world").expect("write");
    lp.until("the second message", |seen| {
        seen.iter()
            .filter_map(|c| c.buffer.map(|_| c.result))
            .sum::<i32>()
            >= 11
    });
    drop(b);
    let all = lp.until_final(t);
    let (last, data) = all.split_last().expect("completions");
    assert!(data.iter().all(|c| c.more && c.buffer.is_some()), "{all:?}");
    assert_eq!(
        *last,
        Completion {
            token: t,
            result: 0,
            more: false,
            buffer: None
        }
    );
    let bytes = take_data(&mut lp, data);
    assert_eq!(bytes, b"hello world");
}

#[test]
fn runs_out_of_buffers_with_enobufs_and_resumes_when_rearmed() {
    let config = Config {
        recv_buffer_size: 4,
        recv_buffer_count: 2,
        ..Config::default()
    };
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::with_config(config);
    let t = tok(1, 2);
    let message: Vec<u8> = (0..20u8).collect();
    b.write_all(&message).expect("write");
    lp.driver.recv_multi(a.as_raw_fd(), t);
    let mut received = Vec::new();
    let mut enobufs = 0;
    while received.len() < message.len() {
        lp.until("data or the end of the recv", |seen| !seen.is_empty());
        let batch = std::mem::take(&mut lp.seen);
        let lent = batch.iter().filter(|c| c.buffer.is_some()).count();
        assert!(lent <= 2, "no more buffers than the pool holds: {batch:?}");
        received.extend(take_data(&mut lp, &batch));
        if let Some(end) = batch.iter().find(|c| !c.more) {
            assert_eq!(end.result, -libc::ENOBUFS, "the pool ran dry: {batch:?}");
            enobufs += 1;
            assert!(enobufs < 20, "too many re-arms; received {received:?}");
            // The caller re-arms once it has buffers again; the data left in the socket,
            // which no new event will announce, must still come.
            lp.driver.recv_multi(a.as_raw_fd(), t);
        }
    }
    assert!(enobufs >= 1, "20 bytes cannot fit two 4-byte buffers");
    assert_eq!(received, message);
    lp.driver.cancel(t);
    let end = lp.until_final(t);
    assert_eq!(end.last().map(|c| c.result), Some(-libc::ECANCELED));
}

#[test]
fn cancel_ends_recv_with_one_ecanceled() {
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::new();
    let t = tok(3, 2);
    lp.driver.recv_multi(a.as_raw_fd(), t);
    lp.turn(Duration::ZERO);
    lp.driver.cancel(t);
    let done = lp.until_final(t);
    assert_eq!(done, only_cancelled(t));
    b.write_all(b"late").expect("write");
    lp.settle(Duration::from_millis(50));
    assert_eq!(
        lp.of(t).len(),
        1,
        "nothing after the final completion: {:?}",
        lp.seen
    );
}

#[test]
fn a_large_transfer_arrives_intact() {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let total = 2 * 1024 * 1024;
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let writer = std::thread::spawn(move || {
        let mut b = b;
        b.write_all(&data).expect("write");
    });
    let mut lp = Loop::new();
    let t = tok(4, 2);
    lp.driver.recv_multi(a.as_raw_fd(), t);
    let mut received = Vec::with_capacity(total);
    let mut end = None;
    while end.is_none() {
        lp.until("more data", |seen| !seen.is_empty());
        let batch = std::mem::take(&mut lp.seen);
        end = batch.iter().find(|c| !c.more).copied();
        received.extend(take_data(&mut lp, &batch));
    }
    writer.join().expect("writer");
    assert_eq!(received.len(), total);
    assert!(received == expected, "data differs");
    assert_eq!(end.map(|c| c.result), Some(0), "end of file");
}

#[test]
fn after_cancel_now_a_recv_takes_no_more_bytes() {
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    let mut lp = Loop::new();
    let t = tok(1, 2);
    lp.driver.recv_multi(a.as_raw_fd(), t);
    lp.turn(Duration::ZERO);
    lp.driver.cancel_now(t);
    // Written before the loop turned again: it stays in the socket for whoever reads next
    // (a library the connection is handed to), and the recv ends with ECANCELED alone.
    b.write_all(b"for the next reader").expect("write");
    a.set_nonblocking(true).expect("nonblocking");
    let mut got = [0u8; 64];
    let n = std::io::Read::read(&mut &a, &mut got).expect("the bytes wait in the socket");
    assert_eq!(&got[..n], b"for the next reader");
    let done = lp.until_final(t);
    assert_eq!(done, only_cancelled(t));
    lp.driver.cancel_now(t); // of what ended already: harmless
    lp.turn(Duration::from_millis(20));
}
