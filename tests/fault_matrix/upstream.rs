//! Running the upstream table: one gateway, every cell at once, then the ledger.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use super::common::*;
use super::upstream_table::*;

/// The config: per fault and per case, a `solo` model served by the faulty provider alone
/// and a `duo` model that has the healthy `second` provider behind it. Each case has its own
/// upstream model (`+case=N` is a knob the mock ignores), so the passive breaker of one case
/// never skips the faulty provider in another.
pub(crate) fn upstream_config(first: &MockServer, second: &MockServer, big: &MockServer) -> String {
    let dead = format!(
        "  dead:\n    dialect: openai\n    base_url: \"http://127.0.0.1:{}/v1\"\n    api_key_env: UPSTREAM_KEY\n    timeouts: {{ connect: 1s, first_byte: 1s, idle: 1s }}\n",
        free_port()
    );
    let mut models = String::new();
    for (i, row) in UPSTREAM_FAULTS.iter().enumerate() {
        for shape in ["whole", "stream"] {
            let (provider, knobs) = match row.inject {
                Inject::Refused => ("dead", String::new()),
                Inject::Knobs(k) => ("first", format!("+{k}")),
                Inject::SlowKnobs(k) => ("roomy", format!("+{k}")),
            };
            let up = |alone: &str| format!("\"m{knobs}+case={i}-{shape}-{alone}\"");
            models.push_str(&format!(
                "  solo/{i}-{shape}:\n    endpoints:\n      - {{ provider: {provider}, model: {}, price: {{ prompt: 1, completion: 1 }} }}\n",
                up("solo")
            ));
            models.push_str(&format!(
                "  duo/{i}-{shape}:\n    endpoints:\n      - {{ provider: {provider}, model: {}, price: {{ prompt: 1, completion: 1 }} }}\n      - {{ provider: second, model: m, price: {{ prompt: 2, completion: 2 }} }}\n",
                up("duo")
            ));
        }
    }
    format!(
        "{}providers:\n{}{}{}{dead}models:\n{models}",
        config_head(),
        provider("first", first)
            .replace("first_byte: 3s", "first_byte: 2s")
            .replace("idle: 3s", "idle: 2s"),
        provider("roomy", big)
            .replace("first_byte: 3s", "first_byte: 60s")
            .replace("idle: 3s", "idle: 60s"),
        provider("second", second),
    )
}

/// What one request showed the client.
pub(crate) struct Seen {
    pub(crate) status: u16,
    pub(crate) header: std::collections::HashMap<String, String>,
    /// The body, or why it could not be read whole.
    pub(crate) body: Result<String, String>,
}

impl Seen {
    fn h(&self, name: &str) -> &str {
        self.header.get(name).map_or("", String::as_str)
    }
}

pub(crate) async fn send(gw: &Gateway, body: Value) -> Seen {
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    let status = resp.status().as_u16();
    let header = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = resp.text().await.map_err(|e| format!("{e:?}"));
    Seen {
        status,
        header,
        body,
    }
}

pub(crate) fn ask(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "provider": {"order": ["first", "dead", "roomy", "second"]},
           "messages": [{"role": "user", "content": "Hello fault matrix"}]})
}

/// Checks an OpenAI-shaped gateway error; returns the error object.
pub(crate) fn check_error(seen: &Seen, status: u16, kind: &str) -> Result<Value, String> {
    if seen.status != status {
        return Err(format!("status {} (expected {status})", seen.status));
    }
    let body: Value = serde_json::from_str(seen.body.as_deref().map_err(String::clone)?)
        .map_err(|e| format!("error body is not JSON: {e}"))?;
    if body["error"]["type"] != kind {
        return Err(format!(
            "error type {} (expected {kind})",
            body["error"]["type"]
        ));
    }
    if !body["error"]["message"].is_string() {
        return Err(format!("no error message: {body}"));
    }
    Ok(body["error"].clone())
}

