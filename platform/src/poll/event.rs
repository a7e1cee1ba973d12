//! What one readiness event says about an fd, and the poll(2)-style mask a wait sees in it.

use super::fds::{PRI, READ, WRITE};
use crate::Interest;

/// What an event said about an fd, copied out of mio's event list.
#[derive(Clone, Copy, Debug)]
pub(super) struct Readiness {
    pub(super) readable: bool,
    pub(super) writable: bool,
    pub(super) error: bool,
    pub(super) read_closed: bool,
    pub(super) write_closed: bool,
    pub(super) priority: bool,
}

impl Readiness {
    pub(super) fn of(ev: &mio::event::Event) -> Readiness {
        Readiness {
            readable: ev.is_readable(),
            writable: ev.is_writable(),
            error: ev.is_error(),
            read_closed: ev.is_read_closed(),
            write_closed: ev.is_write_closed(),
            priority: ev.is_priority(),
        }
    }

    /// Whether a receive or accept should be attempted.
    pub(super) fn wakes_readers(&self) -> bool {
        self.readable || self.read_closed || self.error
    }

    /// Whether a waiting send should be attempted.
    pub(super) fn wakes_writers(&self) -> bool {
        self.writable || self.write_closed || self.error
    }

    /// The poll(2)-style mask a `poll_fd` waiting for `interest` sees; 0 if this event does
    /// not end that wait.
    pub(super) fn mask_for(&self, interest: Interest) -> i32 {
        let mut mask = 0;
        match interest {
            Interest::Readable if self.readable => mask |= libc::POLLIN,
            Interest::Writable if self.writable => mask |= libc::POLLOUT,
            _ => {}
        }
        if self.priority {
            mask |= libc::POLLPRI;
        }
        if self.error {
            mask |= libc::POLLERR;
        }
        if self.read_closed && self.write_closed {
            mask |= libc::POLLHUP;
        }
        // A closed read side ends a wait for readability (reading won't block), a closed
        // write side one for writability.
        let closed = match interest {
            Interest::Readable => self.read_closed,
            Interest::Writable => self.write_closed,
        };
        if mask == 0 && closed {
            mask = libc::POLLHUP;
        }
        i32::from(mask)
    }
}

/// The `poll(2)` events a wait for `interest` asks about.
pub(super) fn poll_events(interest: Interest) -> libc::c_short {
    match interest {
        Interest::Readable => libc::POLLIN | libc::POLLPRI,
        Interest::Writable => libc::POLLOUT | libc::POLLPRI,
    }
}

/// The readiness bits a wait for `interest` registers.
pub(super) fn wait_bits(interest: Interest) -> u8 {
    match interest {
        Interest::Readable => READ | PRI,
        Interest::Writable => WRITE | PRI,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Readiness = Readiness {
        readable: false,
        writable: false,
        error: false,
        read_closed: false,
        write_closed: false,
        priority: false,
    };
    const IN: i32 = libc::POLLIN as i32;
    const OUT: i32 = libc::POLLOUT as i32;
    const ERR: i32 = libc::POLLERR as i32;
    const HUP: i32 = libc::POLLHUP as i32;

    #[test]
    fn each_direction_wakes_only_its_own_waits() {
        let r = Readiness {
            readable: true,
            ..NONE
        };
        assert_eq!(r.mask_for(Interest::Readable), IN);
        assert_eq!(r.mask_for(Interest::Writable), 0);
        let w = Readiness {
            writable: true,
            ..NONE
        };
        assert_eq!(w.mask_for(Interest::Readable), 0);
        assert_eq!(w.mask_for(Interest::Writable), OUT);
    }

    #[test]
    fn errors_and_hang_ups_wake_every_wait() {
        let err = Readiness {
            error: true,
            ..NONE
        };
        assert_eq!(err.mask_for(Interest::Readable), ERR);
        assert_eq!(err.mask_for(Interest::Writable), ERR);
        let hup = Readiness {
            read_closed: true,
            write_closed: true,
            ..NONE
        };
        assert_eq!(hup.mask_for(Interest::Readable), HUP);
        assert_eq!(hup.mask_for(Interest::Writable), HUP);
    }

    #[test]
    fn a_half_close_wakes_only_the_closed_direction() {
        // The peer shut down its writing side: reading won't block, writing still might.
        let fin = Readiness {
            readable: true,
            read_closed: true,
            ..NONE
        };
        assert_eq!(fin.mask_for(Interest::Readable), IN);
        assert_eq!(fin.mask_for(Interest::Writable), 0);
        let rd_hup = Readiness {
            read_closed: true,
            ..NONE
        };
        assert_eq!(rd_hup.mask_for(Interest::Readable), HUP);
        let wr_hup = Readiness {
            write_closed: true,
            ..NONE
        };
        assert_eq!(wr_hup.mask_for(Interest::Readable), 0);
        assert_eq!(wr_hup.mask_for(Interest::Writable), HUP);
    }

    #[test]
    fn waits_register_their_direction() {
        assert_eq!(wait_bits(Interest::Readable), READ | PRI);
        assert_eq!(wait_bits(Interest::Writable), WRITE | PRI);
        assert_eq!(poll_events(Interest::Writable) & libc::POLLIN, 0);
    }
}
