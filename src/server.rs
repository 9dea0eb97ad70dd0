//! Assembling and running the Pingora server: listeners, threads, graceful shutdown, and the
//! in-process mock provider when the config asks for one (the demo).

use pingora::proxy::http_proxy_service;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use std::sync::Arc;

use crate::admin::{AdminApp, MetricsApp};
use crate::config::{Snapshot, SnapshotStore};
use crate::mock::MockServer;
use crate::pools::{HealthCheckService, ProviderPools};
use crate::proxy::Gateway;
use crate::reload::{ReloadService, Reloader};
use crate::routing::HealthBook;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

pub struct ServeOptions {
    /// Take over the listeners of a running instance (graceful upgrade).
    pub upgrade: bool,
    pub daemon: bool,
}

fn server_conf(snapshot: &Snapshot, opts: &ServeOptions) -> ServerConf {
    let server = &snapshot.server;
    let port = server
        .listen
        .first()
        .and_then(|a| a.rsplit(':').next())
        .unwrap_or("8080")
        .to_string();
    ServerConf {
        threads: server.threads,
        daemon: opts.daemon,
        grace_period_seconds: Some(server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(server.grace_period.as_secs().max(1)),
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

/// Runs the gateway until it is told to stop. Never returns.
pub fn serve(snapshot: Snapshot, opts: ServeOptions) -> ! {
    let conf = server_conf(&snapshot, &opts);
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: opts.daemon,
        ..Opt::default()
    };
    // The demo's mock provider lives as long as the process.
    let _mock = snapshot
        .mock
        .as_ref()
        .map(|m| match MockServer::start(&m.listen) {
            Ok(mock) => {
                log::info!("mock provider listening on {}", mock.base_url());
                mock
            }
            Err(e) => {
                eprintln!("error: cannot start the mock provider on {}: {e}", m.listen);
                std::process::exit(1);
            }
        });
    let listen = snapshot.server.listen.clone();
    let metrics_listen = snapshot.server.metrics_listen.clone();
    let admin_listen = snapshot.server.admin_listen.clone();
    let source = snapshot.source.clone();
    let pools = Arc::new(ProviderPools::default());
    pools.sync(&snapshot);
    let store = Arc::new(SnapshotStore::new(snapshot));
    crate::reload::mark_loaded();
    let health = Arc::new(HealthBook::default());
    let reloader = Arc::new(Reloader::new(source, store.clone(), pools.clone()));

    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    server.add_service(background_service(
        "provider health",
        HealthCheckService::new(pools.clone()),
    ));
    server.add_service(background_service(
        "config reload",
        ReloadService::new(reloader.clone()),
    ));
    if let Some(addr) = metrics_listen {
        let mut svc = Service::new(
            "metrics".to_string(),
            MetricsApp::new(pools.clone(), health.clone()),
        );
        svc.add_tcp(&addr);
        log::info!("metrics on http://{addr}/metrics");
        server.add_service(svc);
    }
    if let Some(addr) = admin_listen {
        let mut svc = Service::new("admin".to_string(), AdminApp::new(store.clone(), reloader));
        svc.add_tcp(&addr);
        log::info!("admin API on http://{addr}");
        server.add_service(svc);
    }
    let gateway = Gateway::new(store, health, pools);
    let mut proxy = http_proxy_service(&server.configuration, gateway);
    for addr in &listen {
        proxy.add_tcp(addr);
        log::info!("switchyard listening on http://{addr}/v1");
    }
    server.add_service(proxy);
    server.run_forever()
}
