//! The listening sockets, held by the master for the workers' whole lives: one SO_REUSEPORT
//! listener per worker slot for TCP on Linux (the kernel spreads connections), one shared
//! listener otherwise; a replaced worker's successor accepts from the same socket, so no
//! queued connection is lost.

use crate::listen::{Address, Endpoint, Listener};
use std::os::fd::RawFd;

/// The listeners of one `-l` address: one per worker slot (SO_REUSEPORT) or one shared.
enum Socket {
    PerSlot {
        address: Address,
        backlog: i32,
        by_slot: Vec<Option<Listener>>,
    },
    Shared(Listener),
}

/// Every listening socket, held by the master for the workers' whole lives: a replaced
/// worker's successor accepts from the same socket, so no queued connection is lost.
pub struct Sockets {
    sockets: Vec<Socket>,
    /// Every listener speaks TLS (`--certfile`): shown as https:// in the ready line.
    tls: bool,
}

impl Sockets {
    /// Binds every address for `slots` workers. TCP addresses get one SO_REUSEPORT listener
    /// per worker on Linux; unix sockets (and TCP elsewhere) one listener for all.
    pub fn bind(
        addresses: &[(String, Address)],
        backlog: i32,
        slots: usize,
    ) -> Result<Sockets, String> {
        let per_slot = cfg!(target_os = "linux");
        let mut sockets = Vec::new();
        for (text, address) in addresses {
            let socket = match address {
                Address::Tcp(addr) if per_slot => {
                    // SO_REUSEPORT would let us share a port another server listens on:
                    // a plain bind first tells whether it is taken.
                    if addr.port() != 0 {
                        drop(
                            Listener::bind(address, 1, false)
                                .map_err(|e| format!("cannot listen on {text}: {e}"))?,
                        );
                    }
                    let first = Listener::bind(address, backlog, true)
                        .map_err(|e| format!("cannot listen on {text}: {e}"))?;
                    // Port 0 picked a port: the other slots bind that one.
                    let actual = first.address.clone();
                    let mut socket = Socket::PerSlot {
                        address: actual,
                        backlog,
                        by_slot: vec![Some(first)],
                    };
                    for slot in 1..slots {
                        Self::open_slot(&mut socket, slot)
                            .map_err(|e| format!("cannot listen on {text}: {e}"))?;
                    }
                    socket
                }
                _ => Socket::Shared(
                    Listener::bind(address, backlog, false)
                        .map_err(|e| format!("cannot listen on {text}: {e}"))?,
                ),
            };
            sockets.push(socket);
        }
        Ok(Sockets {
            sockets,
            tls: false,
        })
    }

    fn open_slot(socket: &mut Socket, slot: usize) -> std::io::Result<()> {
        if let Socket::PerSlot {
            address,
            backlog,
            by_slot,
        } = socket
        {
            if by_slot.len() <= slot {
                by_slot.resize_with(slot + 1, || None);
            }
            if by_slot[slot].is_none() {
                by_slot[slot] = Some(Listener::bind(address, *backlog, true)?);
            }
        }
        Ok(())
    }

    /// Makes sure worker slot `slot` has its listeners (SIGTTIN beyond the first workers).
    pub fn ensure_slot(&mut self, slot: usize) -> std::io::Result<()> {
        for socket in &mut self.sockets {
            Self::open_slot(socket, slot)?;
        }
        Ok(())
    }

    /// Closes the listeners of a slot no worker uses any more (SIGTTOU).
    pub fn release_slot(&mut self, slot: usize) {
        for socket in &mut self.sockets {
            if let Socket::PerSlot { by_slot, .. } = socket {
                if let Some(entry) = by_slot.get_mut(slot) {
                    *entry = None;
                }
            }
        }
    }

    /// The listeners a worker in `slot` accepts from, in `-l` order.
    pub fn endpoints(&self, slot: usize) -> Vec<Endpoint> {
        self.sockets
            .iter()
            .filter_map(|socket| match socket {
                Socket::PerSlot { by_slot, .. } => by_slot
                    .get(slot)
                    .and_then(Option::as_ref)
                    .map(Listener::endpoint),
                Socket::Shared(l) => Some(l.endpoint()),
            })
            .collect()
    }

    /// Every listener fd not used by `slot` (a worker closes them).
    pub fn foreign_fds(&self, slot: usize) -> Vec<RawFd> {
        let mut fds = Vec::new();
        for socket in &self.sockets {
            if let Socket::PerSlot { by_slot, .. } = socket {
                for (i, l) in by_slot.iter().enumerate() {
                    if let (true, Some(l)) = (i != slot, l) {
                        fds.push(l.fd());
                    }
                }
            }
        }
        fds
    }

    /// The addresses for the ready line.
    pub fn display(&self) -> Vec<String> {
        self.sockets
            .iter()
            .map(|socket| match socket {
                Socket::PerSlot { address, .. } => address.display(),
                Socket::Shared(l) => l.display(),
            })
            .map(|shown| match shown.strip_prefix("http://") {
                Some(rest) if self.tls => format!("https://{rest}"),
                _ => shown,
            })
            .collect()
    }

    /// Every listener speaks TLS (`--certfile`).
    pub fn speak_tls(&mut self) {
        self.tls = true;
    }
}