/// The data of each SSE event, and whether the stream ended with `[DONE]`.
pub(crate) fn stream_chunks(text: &str) -> Result<Vec<Value>, String> {
    let events = sse_events(text);
    if events.last().map(String::as_str) != Some("data: [DONE]") {
        return Err(format!(
            "the stream does not end with [DONE]: ...{}",
            &text[text.len().saturating_sub(300)..]
        ));
    }
    let mut chunks = Vec::new();
    for e in &events[..events.len() - 1] {
        if let Some(data) = e.strip_prefix("data: ") {
            // A provider's malformed event passes through untouched: skip what is not JSON.
            if let Ok(v) = serde_json::from_str(data) {
                chunks.push(v);
            }
        }
    }
    Ok(chunks)
}

/// Checks the tail of a stream: `[ ..., (error chunk,) usage chunk, [DONE] ]`.
pub(crate) fn check_stream(seen: &Seen, error_chunk: bool, estimated: bool) -> Result<(), String> {
    if seen.status != 200 {
        return Err(format!("stream status {}", seen.status));
    }
    let chunks = stream_chunks(seen.body.as_deref().map_err(String::clone)?)?;
    let usage = chunks.last().ok_or("no chunk before [DONE]")?;
    if usage["choices"] != json!([]) || !usage["usage"]["cost"].is_number() {
        return Err(format!("the last chunk is not the usage chunk: {usage}"));
    }
    if usage["usage"]["estimated"].as_bool().unwrap_or(false) != estimated {
        return Err(format!("usage.estimated should be {estimated}: {usage}"));
    }
    let errors: Vec<&Value> = chunks.iter().filter(|c| c.get("error").is_some()).collect();
    match (error_chunk, errors.as_slice()) {
        (false, []) => Ok(()),
        (true, [one]) if chunks.len() >= 2 && chunks[chunks.len() - 2] == **one => {
            if one["choices"][0]["finish_reason"] != "error" || !one["error"]["message"].is_string()
            {
                return Err(format!("malformed error chunk: {one}"));
            }
            Ok(())
        }
        (want, got) => Err(format!(
            "expected error chunk: {want}, got {} error chunk(s): {got:?}",
            got.len()
        )),
    }
}

