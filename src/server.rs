//! Assembling and running the Pingora server: listeners, threads, background services,
//! graceful shutdown, and the in-process mock provider when the config asks for one (demo).

use pingora::proxy::http_proxy_service;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{AdminApp, MetricsApp};
use crate::auth::{KeyHash, LimitReset};
use crate::config::{Snapshot, SnapshotStore};
use crate::keystore::{KeyRefreshService, KeyStore};
use crate::ledger::{block_on, Ledger, WriterConfig};
use crate::limits::{Budgets, Limiter};
use crate::metering::Cost;
use crate::mock::MockServer;
use crate::pools::{HealthCheckService, ProviderPools};
use crate::proxy::{Gateway, GatewayParts};
use crate::reload::{ReloadService, Reloader};
use crate::routing::HealthBook;

/// The ledger file when `storage.database_url` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/switchyard.db";
/// How long shutdown waits for queued generation records to reach the database.
const LEDGER_FLUSH_TIMEOUT: Duration = Duration::from_secs(15);

pub struct ServeOptions {
    /// Take over the listeners of a running instance (graceful upgrade).
    pub upgrade: bool,
    /// Reload when the config files change (besides SIGHUP and the admin API).
    pub watch_config: bool,
}

/// How long Pingora's runtimes may take to stop once the grace period is over.
const RUNTIME_SHUTDOWN_SECS: u64 = 5;

fn server_conf(snapshot: &Snapshot) -> ServerConf {
    let server = &snapshot.server;
    let port = server
        .listen
        .first()
        .and_then(|a| a.rsplit(':').next())
        .unwrap_or("8080")
        .to_string();
    ServerConf {
        threads: server.threads,
        work_stealing: server.work_stealing,
        grace_period_seconds: Some(server.grace_period.as_secs()),
        // After the grace period (which Pingora waits out whole) requests have had their
        // time: the runtimes get a few seconds more, not a second grace period.
        graceful_shutdown_timeout_seconds: Some(RUNTIME_SHUTDOWN_SECS),
        pid_file: server
            .pid_file
            .clone()
            .unwrap_or_else(|| format!("/tmp/switchyard-{port}.pid")),
        upgrade_sock: server
            .upgrade_sock
            .clone()
            .unwrap_or_else(|| format!("/tmp/switchyard-{port}-upgrade.sock")),
        ..ServerConf::default()
    }
}

/// Opens the ledger, loads the admin API's keys and seeds every key's spend for the
/// current periods, so budgets hold across restarts.
fn open_ledger(snapshot: &Snapshot) -> Result<(Ledger, Arc<KeyStore>, Arc<Budgets>), String> {
    let url = snapshot
        .storage
        .database_url
        .as_deref()
        .unwrap_or(DEFAULT_DATABASE_URL);
    let ledger = Ledger::open(url).map_err(|e| {
        format!(
            "cannot open the ledger at {}: {e}",
            crate::ledger::redacted_url(url)
        )
    })?;
    let keys = Arc::new(KeyStore::new(ledger.clone()));
    block_on(keys.refresh()).map_err(|e| format!("cannot load API keys from the ledger: {e}"))?;
    let budgets = Arc::new(Budgets::default());
    let all_keys: Vec<_> = snapshot
        .keys
        .iter()
        .cloned()
        .chain(keys.dynamic_keys())
        .collect();
    seed_new_keys(&ledger, &budgets, all_keys.iter().map(|k| &k.hash))?;
    Ok((ledger, keys, budgets))
}

/// Seeds the spend of each key the budgets do not track yet from the ledger, for the
/// current periods; a key they track keeps its figure (which may be ahead of the ledger's
/// queued writes). Blocking: at startup, and in reloads (off the request path).
fn seed_new_keys<'a>(
    ledger: &Ledger,
    budgets: &Budgets,
    keys: impl Iterator<Item = &'a KeyHash>,
) -> Result<(), String> {
    let now = crate::ledger::now_ms();
    for key in keys.filter(|k| !budgets.tracks(k)) {
        for reset in [
            LimitReset::Daily,
            LimitReset::Weekly,
            LimitReset::Monthly,
            LimitReset::Never,
        ] {
            let spent = block_on(ledger.spend_for(key, reset))
                .map_err(|e| format!("reading spend: {e}"))?;
            budgets.seed(key, reset, (now / 1000) as u64, Cost(spent));
        }
    }
    Ok(())
}

