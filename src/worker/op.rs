//! The kinds of operation a worker issues, as one enum, and their round trip through the
//! operation byte of the platform's `Token`.

use crate::wsgi::fdevent::MAX_WAIT_FDS;
use evserver_platform::Token;

/// What an operation in flight is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Multishot accept on listener number `slot`.
    Accept,
    /// Multishot receive on a connection.
    Recv,
    /// The connection's one send in flight.
    Send,
    /// A wait for the socket to become writable (sendfile ran out of room).
    Writable,
    /// The signal pipe became readable.
    Signal,
    /// The thread pool's wake-up pipe became readable: jobs came back.
    Pool,
    /// The WebSocket hub's wake fd became readable: some WebSocket has frames to send.
    WsWake,
    /// The poll of the fd with this index in a parked request's fdevent wait.
    Wait(u8),
}

const ACCEPT: u8 = 1;
const RECV: u8 = 2;
const SEND: u8 = 3;
const WRITABLE: u8 = 5;
const SIGNAL: u8 = 6;
const POOL: u8 = 7;
const WS_WAKE: u8 = 8;
/// `Wait(i)` is `FIRST_WAIT + i`.
const FIRST_WAIT: u8 = 0x40;

const _: () = assert!(FIRST_WAIT as usize + MAX_WAIT_FDS <= 0xFF && MAX_WAIT_FDS <= 64);

impl Op {
    /// The operation byte.
    pub const fn code(self) -> u8 {
        match self {
            Op::Accept => ACCEPT,
            Op::Recv => RECV,
            Op::Send => SEND,
            Op::Writable => WRITABLE,
            Op::Signal => SIGNAL,
            Op::Pool => POOL,
            Op::WsWake => WS_WAKE,
            Op::Wait(index) => FIRST_WAIT + index,
        }
    }

    /// The operation an operation byte names; `None` for one the worker never issues.
    pub fn from_code(code: u8) -> Option<Op> {
        Some(match code {
            ACCEPT => Op::Accept,
            RECV => Op::Recv,
            SEND => Op::Send,
            WRITABLE => Op::Writable,
            SIGNAL => Op::Signal,
            POOL => Op::Pool,
            WS_WAKE => Op::WsWake,
            c if (FIRST_WAIT..FIRST_WAIT + MAX_WAIT_FDS as u8).contains(&c) => {
                Op::Wait(c - FIRST_WAIT)
            }
            _ => return None,
        })
    }

    /// The poll of fd `index` of a wait.
    pub fn wait(index: usize) -> Op {
        debug_assert!(index < MAX_WAIT_FDS);
        Op::Wait(index as u8)
    }

    /// The token of this operation for slot `slot` at `generation`.
    pub fn token(self, slot: u32, generation: u32) -> Token {
        Token::new(slot, generation, self.code())
    }

    /// The operation of a completion's token.
    pub fn of(token: Token) -> Option<Op> {
        Op::from_code(token.op())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips_through_a_token() {
        let mut ops = vec![
            Op::Accept,
            Op::Recv,
            Op::Send,
            Op::Writable,
            Op::Signal,
            Op::Pool,
            Op::WsWake,
        ];
        ops.extend((0..MAX_WAIT_FDS).map(Op::wait));
        for op in ops {
            let token = op.token(77, 12_345);
            assert_eq!(Op::of(token), Some(op));
            assert_eq!((token.slot(), token.generation()), (77, 12_345));
        }
    }

    #[test]
    fn foreign_codes_are_no_op() {
        for code in [
            0u8,
            4,
            9,
            FIRST_WAIT - 1,
            FIRST_WAIT + MAX_WAIT_FDS as u8,
            0xFF,
        ] {
            assert_eq!(Op::from_code(code), None, "{code}");
        }
    }
}
