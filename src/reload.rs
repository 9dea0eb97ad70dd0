//! Hot reload: a file change, SIGHUP or `POST /admin/reload` loads the config file again,
//! validates it fully, and only then swaps the whole snapshot. An invalid file changes
//! nothing: the running config stays, the errors are logged with line and column, and the
//! failed reload is counted. Provider pools of unchanged providers (and their health) stay.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{self, Snapshot, SnapshotStore};
use crate::metrics::metrics;
use crate::pools::ProviderPools;

/// What a successful reload changed.
#[derive(Debug, Default, serde::Serialize)]
pub struct ReloadReport {
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
}

pub struct Reloader {
    path: Option<PathBuf>,
    store: Arc<SnapshotStore>,
    pools: Arc<ProviderPools>,
    /// Called with each snapshot about to be swapped in: seeds the spend of keys the
    /// budgets do not track yet (a static key added, or brought back after a restart).
    seed_keys: Option<KeySeeder>,
    /// One reload at a time: a file event and a SIGHUP together must not interleave.
    lock: Mutex<()>,
}

/// See [`Reloader::with_key_seeder`].
pub type KeySeeder = Box<dyn Fn(&Snapshot) + Send + Sync>;

/// A SIGHUP's default action ends the process, and the reload service starts listening for
/// it only once the server runs, after the ledger, Redis and (on an upgrade) the socket
/// handover: `systemctl reload` right after `start` would stop the gateway, and systemd counts
/// a death by SIGHUP as a clean exit, so it would not restart it. Ignored until then; a
/// reload asked for meanwhile is dropped (the config is being read anyway).
pub fn ignore_sighup_until_listening() {
    // SAFETY: installs the SIG_IGN disposition, no handler code; tokio's registration of its
    // own handler later replaces it.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

pub fn mark_loaded() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics().last_reload_success.set(now);
}

impl Reloader {
    pub fn new(
        path: Option<PathBuf>,
        store: Arc<SnapshotStore>,
        pools: Arc<ProviderPools>,
    ) -> Reloader {
        Reloader {
            path,
            store,
            pools,
            seed_keys: None,
            lock: Mutex::new(()),
        }
    }

    /// Before a reload swaps its snapshot in, `seed` is given it: the keys' spend so far
    /// must be known before they are served (blocking is fine: reloads run off the
    /// request path).
    pub fn with_key_seeder(mut self, seed: KeySeeder) -> Reloader {
        self.seed_keys = Some(seed);
        self
    }

    /// Loads, validates and swaps in the config file. Blocking (reads the file): call it off
    /// the request path.
    pub fn reload(&self) -> Result<ReloadReport, String> {
        self.reload_or_check(false)
    }

    /// Validates the file and reports what a reload would change, without applying it.
    pub fn check(&self) -> Result<ReloadReport, String> {
        self.reload_or_check(true)
    }

    fn reload_or_check(&self, dry_run: bool) -> Result<ReloadReport, String> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.path else {
            return Err("this instance runs a built-in config; there is no file to reload".into());
        };
        let loaded = match config::load_file(path) {
            Ok(l) => l,
            Err(e) if dry_run => return Err(e.to_string()),
            Err(e) => {
                metrics().reloads.with_label_values(&["invalid"]).inc();
                log::error!("config reload refused, the running config stays:\n{e}");
                return Err(e.to_string());
            }
        };
        let current = self.store.current();
        let report = report(&current, &loaded);
        if dry_run {
            return Ok(report);
        }
        if let Some(seed) = &self.seed_keys {
            seed(&loaded.snapshot);
        }
        self.pools.sync(&loaded.snapshot);
        self.store.replace(loaded.snapshot);
        metrics().reloads.with_label_values(&["success"]).inc();
        mark_loaded();
        log::info!(
            "config reloaded from {}: {}",
            path.display(),
            if report.changes.is_empty() {
                "no changes".to_string()
            } else {
                report.changes.join("; ")
            }
        );
        // A file change or SIGHUP has no one to answer but the log: a provider skipped for an
        // unset key variable, or a setting that waits for a restart, must show there.
        for warning in &report.warnings {
            log::warn!("config reload: {warning}");
        }
        Ok(report)
    }
}

