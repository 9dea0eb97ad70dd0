//! The operator-facing listeners: `/metrics` for Prometheus, and the admin API (token
//! protected; off unless `server.admin_listen` is set).

mod admin_app;
pub mod keys;
pub mod keys_cli;
mod metrics_app;

pub use admin_app::AdminApp;
pub use metrics_app::MetricsApp;
