//! Behaviours every ledger must show, run against each database by `main.rs`.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard::auth::{hash_secret, LimitReset};
use switchyard::ledger::{block_on, now_ms, KeyPatch, Ledger, LedgerError, NewKey, WriterConfig};

use crate::support::*;

pub fn record_round_trips(ledger: &Ledger) {
    let key = fresh_key("round-trip");
    let mut rec = record(
        &format!("gen-rt-{}", now_ms()),
        key,
        123_456_789_012_345,
        now_ms(),
    );
    rec.usage.estimated = true;
    rec.cancelled = true;
    rec.error = Some("upstream said \"no\"".into());
    rec.ttft_ms = None;
    let mut huge = record(&format!("{}-huge", rec.id), key, u128::MAX, now_ms());
    huge.finish_reason = None;

    let writer = ledger.writer(WriterConfig::default());
    assert!(writer.record(rec.clone()));
    assert!(writer.record(huge.clone()));
    assert!(writer.flush_blocking(Duration::from_secs(10)));

    assert_eq!(
        block_on(ledger.get_generation(&rec.id)).unwrap(),
        Some(rec.clone())
    );
    // A u128 cost far beyond any integer column comes back to the last pico-USD.
    assert_eq!(
        block_on(ledger.get_generation(&huge.id)).unwrap(),
        Some(huge)
    );
    assert_eq!(
        block_on(ledger.get_generation("gen-missing")).unwrap(),
        None
    );
    assert_eq!(writer.stats().written, 2);
    block_on(writer.close());
}

pub fn thousand_records_each_written_once(ledger: &Ledger) {
    let key = fresh_key("batch");
    let at = now_ms();
    let writer = ledger.writer(WriterConfig::default());
    let ids: Vec<String> = (0..1000).map(|i| format!("gen-batch-{at}-{i}")).collect();
    for id in &ids {
        assert!(writer.record(record(id, key, 1_000, at)));
    }
    // The same record again (a proxy bug, or a batch retried after a lost commit ack):
    // stored and charged once.
    assert!(writer.record(record(&ids[0], key, 1_000, at)));
    assert!(writer.flush_blocking(Duration::from_secs(30)));

    for id in &ids {
        assert!(
            block_on(ledger.get_generation(id)).unwrap().is_some(),
            "{id} missing"
        );
    }
    assert_eq!(
        block_on(ledger.spend_at(&key, LimitReset::Daily, at)).unwrap(),
        1000 * 1_000
    );
    let stats = writer.stats();
    assert_eq!(
        (stats.written, stats.dropped, stats.abandoned, stats.queued),
        (1001, 0, 0, 0)
    );
}

/// The writer's transaction on its own (`Ledger::write_batch`): an id listed twice in a
/// batch, and a batch written again whole (as after a lost commit acknowledgement), are
/// stored and charged once; the new records of a partly repeated batch are charged.
pub fn repeated_records_are_charged_once(ledger: &Ledger) {
    let (key, at) = (fresh_key("repeat"), now_ms());
    let id = |i: usize| format!("gen-repeat-{at}-{}-{i}", std::process::id());
    let rec = |i: usize| record(&id(i), key, 1 + i as u128, at);
    let spent = || block_on(ledger.spend_at(&key, LimitReset::Never, at)).unwrap();

    block_on(ledger.write_batch(vec![rec(0), rec(1), rec(0)])).unwrap();
    assert_eq!(spent(), 1 + 2);
    block_on(ledger.write_batch(vec![rec(0), rec(1)])).unwrap();
    assert_eq!(spent(), 1 + 2, "a batch written twice is charged once");
    // 40 records: more than one multi-row insert, the repeated one in the second.
    let mixed: Vec<_> = (2..40).chain([1]).map(rec).collect();
    block_on(ledger.write_batch(mixed)).unwrap();
    assert_eq!(spent(), (1..=40).sum::<u128>());
    for i in 0..40 {
        let stored = block_on(ledger.get_generation(&id(i))).unwrap();
        assert_eq!(stored, Some(rec(i)), "{}", id(i));
    }
}

