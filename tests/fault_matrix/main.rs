//! The fault matrix: every upstream fault and every client fault, what the client sees, how
//! failover behaves, and the one ledger record each request leaves.
//!
//! The tables drive the tests (`upstream_table.rs`, `client.rs`); `docs/reliability.md` holds
//! the same tables, rendered by `doc::render_doc_tables` and checked by
//! `the_reliability_doc_shows_this_matrix` (run it with `UPDATE_RELIABILITY_DOC=1` to rewrite
//! the doc after changing a table).

#[path = "../common/mod.rs"]
mod common;

mod client;
mod doc;
mod generation_ids;
mod stream_endings;
mod upstream;
mod upstream_table;