/// What replacing `current` by `next` changes, and what to warn the operator about.
pub fn report(current: &Snapshot, next: &config::Loaded) -> ReloadReport {
    let mut report = ReloadReport {
        changes: diff(current, &next.snapshot),
        warnings: next
            .warnings
            .iter()
            .map(|w| w.located(&next_source(next)))
            .collect(),
    };
    if next.snapshot.server.listen != current.server.listen {
        report.warnings.push(
            "server.listen changed: listeners change only on restart or graceful upgrade".into(),
        );
    }
    let (old, new) = (&current.server, &next.snapshot.server);
    if (old.threads, old.work_stealing) != (new.threads, new.work_stealing) {
        report.warnings.push(
            "server.threads or server.work_stealing changed: the runtime changes only on \
             restart or graceful upgrade"
                .into(),
        );
    }
    for setting in startup_settings_changed(current, &next.snapshot) {
        report.warnings.push(format!(
            "{setting} changed: it is read at startup only and changes on restart or \
             graceful upgrade; the running one stays"
        ));
    }
    report
}

/// The settings besides `listen`, `threads` and `work_stealing` that the server, the ledger
/// and the limits take once at startup: a reload swaps in a snapshot holding the new value,
/// but nothing reads it again.
fn startup_settings_changed(old: &Snapshot, new: &Snapshot) -> Vec<&'static str> {
    let (os, ns) = (&old.server, &new.server);
    let (ost, nst) = (&old.storage, &new.storage);
    [
        ("server.admin_listen", os.admin_listen != ns.admin_listen),
        (
            "server.metrics_listen",
            os.metrics_listen != ns.metrics_listen,
        ),
        ("server.grace_period", os.grace_period != ns.grace_period),
        ("server.pid_file", os.pid_file != ns.pid_file),
        ("server.upgrade_sock", os.upgrade_sock != ns.upgrade_sock),
        ("storage.database_url", ost.database_url != nst.database_url),
        ("storage.redis_url", ost.redis_url != nst.redis_url),
        (
            "storage.redis_failure",
            ost.redis_failure != nst.redis_failure,
        ),
        (
            "mock.listen",
            old.mock.as_ref().map(|m| &m.listen) != new.mock.as_ref().map(|m| &m.listen),
        ),
    ]
    .into_iter()
    .filter_map(|(setting, changed)| changed.then_some(setting))
    .collect()
}

fn next_source(next: &config::Loaded) -> String {
    next.snapshot
        .source
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string())
}

/// Models and providers added, removed or changed between two snapshots.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let (oc, nc) = (&old.catalog, &new.catalog);
    for id in nc
        .providers
        .keys()
        .filter(|id| !oc.providers.contains_key(*id))
    {
        out.push(format!("provider {id} added"));
    }
    for id in oc
        .providers
        .keys()
        .filter(|id| !nc.providers.contains_key(*id))
    {
        out.push(format!("provider {id} removed"));
    }
    for (id, p) in &nc.providers {
        if let Some(o) = oc.providers.get(id) {
            if format!("{o:?}") != format!("{p:?}") {
                out.push(format!("provider {id} changed"));
            }
        }
    }
    for id in nc.models.keys().filter(|id| !oc.models.contains_key(*id)) {
        out.push(format!("model {id} added"));
    }
    for id in oc.models.keys().filter(|id| !nc.models.contains_key(*id)) {
        out.push(format!("model {id} removed"));
    }
    for (id, m) in &nc.models {
        if let Some(o) = oc.models.get(id) {
            if format!("{o:?}") != format!("{m:?}") {
                out.push(format!("model {id} changed"));
            }
        }
    }
    if old.keys.len() != new.keys.len() {
        out.push(format!("keys: {} → {}", old.keys.len(), new.keys.len()));
    }
    out
}