pub fn spend_accumulates_per_period(ledger: &Ledger) {
    use LimitReset::{Daily, Monthly, Never, Weekly};
    let (key, rich, now_key) = (fresh_key("spend"), fresh_key("rich"), fresh_key("now"));
    // Wednesday 2024-03-06 12:00 UTC.
    let wed = 1_709_726_400_000;
    let writer = ledger.writer(WriterConfig::default());
    let tag = format!("{}-{}", now_ms(), std::process::id());
    for (i, (key, cost, at)) in [
        (key, 5, wed),
        (key, 7, wed),
        (key, 11, wed - DAY_MS),     // Tuesday: same week and month
        (key, 13, wed - 7 * DAY_MS), // last week, and February
        (key, 17, wed - 400 * DAY_MS),
        (rich, u128::MAX, wed),
        (rich, 1, wed),
        (rich, 0, wed),
        (now_key, 3, now_ms()),
    ]
    .into_iter()
    .enumerate()
    {
        assert!(writer.record(record(&format!("gen-spend-{tag}-{i}"), key, cost, at)));
    }
    block_on(writer.close());

    let spend = |key, reset, at| block_on(ledger.spend_at(&key, reset, at)).unwrap();
    // Every kind of period is kept, whatever reset the key uses.
    assert_eq!(spend(key, Daily, wed), 12);
    assert_eq!(spend(key, Daily, wed - DAY_MS), 11);
    assert_eq!(spend(key, Daily, wed - 2 * DAY_MS), 0);
    assert_eq!(spend(key, Weekly, wed), 23);
    assert_eq!(spend(key, Weekly, wed - 7 * DAY_MS), 13);
    assert_eq!(spend(key, Monthly, wed), 23);
    assert_eq!(spend(key, Monthly, wed - 7 * DAY_MS), 13);
    assert_eq!(spend(key, Never, wed), 5 + 7 + 11 + 13 + 17);
    // The counter saturates rather than wrapping or failing the batch.
    assert_eq!(spend(rich, Never, wed), i64::MAX as u128);
    // `spend_for` is the period containing now.
    assert_eq!(block_on(ledger.spend_for(&now_key, Daily)).unwrap(), 3);
    assert_eq!(
        block_on(ledger.spend_for(&fresh_key("nobody"), Monthly)).unwrap(),
        0
    );
}

pub fn keys_round_trip(ledger: &Ledger) {
    let mut new = NewKey::named("bob");
    new.limit_usd = Some(12.5);
    new.limit_reset = LimitReset::Weekly;
    new.rpm = Some(60);
    new.tpm = Some(100_000);
    new.allowed_models = Some(vec!["openai/*".into()]);
    new.provider_prefs = json!({"data_collection": "deny", "order": ["openai"]});
    let (secret, created) = block_on(ledger.create_key(new)).unwrap();

    // The secret is shown once, and only its hash is kept.
    assert!(secret.starts_with("sk-sy-"));
    assert_eq!(secret.len(), 6 + 48);
    assert!(secret[6..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(created.hash, hash_secret(&secret));
    let stored = block_on(ledger.get_key(&created.hash)).unwrap().unwrap();
    assert_eq!(stored, created);
    assert!(
        !format!("{stored:?}").contains(&secret[6..]),
        "the secret must not be stored"
    );
    assert!(block_on(ledger.list_keys())
        .unwrap()
        .iter()
        .any(|k| k.hash == created.hash));

    let api = stored.to_api_key();
    assert_eq!(
        (api.name.as_str(), api.limit_usd, api.limit_reset),
        ("bob", Some(12.5), LimitReset::Weekly)
    );
    assert_eq!(
        (api.rpm, api.tpm, api.disabled),
        (Some(60), Some(100_000), false)
    );
    assert!(api.may_use_model("openai/gpt-4o") && !api.may_use_model("anthropic/claude"));
    assert_eq!(api.provider_prefs.order, Some(vec!["openai".to_string()]));

    let patch = KeyPatch {
        limit_usd: Some(None),
        rpm: Some(None),
        disabled: Some(true),
        allowed_models: Some(None),
        ..KeyPatch::default()
    };
    let patched = block_on(ledger.update_key(&created.hash, patch))
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            patched.limit_usd,
            patched.rpm,
            patched.disabled,
            patched.allowed_models.clone()
        ),
        (None, None, true, None)
    );
    assert_eq!(patched.tpm, Some(100_000), "fields not in the patch stay");
    assert_eq!(
        block_on(ledger.get_key(&created.hash)).unwrap(),
        Some(patched.clone())
    );
    assert!(block_on(ledger.load_keys())
        .unwrap()
        .iter()
        .any(|k| k.hash == created.hash && k.disabled));

    let bad = KeyPatch {
        provider_prefs: Some(json!(["not", "an", "object"])),
        ..KeyPatch::default()
    };
    assert!(matches!(
        block_on(ledger.update_key(&created.hash, bad)),
        Err(LedgerError::Invalid(_))
    ));
    assert!(matches!(
        block_on(ledger.create_key(NewKey::named(" "))),
        Err(LedgerError::Invalid(_))
    ));
    assert_eq!(
        block_on(ledger.update_key(&fresh_key("ghost"), KeyPatch::default())).unwrap(),
        None
    );

    assert!(block_on(ledger.delete_key(&created.hash)).unwrap());
    assert_eq!(block_on(ledger.get_key(&created.hash)).unwrap(), None);
    assert!(!block_on(ledger.delete_key(&created.hash)).unwrap());
}

