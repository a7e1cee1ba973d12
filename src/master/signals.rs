//! The master's answers to signals (SIGTERM/SIGINT: stop gracefully, SIGQUIT or a second
//! SIGINT: stop now, SIGHUP: reload, SIGTTIN/SIGTTOU: one worker more or fewer) and what it
//! tells systemd about them.

use super::supervisor::{Master, Phase, Stop, WorkerBody};
use crate::scoreboard::MAX_WORKERS;
use evserver_platform::process;
use std::time::Instant;

impl<B: WorkerBody> Master<'_, B> {
    /// Tells systemd (`Type=notify`) what the server is doing, when it asks.
    pub(super) fn tell_service_manager(&self, state: &str) {
        if let Some(notifier) = &self.settings.notify {
            if let Err(e) = notifier.notify(state) {
                self.log
                    .warning(&format!("cannot notify systemd ({state}): {e}"));
            }
        }
    }

    pub(super) fn on_signal(&mut self, sig: i32) {
        match sig {
            libc::SIGTERM | libc::SIGINT if self.stop.is_none() => {
                self.log.info(&format!(
                    "{}: stopping gracefully (up to {} s)",
                    process::signal_name(sig),
                    self.settings.graceful_timeout.as_secs()
                ));
                self.stop = Some(Stop::Graceful(
                    Instant::now() + self.settings.graceful_timeout,
                ));
                self.tell_service_manager("STOPPING=1");
                self.stop_all(libc::SIGTERM);
            }
            libc::SIGQUIT | libc::SIGINT => {
                // SIGINT while stopping gracefully (a second Ctrl-C) stops at once too.
                self.log
                    .info(&format!("{}: stopping now", process::signal_name(sig)));
                self.stop = Some(Stop::Immediate);
                self.tell_service_manager("STOPPING=1");
                self.stop_all(libc::SIGQUIT);
            }
            libc::SIGHUP => self.begin_reload("SIGHUP"),
            libc::SIGTTIN if self.stop.is_none() && self.desired < MAX_WORKERS => {
                self.desired += 1;
                self.log.info(&format!("SIGTTIN: {} workers", self.desired));
                self.spawn(self.desired - 1, self.reloading);
            }
            libc::SIGTTOU if self.stop.is_none() && self.desired > 1 => {
                self.desired -= 1;
                self.log.info(&format!("SIGTTOU: {} workers", self.desired));
                let slot = self.desired;
                for child in &mut self.children {
                    if child.slot == slot && child.phase != Phase::Stopping {
                        child.phase = Phase::Stopping;
                        let _ = process::send_signal(child.pid, libc::SIGTERM);
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn stop_all(&mut self, sig: i32) {
        for child in &mut self.children {
            child.phase = Phase::Stopping;
            let _ = process::send_signal(child.pid, sig);
        }
    }
}