/// Reloads on file changes (debounced) and SIGHUP.
pub struct ReloadService {
    reloader: Arc<Reloader>,
    /// File changes, from the watch `new` armed; taken by `start`.
    changes: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<()>>>,
}

const DEBOUNCE: Duration = Duration::from_millis(150);

impl ReloadService {
    /// Arms the file watch now, before the server starts accepting: a change made as soon as
    /// the gateway answers is not missed (armed in `start`, it raced the listeners; a
    /// test under load changed the file first). Without `watch_files` (`serve --no-watch`)
    /// only SIGHUP and the admin API reload.
    pub fn new(reloader: Arc<Reloader>, watch_files: bool) -> ReloadService {
        let (tx, rx) = tokio::sync::mpsc::channel::<()>(16);
        if watch_files {
            watch_config_files(&reloader, tx);
        }
        ReloadService {
            reloader,
            changes: std::sync::Mutex::new(Some(rx)),
        }
    }

    async fn reload(&self) {
        let reloader = self.reloader.clone();
        let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
    }
}

/// Whether a change to `changed` (in a watched directory) may change the config: the main
/// file, the file it links to, a credential file, a YAML file in an include directory, or
/// Kubernetes' `..data` symlink, which a ConfigMap or Secret volume swaps by rename to update
/// every file at once (the files themselves are symlinks through it and see no event of
/// their own).
fn is_config_change(
    changed: &std::path::Path,
    main_file: Option<&std::ffi::OsStr>,
    exact_files: &[std::path::PathBuf],
    include_dirs: &[std::path::PathBuf],
) -> bool {
    let name = changed.file_name();
    name.is_some_and(|n| Some(n) == main_file || n == "..data")
        || exact_files.iter().any(|f| f == changed)
        || (changed
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml")
            && include_dirs.iter().any(|d| changed.starts_with(d)))
}

