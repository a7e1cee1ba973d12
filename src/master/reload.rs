//! Graceful reloads (SIGHUP, `--reload`): a new generation of workers starts, and the old
//! one stops once every new worker accepts. `--reload` notices that a Python file under the
//! watched directories was added, removed or changed, by comparing modification times
//! (polled, so it works on every platform).

use super::supervisor::{Master, Phase, WorkerBody};
use evserver_platform::{process, systemd};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Files beyond this many are not watched (a huge tree would make each poll slow).
const MAX_FILES: usize = 20_000;

/// Directory names never descended into.
fn skipped(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "__pycache__" | "node_modules" | "site-packages" | "dist-packages" | "target"
        )
}

/// The watched files and their modification times.
pub struct Watcher {
    roots: Vec<PathBuf>,
    seen: HashMap<PathBuf, SystemTime>,
}

impl Watcher {
    pub fn new(roots: Vec<PathBuf>) -> Watcher {
        let seen = snapshot(&roots);
        Watcher { roots, seen }
    }

    pub fn file_count(&self) -> usize {
        self.seen.len()
    }

    /// The first file that changed since the last call, if any.
    pub fn changed(&mut self) -> Option<PathBuf> {
        let now = snapshot(&self.roots);
        let found = now
            .iter()
            .find(|(path, mtime)| self.seen.get(*path) != Some(mtime))
            .map(|(path, _)| path.clone())
            .or_else(|| self.seen.keys().find(|p| !now.contains_key(*p)).cloned());
        self.seen = now;
        found
    }
}

fn snapshot(roots: &[PathBuf]) -> HashMap<PathBuf, SystemTime> {
    let mut seen = HashMap::new();
    for root in roots {
        walk(root, &mut seen);
    }
    seen
}

fn walk(dir: &Path, seen: &mut HashMap<PathBuf, SystemTime>) {
    // A directory inside a virtual environment holds installed packages, not the app.
    if dir.join("pyvenv.cfg").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if seen.len() >= MAX_FILES {
            return;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if !skipped(&name) {
                walk(&entry.path(), seen);
            }
        } else if name.ends_with(".py") {
            if let Ok(mtime) = entry.metadata().and_then(|m| m.modified()) {
                seen.insert(entry.path(), mtime);
            }
        }
    }
}

/// How often `--reload` looks at the files.
pub(super) const RELOAD_POLL: Duration = Duration::from_secs(1);

impl<B: WorkerBody> Master<'_, B> {
    /// Starts a new generation of workers; the old ones stop gracefully once all new ones
    /// accept connections, so no request is refused meanwhile.
    pub(super) fn begin_reload(&mut self, why: &str) {
        if self.stop.is_some() || !self.announced {
            return;
        }
        if self.reloading {
            self.log
                .info(&format!("{why}: a reload is already under way"));
            return;
        }
        self.log
            .info(&format!("{why}: starting {} fresh workers", self.desired));
        self.reloading = true;
        self.tell_service_manager(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            systemd::monotonic_usec()
        ));
        self.pending.clear();
        for slot in 0..self.desired {
            self.spawn(slot, true);
        }
    }

    pub(super) fn finish_reload(&mut self) {
        self.reloading = false;
        let mut retired = 0;
        for child in &mut self.children {
            if child.next_generation {
                child.next_generation = false;
            } else if child.phase != Phase::Stopping {
                child.phase = Phase::Stopping;
                retired += 1;
                let _ = process::send_signal(child.pid, libc::SIGTERM);
            }
        }
        self.restarts += retired;
        self.log.info(&format!(
            "reload done: {retired} old workers stopping gracefully"
        ));
        self.tell_service_manager("READY=1");
    }

    pub(super) fn abort_reload(&mut self, name: &str) {
        self.reloading = false;
        self.log.error(&format!(
            "reload failed ({name} did not boot); the running workers stay"
        ));
        for child in &mut self.children {
            if child.next_generation {
                child.next_generation = false;
                child.phase = Phase::Stopping;
                let _ = process::send_signal(child.pid, libc::SIGKILL);
            }
        }
    }

    pub(super) fn poll_reload(&mut self) {
        let now = Instant::now();
        if now < self.next_reload_poll {
            return;
        }
        self.next_reload_poll = now + RELOAD_POLL;
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        if let Some(path) = watcher.changed() {
            let why = format!("{} changed", path.display());
            self.begin_reload(&why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_changed_added_and_removed_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app.py");
        std::fs::write(&app, "x = 1\n").unwrap();
        std::fs::create_dir(dir.path().join("__pycache__")).unwrap();
        let mut w = Watcher::new(vec![dir.path().to_path_buf()]);
        assert_eq!(w.file_count(), 1);
        assert_eq!(w.changed(), None);
        std::fs::write(dir.path().join("notes.txt"), "not python").unwrap();
        std::fs::write(dir.path().join("__pycache__/x.py"), "skipped").unwrap();
        assert_eq!(w.changed(), None);
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&app)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(w.changed(), Some(app.clone()));
        assert_eq!(w.changed(), None);
        let new = dir.path().join("new.py");
        std::fs::write(&new, "").unwrap();
        assert_eq!(w.changed(), Some(new.clone()));
        std::fs::remove_file(&new).unwrap();
        assert_eq!(w.changed(), Some(new));
    }
}
