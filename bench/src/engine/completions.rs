//! What a worker does with each completion: connects, sends and received responses, counted
//! into its statistics.

use super::{Conn, State, Worker, OP_CONNECT, OP_RECV, OP_SEND};
use crate::response::AtEof;
use crate::stats::{Failure, Stats};
use evserver_platform::Completion;
use std::time::Duration;

impl Worker<'_> {
    pub(super) fn complete(&mut self, c: Completion) {
        if !c.more {
            self.ops -= 1;
        }
        let slot = c.token.slot();
        let conn = &self.conns[slot as usize];
        if c.token.generation() != conn.generation || conn.fd < 0 {
            if let Some(id) = c.buffer {
                self.driver.release_buffer(id);
            }
            return; // an earlier incarnation of the connection
        }
        match c.token.op() {
            OP_CONNECT => self.connected(slot, c.result),
            OP_SEND => self.sent(slot, c.result),
            OP_RECV => self.received(slot, c),
            _ => {}
        }
    }

    pub(super) fn connected(&mut self, slot: u32, result: i32) {
        if result < 0 {
            return self.connect_failed(slot, Failure::Connect);
        }
        let c = &mut self.conns[slot as usize];
        c.state = State::Open;
        c.recv_armed = true;
        let token = c.token(OP_RECV, slot);
        self.driver.recv_multi(c.fd, token);
        self.ops += 1;
        self.ready(slot);
    }

    pub(super) fn sent(&mut self, slot: u32, result: i32) {
        let c = &mut self.conns[slot as usize];
        c.send_busy = false;
        if result <= 0 {
            return self.abort(slot, Failure::Write);
        }
        let off = c.send_off + result as usize;
        if off < c.send_end {
            let end = c.send_end;
            return self.issue_send(slot, off, end);
        }
        if c.pending > 0 {
            let len = c.pending as usize * self.plan.request_len;
            c.pending = 0;
            self.issue_send(slot, 0, len);
        }
    }

    pub(super) fn received(&mut self, slot: u32, comp: Completion) {
        if let Some(id) = comp.buffer {
            let n = usize::try_from(comp.result).unwrap_or(0);
            let outcome = self.parse(slot, id, n);
            self.driver.release_buffer(id);
            if let Err(kind) = outcome {
                return self.abort(slot, kind);
            }
            let c = &self.conns[slot as usize];
            if c.parser.must_close() {
                return self.finish_conn(slot);
            }
            if c.outstanding == 0 && c.pending == 0 {
                if self.plan.close {
                    return self.finish_conn(slot);
                }
                self.ready(slot);
            }
        }
        if comp.more {
            return;
        }
        let c = &mut self.conns[slot as usize];
        if c.generation != comp.token.generation() || c.state != State::Open {
            return; // closed while handling the data above
        }
        c.recv_armed = false;
        match comp.result {
            0 => match c.parser.eof() {
                AtEof::Completed(status) => match self.eof_response(slot, status) {
                    Ok(()) => self.finish_conn(slot),
                    Err(kind) => self.abort(slot, kind),
                },
                AtEof::Truncated => self.abort(slot, Failure::Read),
                AtEof::Idle if c.outstanding > 0 => self.abort(slot, Failure::Read),
                AtEof::Idle => self.reopen(slot),
            },
            r if r == -libc::ENOBUFS || r > 0 => {
                c.recv_armed = true;
                let token = c.token(OP_RECV, slot);
                self.driver.recv_multi(c.fd, token);
                self.ops += 1;
            }
            _ if c.outstanding > 0 => self.abort(slot, Failure::Read),
            _ => self.reopen(slot),
        }
    }

    /// Feeds `n` bytes of buffer `id` to `slot`'s parser and counts the responses.
    pub(super) fn parse(&mut self, slot: u32, id: u16, n: usize) -> Result<(), Failure> {
        let Worker {
            driver,
            conns,
            stats,
            in_flight,
            recording,
            now,
            sec,
            ..
        } = self;
        let (recording, sec) = (*recording, *sec);
        let data = driver.buffer(id, n);
        if recording {
            stats.bytes += n as u64;
            stats.second(sec).bytes += n as u64;
        }
        let Conn {
            parser,
            outstanding,
            warm,
            planned_at,
            sent_at,
            ..
        } = &mut conns[slot as usize];
        let latency = micros(now.saturating_duration_since(*planned_at));
        let uncorrected = micros(now.saturating_duration_since(*sent_at));
        let mut unexpected = false;
        let fed = parser.feed(data, |status| {
            if *outstanding == 0 {
                unexpected = true; // a response nobody asked for
                return;
            }
            *outstanding -= 1;
            *in_flight -= 1;
            if *warm > 0 {
                *warm -= 1;
            } else if recording {
                record(stats, status, latency, uncorrected, sec);
            }
        });
        if fed.is_err() || unexpected {
            return Err(Failure::Parse);
        }
        Ok(())
    }

    /// One response completed by the end of the connection.
    pub(super) fn eof_response(&mut self, slot: u32, status: u16) -> Result<(), Failure> {
        let c = &mut self.conns[slot as usize];
        if c.outstanding == 0 {
            return Err(Failure::Parse);
        }
        c.outstanding -= 1;
        self.in_flight -= 1;
        if c.warm > 0 {
            c.warm -= 1;
        } else if self.recording {
            let latency = micros(self.now.saturating_duration_since(c.planned_at));
            let uncorrected = micros(self.now.saturating_duration_since(c.sent_at));
            record(&mut self.stats, status, latency, uncorrected, self.sec);
        }
        Ok(())
    }
}

/// Counts one response of the measured period.
#[inline]
fn record(stats: &mut Stats, status: u16, latency: u64, uncorrected: u64, sec: usize) {
    stats.latency.saturating_record(latency);
    if let Some(h) = &mut stats.uncorrected {
        h.saturating_record(uncorrected);
    }
    if let Some(n) = stats.status.get_mut(usize::from(status)) {
        *n += 1;
    }
    stats.responses += 1;
    stats.second(sec).responses += 1;
}

#[inline]
fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}
