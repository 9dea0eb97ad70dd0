//! `GET /metrics` on `server.metrics_listen`.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

use crate::ledger::LedgerWriter;
use crate::metrics::metrics;
use crate::pools::ProviderPools;
use crate::routing::HealthBook;

pub struct MetricsApp {
    pools: Arc<ProviderPools>,
    health: Arc<HealthBook>,
    writer: LedgerWriter,
}

impl MetricsApp {
    pub fn new(
        pools: Arc<ProviderPools>,
        health: Arc<HealthBook>,
        writer: LedgerWriter,
    ) -> MetricsApp {
        MetricsApp {
            pools,
            health,
            writer,
        }
    }

    /// The ledger writer keeps its own counters; the scrape copies them.
    fn refresh_ledger_gauges(&self) {
        let m = metrics();
        let stats = self.writer.stats();
        m.ledger_queue_depth.set(stats.queued as i64);
        for (fate, n) in [
            ("written", stats.written),
            ("dropped", stats.dropped),
            ("abandoned", stats.abandoned),
            ("write_error", stats.write_errors),
        ] {
            catch_up(&m.ledger_records.with_label_values(&[fate]), n);
        }
        let dropped = crate::log_batch::installed().map_or(0, |b| b.dropped());
        catch_up(&m.log_lines_dropped, dropped);
    }

    /// Health gauges are read at scrape time rather than kept in step on every change.
    fn refresh_health_gauges(&self) {
        let m = metrics();
        m.backend_healthy.reset();
        for pool in self.pools.all() {
            for (index, addr, healthy) in pool.backend_health() {
                let backend = format!("{index}:{addr}");
                m.backend_healthy
                    .with_label_values(&[pool.provider.id.as_str(), backend.as_str()])
                    .set(i64::from(healthy));
            }
        }
        m.breaker_open.reset();
        for ((provider, model), open) in self.health.breakers() {
            m.breaker_open
                .with_label_values(&[provider.as_str(), model.as_str()])
                .set(i64::from(open));
        }
    }
}

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let builder = Response::builder();
        if path != "/metrics" {
            return builder
                .status(404)
                .header("content-type", "text/plain")
                .body(b"not found: try /metrics\n".to_vec())
                .unwrap_or_default();
        }
        self.refresh_health_gauges();
        self.refresh_ledger_gauges();
        let body = crate::metrics::render().into_bytes();
        builder
            .status(200)
            .header("content-type", "text/plain; version=0.0.4")
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}

/// Raises `counter` to `total`, a count kept elsewhere. One scrape at a time: two (an HA
/// pair of Prometheus servers) reading the same old value would both add the difference,
/// and the counter would stay inflated for good.
fn catch_up(counter: &prometheus::IntCounter, total: u64) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _copying = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}
