//! The ledger against real databases: SQLite in a temp dir always, Postgres when
//! `SWITCHYARD_TEST_POSTGRES_URL` names a reachable server.

mod behaviours;
mod support;

use std::time::{Duration, Instant};

use behaviours::*;
use support::*;
use switchyard::ledger::{block_on, now_ms, Ledger, LedgerError, NewKey, WriterConfig};

// ---- SQLite ----

fn sqlite(name: &str) -> (TempDir, Ledger) {
    let dir = TempDir::new(name);
    let ledger = Ledger::open(&dir.sqlite_url()).unwrap();
    (dir, ledger)
}

#[test]
fn sqlite_record_round_trips_and_the_file_is_created_in_wal_mode() {
    let (dir, ledger) = sqlite("round-trip");
    record_round_trips(&ledger);
    assert!(dir.0.join("nested/ledger.db").is_file());
    assert!(
        dir.0.join("nested/ledger.db-wal").is_file(),
        "WAL mode keeps a -wal file beside the database"
    );
    drop(ledger);
    // Reopening runs the (already applied) migrations again without complaint.
    let again = Ledger::open(&dir.sqlite_url()).unwrap();
    assert!(block_on(again.list_keys()).unwrap().is_empty());
}

#[test]
fn sqlite_writes_a_thousand_records_exactly_once() {
    let (_dir, ledger) = sqlite("batch");
    thousand_records_each_written_once(&ledger);
}

#[test]
fn sqlite_spend_accumulates_per_period() {
    let (_dir, ledger) = sqlite("spend");
    spend_accumulates_per_period(&ledger);
}

#[test]
fn sqlite_repeated_records_are_charged_once() {
    let (_dir, ledger) = sqlite("repeat");
    repeated_records_are_charged_once(&ledger);
}

#[test]
fn sqlite_keys_round_trip() {
    let (_dir, ledger) = sqlite("keys");
    keys_round_trip(&ledger);
}