/// Every address the gateway will listen on can be bound now.
fn check_listeners_free(snapshot: &Snapshot) -> Result<(), String> {
    let server = &snapshot.server;
    let all = server
        .listen
        .iter()
        .chain(&server.metrics_listen)
        .chain(&server.admin_listen);
    for addr in all {
        std::net::TcpListener::bind(addr.as_str())
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    }
    Ok(())
}

/// Runs the gateway until it is told to stop, then flushes the ledger.
pub fn serve(snapshot: Snapshot, opts: ServeOptions) -> Result<(), String> {
    if !opts.upgrade {
        // Pingora binds in a task of its own and a failure there only ends that task: the
        // process would run on, exit code 0, without the listener. An upgrade takes its
        // sockets from the running process instead.
        check_listeners_free(&snapshot)?;
    }
    let conf = server_conf(&snapshot);
    let opt = Opt {
        upgrade: opts.upgrade,
        ..Opt::default()
    };
    // The demo's mock provider lives as long as the process.
    let _mock = match &snapshot.mock {
        Some(m) => {
            let mock = MockServer::start(&m.listen)
                .map_err(|e| format!("cannot start the mock provider on {}: {e}", m.listen))?;
            log::info!("mock provider listening on {}", mock.base_url());
            Some(mock)
        }
        None => None,
    };
    let (ledger, keys, budgets) = open_ledger(&snapshot)?;
    let limits = Limiter::from_storage(&snapshot.storage, budgets.clone(), &ledger)?;
    let writer = ledger.writer(WriterConfig::default());

    let listen = snapshot.server.listen.clone();
    let metrics_listen = snapshot.server.metrics_listen.clone();
    let admin_listen = snapshot.server.admin_listen.clone();
    let source = snapshot.source.clone();
    let pools = Arc::new(ProviderPools::default());
    pools.sync(&snapshot);
    let store = Arc::new(SnapshotStore::new(snapshot));
    crate::reload::mark_loaded();
    let health = Arc::new(HealthBook::default());
    let seeder = {
        let (ledger, budgets) = (ledger.clone(), budgets.clone());
        move |next: &Snapshot| {
            if let Err(e) = seed_new_keys(&ledger, &budgets, next.keys.iter().map(|k| &k.hash)) {
                log::warn!("reload: the spend of added keys could not be read: {e}");
            }
        }
    };
    let reloader = Arc::new(
        Reloader::new(source, store.clone(), pools.clone()).with_key_seeder(Box::new(seeder)),
    );

    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    server.add_service(background_service(
        "provider health",
        HealthCheckService::new(pools.clone()),
    ));
    server.add_service(background_service(
        "config reload",
        ReloadService::new(reloader.clone(), opts.watch_config),
    ));
    server.add_service(background_service(
        "key refresh",
        KeyRefreshService::new(keys.clone()),
    ));
    if let Some(addr) = metrics_listen {
        let app = MetricsApp::new(pools.clone(), health.clone(), writer.clone());
        let mut svc = Service::new("metrics".to_string(), app);
        svc.add_tcp(&addr);
        log::info!("metrics on http://{addr}/metrics");
        server.add_service(svc);
    }
    if let Some(addr) = admin_listen {
        let app = AdminApp::new(
            store.clone(),
            reloader,
            ledger.clone(),
            keys.clone(),
            budgets.clone(),
        );
        let mut svc = Service::new("admin".to_string(), app);
        svc.add_tcp(&addr);
        log::info!("admin API on http://{addr}");
        server.add_service(svc);
    }
    let gateway = Gateway::new(GatewayParts {
        snapshots: store,
        health,
        pools,
        keys,
        limits: Arc::new(limits),
        ledger: ledger.clone(),
        writer: writer.clone(),
    });
    let mut proxy = http_proxy_service(&server.configuration, gateway);
    for addr in &listen {
        proxy.add_tcp(addr);
        log::info!("switchyard listening on http://{addr}/v1");
    }
    server.add_service(proxy);
    // Returns once every service has stopped: requests in flight have finished (or the grace
    // period ran out) and logged their records.
    server.run(RunArgs::default());
    if writer.clone().close_blocking(LEDGER_FLUSH_TIMEOUT) {
        let stats = writer.stats();
        log::info!(
            "ledger flushed: {} records written, {} dropped",
            stats.written,
            stats.dropped
        );
    } else {
        log::error!(
            "ledger flush timed out: queued records may be lost ({:?})",
            writer.stats()
        );
    }
    drop(ledger);
    Ok(())
}
