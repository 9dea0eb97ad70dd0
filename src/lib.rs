//! Switchyard: a self-hosted LLM gateway on Pingora.
//!
//! The dependency direction (DESIGN §1): `proxy` uses everything below it; nothing below uses
//! `proxy`. `mock` is a fake provider and shares no gateway internals.

pub mod access_log;
pub mod admin;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod cli_out;
pub mod config;
pub mod config_watch;
pub mod dialects;
pub mod keystore;
pub mod ledger;
pub mod limits;
pub mod log_batch;
pub mod logging;
pub mod metering;
pub mod metrics;
pub mod mock;
pub mod net;
pub mod pools;
pub mod proxy;
pub mod reload;
pub mod routing;
pub mod server;