/// A key patched while another connection (the ledger's writer, say) holds the write lock
/// and commits waits its turn and succeeds. It used to read first, then fail at once with
/// SQLITE_BUSY_SNAPSHOT when the other's commit made its read stale: a random 503 to the
/// admin under traffic.
#[test]
fn sqlite_a_key_patch_waits_for_a_concurrent_writer_instead_of_failing() {
    let (dir, ledger) = sqlite("patch-busy");
    let (_, key) = block_on(ledger.create_key(NewKey::named("carol"))).unwrap();
    let other = rusqlite::Connection::open(dir.0.join("nested/ledger.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    other
        .execute("UPDATE keys SET label = label || '.'", [])
        .unwrap();
    let (locked, commit) = (Instant::now(), Duration::from_millis(300));
    let writer = std::thread::spawn(move || {
        std::thread::sleep(commit);
        other.execute_batch("COMMIT").unwrap();
    });
    let patch = switchyard::ledger::KeyPatch {
        disabled: Some(true),
        ..Default::default()
    };
    let patched = block_on(ledger.update_key(&key.hash, patch));
    writer.join().unwrap();
    let patched = patched.expect("the patch waits for the lock").unwrap();
    assert!(patched.disabled);
    assert!(
        locked.elapsed() >= commit,
        "the patch did not wait for the lock"
    );
    let stored = block_on(ledger.get_key(&key.hash)).unwrap().unwrap();
    assert!(stored.disabled);
}

#[test]
fn sqlite_close_loses_nothing() {
    let (_dir, ledger) = sqlite("close");
    close_loses_nothing(&ledger);
}

#[test]
fn unwritable_sqlite_path_drops_and_counts() {
    let dir = TempDir::new("down");
    std::fs::create_dir_all(&dir.0).unwrap();
    // A directory where the database file should be: SQLite cannot open it, whoever we
    // run as (root ignores permission bits, so a read-only folder would not do).
    let ledger = Ledger::open_lazy(&format!("sqlite://{}", dir.0.display())).unwrap();
    unavailable_database_drops_and_counts(&ledger);
}

#[test]
fn a_failing_batch_is_retried_until_the_database_comes_back() {
    let dir = TempDir::new("recover");
    // A migrated database, closed, to be moved into place later.
    let (ready, ready_url) = (
        dir.0.join("ready.db"),
        format!("sqlite://{}/ready.db", dir.0.display()),
    );
    drop(Ledger::open(&ready_url).unwrap());
    // Until then the database path is a directory, which SQLite cannot open.
    let live = dir.0.join("live.db");
    std::fs::create_dir_all(&live).unwrap();
    let ledger = Ledger::open_lazy(&format!("sqlite://{}", live.display())).unwrap();
    let writer = ledger.writer(WriterConfig {
        retry_budget: Duration::from_secs(20),
        ..fast_retries()
    });
    for i in 0..10 {
        assert!(writer.record(record(&format!("gen-recover-{i}"), [4; 32], 1, now_ms())));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer.stats().write_errors == 0 {
        assert!(
            Instant::now() < deadline,
            "the writer never tried the database"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(writer.stats().written, 0);

    std::fs::remove_dir(&live).unwrap();
    std::fs::rename(&ready, &live).unwrap();
    assert!(writer.flush_blocking(Duration::from_secs(10)));
    let stats = writer.stats();
    assert_eq!((stats.written, stats.abandoned, stats.dropped), (10, 0, 0));
    assert!(block_on(ledger.get_generation("gen-recover-9"))
        .unwrap()
        .is_some());
}

#[test]
fn closed_postgres_port_drops_and_counts() {
    let ledger = Ledger::open_lazy("postgres://switchyard@127.0.0.1:1/x").unwrap();
    unavailable_database_drops_and_counts(&ledger);
}

#[test]
fn reads_can_be_awaited_from_another_runtime() {
    let (_dir, ledger) = sqlite("runtimes");
    // As from a Pingora worker: a multi-threaded runtime that is not the ledger's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys = rt.block_on(async {
        ledger.create_key(NewKey::named("carol")).await.unwrap();
        ledger.list_keys().await.unwrap()
    });
    assert_eq!(keys.len(), 1);
    // And a writer fed from inside that runtime's tasks.
    let writer = ledger.writer(WriterConfig::default());
    let w = writer.clone();
    rt.block_on(async move {
        tokio::spawn(async move { w.record(record("gen-rt-task", [3; 32], 1, now_ms())) })
            .await
            .unwrap()
    });
    rt.block_on(writer.close());
    assert!(rt
        .block_on(ledger.get_generation("gen-rt-task"))
        .unwrap()
        .is_some());
}

#[test]
fn an_in_memory_ledger_works_across_its_connections() {
    let ledger = Ledger::open("sqlite::memory:").unwrap();
    keys_round_trip(&ledger);
    // The writer's own connection shares the database with the pool's.
    repeated_records_are_charged_once(&ledger);
    close_loses_nothing(&ledger);
}

#[test]
fn handles_and_their_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let ledger = Ledger::open("sqlite::memory:").unwrap();
    let writer = ledger.writer(WriterConfig::default());
    send_sync(&ledger);
    send_sync(&writer);
    send(&ledger.get_generation("gen-x"));
    send(&ledger.list_keys());
    send(&writer.flush());
}

#[test]
fn a_bad_database_url_is_refused() {
    assert!(matches!(
        Ledger::open("mysql://localhost/x"),
        Err(LedgerError::Invalid(_))
    ));
}

// ---- Postgres, when there is one ----

#[test]
fn postgres_behaves_like_sqlite() {
    let Some(url) = postgres_url() else { return };
    let ledger = Ledger::open(&url).unwrap();
    record_round_trips(&ledger);
    thousand_records_each_written_once(&ledger);
    spend_accumulates_per_period(&ledger);
    repeated_records_are_charged_once(&ledger);
    keys_round_trip(&ledger);
    close_loses_nothing(&ledger);
}