/// The record of a generation, through `GET /v1/generation` (records are written in batches:
/// poll briefly).
pub(crate) async fn record_of(gw: &Gateway, id: &str) -> Result<Value, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client()
            .get(gw.url(&format!("/v1/generation?id={id}")))
            .bearer_auth(KEY)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() == 200 {
            let v: Value = r.json().await.map_err(|e| e.to_string())?;
            return Ok(v["data"].clone());
        }
        if Instant::now() > deadline {
            return Err(format!("no record for {id} ({})", r.status()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the record of a request must say.
pub(crate) struct RecordExpect {
    pub(crate) status: u16,
    pub(crate) error: bool,
    pub(crate) estimated: Option<bool>,
    pub(crate) provider: &'static str,
    pub(crate) attempts: usize,
}

pub(crate) fn check_record(rec: &Value, want: &RecordExpect) -> Result<(), String> {
    let mut wrong = Vec::new();
    if rec["status"] != want.status {
        wrong.push(format!(
            "status {} (expected {})",
            rec["status"], want.status
        ));
    }
    if rec["error"].is_string() != want.error {
        wrong.push(format!(
            "error {} (expected error: {})",
            rec["error"], want.error
        ));
    }
    if want.error && rec["finish_reason"] != "error" {
        wrong.push(format!(
            "finish_reason {} (expected \"error\")",
            rec["finish_reason"]
        ));
    }
    if let Some(estimated) = want.estimated {
        if rec["estimated"] != estimated {
            wrong.push(format!(
                "estimated {} (expected {estimated})",
                rec["estimated"]
            ));
        }
    }
    if rec["provider_name"] != want.provider {
        wrong.push(format!(
            "provider {} (expected {})",
            rec["provider_name"], want.provider
        ));
    }
    let attempts = rec["attempts"].as_array().map_or(0, Vec::len);
    if attempts != want.attempts && !(attempts == want.attempts + 1 && stale_retry_first(rec)) {
        wrong.push(format!(
            "{attempts} attempts (expected {}): {}",
            want.attempts, rec["attempts"]
        ));
    }
    if rec["cancelled"] != false {
        wrong.push("cancelled".into());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("record: {} in {rec}", wrong.join("; ")))
    }
}

/// Whether the record starts with the one retry a request may make on a pooled connection
/// that failed (`failover::decide_retry`): the same provider and model twice, the first
/// failed without a status. Cells run at once, so a cell's first try may or may not get a
/// connection another cell left in the pool.
fn stale_retry_first(rec: &Value) -> bool {
    let (first, second) = (&rec["attempts"][0], &rec["attempts"][1]);
    first["outcome"] == "failed"
        && first["status"].is_null()
        && first["provider"] == second["provider"]
        && first["model"] == second["model"]
}

/// One cell: `row` alone or with a backup, whole or streamed. Returns the generation id and
/// what its record says.
pub(crate) async fn run_cell(
    gw: &Gateway,
    i: usize,
    row: &UpstreamFault,
    shape: Shape,
    with_backup: bool,
) -> Result<(String, RecordExpect), String> {
    let stream = shape == Shape::Stream;
    let model = format!(
        "{}/{i}-{}",
        if with_backup { "duo" } else { "solo" },
        if stream { "stream" } else { "whole" }
    );
    let seen = send(gw, ask(&model, stream)).await;
    let id = seen.h("x-generation-id").to_string();
    if !id.starts_with("gen-") {
        return Err(format!("no x-generation-id (status {})", seen.status));
    }
    let faulty = match row.inject {
        Inject::Refused => "dead",
        Inject::Knobs(_) => "first",
        Inject::SlowKnobs(_) => "roomy",
    };
    let fails_over = with_backup && row.backup == Backup::FailsOver;
    let want_record = if fails_over {
        let answer = if stream {
            check_stream(&seen, false, false)
        } else {
            check_whole(&seen, Whole::Answer { estimated: false }, None)
        };
        answer?;
        if seen.h("x-switchyard-provider") != "second" || seen.h("x-switchyard-attempts") != "2" {
            return Err(format!(
                "served by {:?} after {:?} attempts (expected second after 2)",
                seen.h("x-switchyard-provider"),
                seen.h("x-switchyard-attempts")
            ));
        }
        RecordExpect {
            status: 200,
            error: false,
            estimated: Some(false),
            provider: "second",
            attempts: 2,
        }
    } else if stream {
        check_ending(&seen, row.stream, row.retry_after)?;
        record_for_ending(row.stream, faulty)
    } else {
        check_whole(&seen, row.whole, row.retry_after)?;
        record_for_whole(row.whole, faulty)
    };
    let rec = record_of(gw, &id).await?;
    check_record(&rec, &want_record)?;
    Ok((id, want_record))
}

pub(crate) fn check_whole(
    seen: &Seen,
    want: Whole,
    retry_after: Option<&str>,
) -> Result<(), String> {
    match want {
        Whole::Answer { estimated } => {
            if seen.status != 200 {
                return Err(format!("status {} (expected 200)", seen.status));
            }
            let body: Value = serde_json::from_str(seen.body.as_deref().map_err(String::clone)?)
                .map_err(|e| format!("the answer is not JSON: {e}"))?;
            if body["object"] != "chat.completion" || !body["choices"][0]["message"].is_object() {
                return Err(format!(
                    "not a chat completion: {}",
                    &body.to_string()[..body.to_string().len().min(300)]
                ));
            }
            if body["usage"]["estimated"].as_bool().unwrap_or(false) != estimated {
                return Err(format!(
                    "usage.estimated should be {estimated}: {}",
                    body["usage"]
                ));
            }
            Ok(())
        }
        Whole::Error(status, kind) => {
            check_error(seen, status, kind)?;
            check_retry_after(seen, status, retry_after)
        }
        Whole::ErrorUnder200(kind) => check_error(seen, 200, kind).map(drop),
        Whole::CutOff => {
            if seen.status != 200 {
                return Err(format!("status {} (expected a 200 head)", seen.status));
            }
            match &seen.body {
                Err(_) => Ok(()),
                Ok(b) => match serde_json::from_str::<Value>(b) {
                    Ok(v) if v["object"] == "chat.completion" => {
                        Err("a whole answer arrived".to_string())
                    }
                    _ => Ok(()),
                },
            }
        }
    }
}

pub(crate) fn check_retry_after(
    seen: &Seen,
    status: u16,
    retry_after: Option<&str>,
) -> Result<(), String> {
    if status == 429 && Some(seen.h("retry-after")) != retry_after {
        return Err(format!(
            "Retry-After {:?} (expected {retry_after:?})",
            seen.h("retry-after")
        ));
    }
    Ok(())
}

pub(crate) fn check_ending(
    seen: &Seen,
    want: Ending,
    retry_after: Option<&str>,
) -> Result<(), String> {
    match want {
        Ending::Error(status, kind) => {
            check_error(seen, status, kind)?;
            check_retry_after(seen, status, retry_after)
        }
        Ending::Done { estimated } => check_stream(seen, false, estimated),
        Ending::ErrorChunk => check_stream(seen, true, true),
    }
}

pub(crate) fn record_for_whole(whole: Whole, faulty: &'static str) -> RecordExpect {
    match whole {
        Whole::Answer { estimated } => RecordExpect {
            status: 200,
            error: false,
            estimated: Some(estimated),
            provider: faulty,
            attempts: 1,
        },
        Whole::Error(status, _) => RecordExpect {
            status,
            error: true,
            estimated: None,
            provider: faulty,
            attempts: 1,
        },
        Whole::CutOff | Whole::ErrorUnder200(_) => RecordExpect {
            status: 200,
            error: true,
            estimated: None,
            provider: faulty,
            attempts: 1,
        },
    }
}

pub(crate) fn record_for_ending(ending: Ending, faulty: &'static str) -> RecordExpect {
    match ending {
        Ending::Error(status, _) => RecordExpect {
            status,
            error: true,
            estimated: None,
            provider: faulty,
            attempts: 1,
        },
        Ending::Done { estimated } => RecordExpect {
            status: 200,
            error: false,
            estimated: Some(estimated),
            provider: faulty,
            attempts: 1,
        },
        Ending::ErrorChunk => RecordExpect {
            status: 200,
            error: true,
            estimated: Some(true),
            provider: faulty,
            attempts: 1,
        },
    }
}

pub(crate) fn is_known_bug(fault: &str, shape: Shape) -> bool {
    KNOWN_BUGS.iter().any(|(f, s)| *f == fault && *s == shape)
}

/// Runs the matrix's cells for which `select` holds, all at once on one gateway; then stops the
/// gateway and checks the ledger holds exactly one record per request, and nothing else.
pub(crate) async fn run_upstream_matrix(select: impl Fn(&UpstreamFault, Shape) -> bool) {
    let (first, second, big) = (
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
        MockServer::start("127.0.0.1:0").unwrap(),
    );
    let mut gw = Gateway::start(&upstream_config(&first, &second, &big));
    let mut cells = Vec::new();
    for (i, row) in UPSTREAM_FAULTS.iter().enumerate() {
        for shape in [Shape::Whole, Shape::Stream] {
            // `FAULT_MATRIX_ONLY=<part of a fault's name>` narrows a run while debugging.
            let only = std::env::var("FAULT_MATRIX_ONLY").unwrap_or_default();
            if !select(row, shape) || !row.fault.contains(only.as_str()) {
                continue;
            }
            for with_backup in [false, true] {
                cells.push((i, row, shape, with_backup));
            }
        }
    }
    let gw_ref = &gw;
    let results = join_all(
        cells
            .iter()
            .map(|&(i, row, shape, with_backup)| async move {
                let out = run_cell(gw_ref, i, row, shape, with_backup).await;
                (row.fault, shape, with_backup, out)
            }),
    )
    .await;
    let mut failures = Vec::new();
    let mut ids = Vec::new();
    for (fault, shape, with_backup, out) in results {
        match out {
            Ok(cell) => ids.push(cell),
            Err(e) => failures.push(format!(
                "{fault} ({shape:?}, {}): {e}",
                if with_backup {
                    "with a second candidate"
                } else {
                    "alone"
                }
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) differ from the matrix:\n{}\n--- gateway log tail:\n{}",
        failures.len(),
        failures.join("\n"),
        log_tail(&gw)
    );
    // The second provider got exactly one request per cell that failed over, and none from
    // a cell whose fault came after bytes had reached the client.
    let failed_over = cells
        .iter()
        .filter(|(_, row, _, with_backup)| *with_backup && row.backup == Backup::FailsOver)
        .count();
    assert_eq!(
        second.request_count(),
        failed_over,
        "requests the second provider got"
    );
    let ledger = stop_and_read_ledger(&mut gw).await;
    assert_eq!(
        ledger.len(),
        cells.len(),
        "one record per request, no more: {ledger:?}"
    );
    // The database holds what `/v1/generation` showed (it answers recent ids from memory).
    for (id, want) in &ids {
        let rows: Vec<&LedgerRow> = ledger.iter().filter(|r| &r.id == id).collect();
        assert_eq!(rows.len(), 1, "exactly one record for {id}");
        let row = rows[0];
        assert_eq!(
            (row.status, row.error.is_some(), row.provider.as_str()),
            (i64::from(want.status), want.error, want.provider),
            "the stored record of {id}: {row:?}"
        );
    }
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
}

pub(crate) fn log_tail(gw: &Gateway) -> String {
    let log = gw.log_text();
    log[log.floor_char_boundary(log.len().saturating_sub(4000))..].to_string()
}

#[tokio::test]
async fn upstream_faults_end_as_the_matrix_says_with_one_record_each() {
    run_upstream_matrix(|row, shape| !is_known_bug(row.fault, shape)).await;
}

#[tokio::test]
async fn a_cut_off_answer_leaves_a_record_that_says_so() {
    run_upstream_matrix(|row, shape| row.fault == "reset mid-response" && shape == Shape::Whole)
        .await;
}

/// DESIGN §3 wants a 502, but the 200 head is out before the body is read (Pingora writes the
/// head from `response_filter`): the client gets the gateway's error body under the 200, and
/// the record the error (`docs/reliability.md`, "A malformed answer").
#[tokio::test]
async fn a_malformed_answer_is_an_error_body_under_its_200_and_an_error_record() {
    run_upstream_matrix(|row, shape| row.fault == "malformed JSON" && shape == Shape::Whole).await;
}

#[tokio::test]
async fn a_truncated_stream_ends_with_an_error_chunk() {
    run_upstream_matrix(|row, shape| {
        row.fault.starts_with("truncated SSE") && shape == Shape::Stream
    })
    .await;
}

/// A provider that resets every request, reached over pooled connections: each reset looks
/// like a connection the provider had closed while idle, which is worth one more try, and
/// only one (the pool held four connections here; every one of them was tried before).
#[tokio::test]
async fn a_provider_resetting_every_request_is_tried_twice_not_once_per_pooled_connection() {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let price = "price: { prompt: 1, completion: 1 }";
    let config = format!(
        "{}providers:\n{}models:\n  ok:\n    endpoints:\n      - {{ provider: first, model: m, {price} }}\n  resets:\n    endpoints:\n      - {{ provider: first, model: \"m+reset=before\", {price} }}\n",
        config_head(),
        provider("first", &mock)
    );
    let gw = Gateway::start(&config);
    let body =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    // Four at once: four connections, back in the pool when they end.
    let warm = join_all((0..4).map(|_| send(&gw, body("ok")))).await;
    assert!(warm.iter().all(|seen| seen.status == 200));
    let seen = send(&gw, body("resets")).await;
    assert_eq!(seen.status, 502, "{:?}", seen.body);
    let rec = record_of(&gw, seen.h("x-generation-id")).await.unwrap();
    let attempts = rec["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{rec}");
    assert!(attempts
        .iter()
        .all(|a| a["provider"] == "first" && a["outcome"] == "failed"));
}