/// `record()` against a database that cannot be written: it returns at once, the queue
/// stays bounded and every record is accounted for as dropped or abandoned.
pub fn unavailable_database_drops_and_counts(ledger: &Ledger) {
    let config = WriterConfig {
        capacity: 100,
        max_batch: 50,
        ..fast_retries()
    };
    let writer = ledger.writer(config);
    let (mut slowest, started) = (Duration::ZERO, Instant::now());
    let mut accepted = 0u64;
    for i in 0..1000 {
        let t = Instant::now();
        accepted +=
            u64::from(writer.record(record(&format!("gen-down-{i}"), [1; 32], 1, now_ms())));
        slowest = slowest.max(t.elapsed());
        assert!(writer.stats().queued <= 100);
    }
    let total = started.elapsed();
    println!("record() x1000 against a down database: {total:?} in all, slowest {slowest:?}");
    // Waiting on the database would take its 2 s attempt timeout; the bound leaves room for
    // a loaded machine taking the thread off the CPU, which a tighter one did not.
    assert!(
        slowest < Duration::from_millis(500),
        "record() waited {slowest:?}"
    );
    // At most the queue plus one batch in the writer's hands.
    assert!(accepted <= 150, "accepted {accepted}");

    assert!(
        writer.flush_blocking(Duration::from_secs(10)),
        "flush must end once the budget is spent"
    );
    let stats = writer.stats();
    assert_eq!(stats.written, 0);
    assert_eq!(stats.dropped, 1000 - accepted);
    assert_eq!(stats.abandoned, accepted);
    assert!(stats.write_errors >= 1);
    assert_eq!(stats.queued, 0);
    assert!(writer.close_blocking(Duration::from_secs(10)));
}

pub fn close_loses_nothing(ledger: &Ledger) {
    // A long linger: without close the records would still be waiting.
    let writer = ledger.writer(WriterConfig {
        max_delay: Duration::from_secs(3600),
        ..WriterConfig::default()
    });
    let other = writer.clone();
    let tag = format!("{}-{}", now_ms(), std::process::id());
    for i in 0..500 {
        assert!(writer.record(record(
            &format!("gen-close-{tag}-{i}"),
            [2; 32],
            0,
            now_ms()
        )));
    }
    let started = Instant::now();
    assert!(writer.close_blocking(Duration::from_secs(30)));
    assert!(started.elapsed() < Duration::from_secs(10));
    for i in 0..500 {
        assert!(
            block_on(ledger.get_generation(&format!("gen-close-{tag}-{i}")))
                .unwrap()
                .is_some()
        );
    }
    // After close, records are refused and counted rather than queued for nobody.
    assert!(!other.record(record("gen-late", [2; 32], 0, now_ms())));
    assert_eq!((other.stats().written, other.stats().dropped), (500, 1));
}
