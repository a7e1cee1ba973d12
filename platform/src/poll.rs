//! STUB: to be replaced by the real backend.
#![allow(unused_variables, dead_code)]
use crate::{Completion, Config, Interest, Token};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

pub const NAME: &str = if cfg!(target_os = "linux") { "epoll" } else { "kqueue" };

pub struct Poll;



impl Poll {
    pub fn new(config: &Config) -> io::Result<Poll> { Err(io::Error::new(io::ErrorKind::Unsupported, "stub")) }
    pub fn accept_multi(&mut self, listener: RawFd, token: Token) { todo!() }
    pub fn recv_multi(&mut self, fd: RawFd, token: Token) { todo!() }
    pub unsafe fn send(&mut self, fd: RawFd, token: Token, buf: *const u8, len: usize) { todo!() }
    pub unsafe fn sendmsg(&mut self, fd: RawFd, token: Token, msg: *const libc::msghdr) { todo!() }
    pub fn poll_fd(&mut self, fd: RawFd, interest: Interest, timeout: Option<Duration>, token: Token) { todo!() }
    pub fn cancel(&mut self, target: Token) { todo!() }
    pub fn close(&mut self, fd: RawFd) { todo!() }
    pub fn submit(&mut self) -> io::Result<()> { todo!() }
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> { todo!() }
    pub fn drain(&mut self, out: &mut Vec<Completion>) { todo!() }
    pub fn buffer(&self, id: u16, len: usize) -> &[u8] { todo!() }
    pub fn release_buffer(&mut self, id: u16) { todo!() }
}