/// Watches the main file's directory and those of its included and credential files
/// (`config_watch`): a change to the main file, a credential file or any YAML file in an
/// include directory sends on `tx` (include globs that gain a new directory, and credential
/// files a reload adds, need a SIGHUP or a restart).
fn watch_config_files(reloader: &Reloader, tx: tokio::sync::mpsc::Sender<()>) {
    let Some(path) = reloader.path.as_ref() else {
        return;
    };
    let dir_of = |p: &std::path::Path| {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf()
    };
    let mut include_dirs: Vec<std::path::PathBuf> = reloader
        .store
        .current()
        .included_files
        .iter()
        .map(|f| dir_of(f))
        .collect();
    include_dirs.sort();
    include_dirs.dedup();
    let mut dirs = vec![dir_of(path)];
    // Files followed by their exact path, as the watch reports it (its folder joined with its
    // name, so `token` is seen as `./token`).
    let mut exact_files: Vec<std::path::PathBuf> = Vec::new();
    // A config that is a link into another folder changes there: watch that folder too (a
    // Kubernetes `..data` link stays in the link's folder and is seen there).
    let link_target = std::fs::canonicalize(path)
        .ok()
        .filter(|t| std::fs::canonicalize(dir_of(path)).ok() != Some(dir_of(t)));
    if let Some(target) = link_target {
        dirs.push(dir_of(&target));
        exact_files.push(target);
    }
    for secret in &reloader.store.current().secret_files {
        if let Some(name) = secret.file_name() {
            dirs.push(dir_of(secret));
            exact_files.push(dir_of(secret).join(name));
        }
    }
    dirs.extend(include_dirs.iter().cloned());
    dirs.sort();
    dirs.dedup();
    let file = path.file_name().map(|f| f.to_owned());
    crate::config_watch::watch(
        &dirs,
        move |p| is_config_change(p, file.as_deref(), &exact_files, &include_dirs),
        move || {
            let _ = tx.try_send(());
        },
    );
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self.changes.lock().ok().and_then(|mut c| c.take());
        // Started once; a second start would have no watch of its own.
        let Some(mut rx) = taken else { return };
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("SIGHUP reload unavailable: {e}");
                None
            }
        };
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    // Let a burst of writes settle, then reload once.
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                    self.reload().await;
                }
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    log::info!("SIGHUP: reloading the config");
                    self.reload().await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_config_change, report};
    use crate::config;
    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};

    #[test]
    fn config_changes_are_the_main_file_include_yaml_credentials_and_kubernetes_data_swaps() {
        let main = Some(OsStr::new("switchyard.yaml"));
        let includes = [PathBuf::from("/etc/switchyard/models")];
        let exact = [PathBuf::from("/run/secrets/vertex-token")];
        let yes = [
            "/run/secrets/vertex-token",
            "/etc/switchyard/switchyard.yaml",
            "/etc/switchyard/models/openai.yaml",
            "/etc/switchyard/models/extra.yml",
            "/etc/switchyard/..data",
        ];
        let no = [
            "/etc/switchyard/ledger.db",
            "/etc/switchyard/ledger.db-wal",
            "/etc/switchyard/gateway.log",
            "/etc/switchyard/other.yaml",
            "/etc/switchyard/models/notes.txt",
            "/etc/switchyard/..data_tmp",
            "/run/secrets/vertex-token.tmp",
            "/run/secrets/other-token",
        ];
        for p in yes {
            assert!(
                is_config_change(Path::new(p), main, &exact, &includes),
                "{p}"
            );
        }
        for p in no {
            assert!(
                !is_config_change(Path::new(p), main, &exact, &includes),
                "{p}"
            );
        }
    }

    #[test]
    fn a_reload_changing_the_runtime_warns_that_it_waits_for_a_restart() {
        let load = |server: &str| {
            config::load_str(&format!("server:\n{server}"), "t.yaml", &|_| None).unwrap()
        };
        let current = load("  threads: 2\n").snapshot;
        let warned = |next: &config::Loaded| {
            report(&current, next)
                .warnings
                .iter()
                .any(|w| w.contains("server.threads or server.work_stealing changed"))
        };
        assert!(!warned(&load("  threads: 2\n")));
        assert!(warned(&load("  threads: 4\n")));
        assert!(warned(&load("  threads: 2\n  work_stealing: true\n")));
    }

    #[test]
    fn a_reload_changing_a_startup_setting_warns_that_it_waits_for_a_restart() {
        let load = |text: &str| config::load_str(text, "t.yaml", &|_| None).unwrap();
        let base = "server:\n  grace_period: 30s\n";
        let current = load(base).snapshot;
        let warnings = |text: &str| report(&current, &load(text)).warnings;
        assert_eq!(warnings(base), Vec::<String>::new());
        for (text, setting) in [
            ("server:\n  grace_period: 5s\n", "server.grace_period"),
            (
                "server:\n  grace_period: 30s\n  admin_listen: \"127.0.0.1:8081\"\n",
                "server.admin_listen",
            ),
            (
                "server:\n  grace_period: 30s\n  metrics_listen: \"127.0.0.1:9090\"\n",
                "server.metrics_listen",
            ),
            (
                "server:\n  grace_period: 30s\n  pid_file: /run/s.pid\n",
                "server.pid_file",
            ),
            (
                "server:\n  grace_period: 30s\n  upgrade_sock: /run/s.sock\n",
                "server.upgrade_sock",
            ),
            (
                "server:\n  grace_period: 30s\nstorage:\n  database_url: \"sqlite://other.db\"\n",
                "storage.database_url",
            ),
            (
                "server:\n  grace_period: 30s\nstorage:\n  redis_url: \"redis://127.0.0.1:6379\"\n",
                "storage.redis_url",
            ),
            (
                "server:\n  grace_period: 30s\nstorage:\n  redis_failure: closed\n",
                "storage.redis_failure",
            ),
            (
                "server:\n  grace_period: 30s\nmock:\n  listen: \"127.0.0.1:18080\"\n",
                "mock.listen",
            ),
        ] {
            let w = warnings(text);
            assert!(
                w.iter()
                    .any(|w| w.starts_with(&format!("{setting} changed")) && w.contains("restart")),
                "{setting}: {w:?}"
            );
        }
    }
}
