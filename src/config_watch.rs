//! Noticing config file changes: a watch on each directory that holds a config file, for the
//! events that finish a change only.
//!
//! Directories, not files: editors replace files by rename, which a watch on the file misses.
//! Finished changes only (a file closed after writing, renamed in, created, deleted): the
//! ledger database and the log often share the config's directory, and a watch that also
//! reported each write would wake a thread on every request (measured in the load bench
//! with `notify`'s default inotify mask: about one context switch per request).

use std::path::{Path, PathBuf};

/// Calls `on_change` (from a thread of its own) whenever a file for which `relevant` holds
/// is changed in one of `dirs`. `false` when no watch could be set up (logged); SIGHUP and
/// the admin reload still work then.
pub fn watch(
    dirs: &[PathBuf],
    relevant: impl Fn(&Path) -> bool + Send + 'static,
    on_change: impl Fn() + Send + 'static,
) -> bool {
    match imp::watch(dirs, relevant, on_change) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("config file watch unavailable: {e}");
            false
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use inotify::{Inotify, WatchMask};
    use std::path::{Path, PathBuf};

    pub fn watch(
        dirs: &[PathBuf],
        relevant: impl Fn(&Path) -> bool + Send + 'static,
        on_change: impl Fn() + Send + 'static,
    ) -> std::io::Result<()> {
        let mut inotify = Inotify::init()?;
        let mask = WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::CREATE
            | WatchMask::DELETE;
        let mut watched = Vec::new();
        for dir in dirs {
            match inotify.watches().add(dir, mask) {
                Ok(wd) => watched.push((wd, dir.clone())),
                Err(e) => log::warn!("cannot watch {}: {e}", dir.display()),
            }
        }
        std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    let events = match inotify.read_events_blocking(&mut buffer) {
                        Ok(events) => events,
                        Err(e) => {
                            log::warn!("config file watch stopped: {e}");
                            return;
                        }
                    };
                    let changed = events.into_iter().any(|event| {
                        let dir = watched.iter().find(|(wd, _)| *wd == event.wd);
                        match (dir, event.name) {
                            (Some((_, dir)), Some(name)) => relevant(&dir.join(name)),
                            _ => false,
                        }
                    });
                    if changed {
                        on_change();
                    }
                }
            })?;
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use notify::{RecursiveMode, Watcher};
    use std::path::{Path, PathBuf};

    pub fn watch(
        dirs: &[PathBuf],
        relevant: impl Fn(&Path) -> bool + Send + 'static,
        on_change: impl Fn() + Send + 'static,
    ) -> notify::Result<()> {
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if !event.kind.is_access() && event.paths.iter().any(|p| relevant(p)) {
                    on_change();
                }
            })?;
        for dir in dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        // Lives as long as the process, like the Linux watch thread.
        std::mem::forget(watcher);
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn reports_finished_changes_of_relevant_files_and_ignores_appends() {
        let dir = std::env::temp_dir().join(format!("switchyard-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yaml");
        std::fs::write(&config, "a: 1\n").unwrap();
        let log = dir.join("gateway.log");
        let mut log_file = std::fs::File::create(&log).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        assert!(watch(
            std::slice::from_ref(&dir),
            |p| p.extension().is_some_and(|e| e == "yaml"),
            move || {
                let _ = tx.lock().unwrap().send(());
            },
        ));
        // Writes to an open file that is not config: nothing.
        use std::io::Write;
        for _ in 0..100 {
            writeln!(log_file, "a log line").unwrap();
        }
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        // A config rewritten in place, then replaced by rename: one report each.
        std::fs::write(&config, "a: 2\n").unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let tmp = dir.join("config.yaml.tmp");
        std::fs::write(&tmp, "a: 3\n").unwrap();
        while rx.try_recv().is_ok() {}
        std::fs::rename(&tmp, &config).unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
