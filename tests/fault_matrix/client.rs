//! The client table: clients that leave, trickle, never finish their body or pipeline
//! garbage; what they see, what reaches the provider, and the records left.

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::common::*;

/// A client fault's run; yields the generation ids of requests it had served on the side.
pub(crate) type CaseFuture<'a> = Pin<Box<dyn Future<Output = Vec<String>> + 'a>>;

pub(crate) struct ClientFault {
    pub(crate) fault: &'static str,
    pub(crate) what_the_client_sees: &'static str,
    pub(crate) upstream: &'static str,
    pub(crate) record: &'static str,
}

pub(crate) const CLIENT_FAULTS: &[ClientFault] = &[
    ClientFault {
        fault: "disconnects before the response",
        what_the_client_sees: "nothing (it left)",
        upstream: "got the request",
        record: "one: `cancelled`, status 0, no charge",
    },
    ClientFault {
        fault: "disconnects while streaming",
        what_the_client_sees: "the events it read",
        upstream: "got the request",
        record: "one: `cancelled`, charged for the tokens generated",
    },
    ClientFault {
        fault: "slow-loris headers",
        what_the_client_sees: "nothing until its headers end; other clients are served meanwhile",
        upstream: "nothing",
        record: "none (no request yet)",
    },
    ClientFault {
        fault: "a chunked body that never ends",
        what_the_client_sees: "413 once past `max_body_bytes`, connection closed",
        upstream: "nothing",
        record: "none (never parsed)",
    },
    ClientFault {
        fault: "a body shorter than its Content-Length, then silence",
        what_the_client_sees: "nothing while it stalls; other clients are served meanwhile",
        upstream: "nothing",
        record: "none (never parsed)",
    },
    ClientFault {
        fault: "pipelined garbage after a request",
        what_the_client_sees: "the answer to its request, then 400 or a closed connection",
        upstream: "the one valid request",
        record: "one, for the valid request",
    },
];

pub(crate) fn client_config(mock: &MockServer) -> String {
    format!(
        "{}providers:\n{}models:\n  test/model:\n    endpoints:\n      - {{ provider: p1, model: m, price: {{ prompt: 1, completion: 1 }} }}\n",
        config_head(),
        provider("p1", mock)
    )
}

pub(crate) fn hello() -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]})
}

pub(crate) fn raw_chat(body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Waits (bounded) until `cond` holds.
pub(crate) async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn run_client_fault<'a>(
    fault: &str,
    gw: &'a Gateway,
    mock: &'a MockServer,
) -> CaseFuture<'a> {
    match fault {
        "disconnects before the response" => Box::pin(disconnect_before_response(gw, mock)),
        "disconnects while streaming" => Box::pin(disconnect_while_streaming(gw, mock)),
        "slow-loris headers" => Box::pin(slow_loris_headers(gw, mock)),
        "a chunked body that never ends" => Box::pin(endless_chunked_body(gw, mock)),
        "a body shorter than its Content-Length, then silence" => Box::pin(stalled_body(gw, mock)),
        "pipelined garbage after a request" => Box::pin(pipelined_garbage(gw, mock)),
        other => panic!("no test for client fault {other:?}"),
    }
}

/// The upstream holds its answer for a second; the client hangs up after sending.
pub(crate) async fn disconnect_before_response(gw: &Gateway, mock: &MockServer) -> Vec<String> {
    let body = json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}],
                      "mock": {"delay_ms": 1000}})
    .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.write_all(raw_chat(&body).as_bytes()).unwrap();
    eventually(
        "the request to reach the provider",
        Duration::from_secs(5),
        || mock.request_count() == 1,
    )
    .await;
    drop(s);
    Vec::new()
}

pub(crate) async fn disconnect_while_streaming(gw: &Gateway, _mock: &MockServer) -> Vec<String> {
    let r = chat(gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "long"}],
                            "mock": {"chunks": 500, "chunk_delay_ms": 10}}))
    .await;
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut got = 0;
    while got < 1500 {
        got += stream.next().await.unwrap().unwrap().len();
    }
    drop(stream);
    Vec::new()
}

/// Headers trickle in a byte at a time; meanwhile another client is served at once.
pub(crate) async fn slow_loris_headers(gw: &Gateway, mock: &MockServer) -> Vec<String> {
    let head = raw_chat(&hello().to_string());
    let mut loris: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", gw.port)).unwrap())
        .collect();
    for round in 0..10 {
        for s in &mut loris {
            s.write_all(&head.as_bytes()[round..round + 1]).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let started = Instant::now();
    let id = served_meanwhile(gw).await;
    // Not a speed test: a gateway held up by the slow heads would take Pingora's 60 s read
    // timeout; the bound leaves room for a loaded machine.
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(10), "served after {waited:?}");
    assert_eq!(
        mock.request_count(),
        1,
        "only the served request went upstream"
    );
    drop(loris);
    vec![id]
}

/// Another client's request, served while a fault is going on; its generation id.
pub(crate) async fn served_meanwhile(gw: &Gateway) -> String {
    let r = chat(gw, hello()).await;
    assert_eq!(r.status(), 200, "the gateway serves others meanwhile");
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    r.text().await.unwrap();
    id
}

/// A chunked body that never ends is cut at `max_body_bytes` (1 MiB in the test config).
pub(crate) async fn endless_chunked_body(gw: &Gateway, mock: &MockServer) -> Vec<String> {
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
    let mut sent = 0usize;
    // Writes fail once the gateway has answered and closed (after what the kernel's socket
    // buffers hold on loopback); bounded in any case.
    while sent < 64 << 20 {
        if s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
        sent += 64 * 1024;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "{sent} bytes sent, got: {text}"
    );
    assert!(sent < 64 << 20, "the gateway never stopped reading");
    assert_eq!(mock.request_count(), 0);
    Vec::new()
}

/// Half a body, then silence: the connection is held, nothing goes upstream, others are served.
pub(crate) async fn stalled_body(gw: &Gateway, mock: &MockServer) -> Vec<String> {
    let body = hello().to_string();
    let head = raw_chat(&body);
    let cut = head.len() - body.len() / 2;
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.write_all(&head.as_bytes()[..cut]).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = served_meanwhile(gw).await;
    assert_eq!(
        mock.request_count(),
        1,
        "the stalled request never went upstream"
    );
    drop(s);
    vec![id]
}

/// A valid request and garbage behind it on the same connection.
pub(crate) async fn pipelined_garbage(gw: &Gateway, mock: &MockServer) -> Vec<String> {
    let mut req = raw_chat(&hello().to_string()).into_bytes();
    req.extend_from_slice(b"\x00\x01GARBAGE \xff\xfe\r\n\r\nMORE GARBAGE\r\n\r\n");
    let out = raw_exchange(gw.port, &req);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let second = text[12..].find("HTTP/1.1 ").map(|at| &text[12 + at..]);
    if let Some(second) = second {
        assert!(second.starts_with("HTTP/1.1 400"), "{text}");
    }
    assert_eq!(mock.request_count(), 1);
    Vec::new()
}

/// Every client fault on a fresh gateway; the ledger is read once the gateway has stopped.
pub(crate) async fn run_client_row(fault: &str) -> Vec<LedgerRow> {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let mut gw = Gateway::start(&client_config(&mock));
    let mut served = run_client_fault(fault, &gw, &mock).await;
    // Whatever the fault, the gateway is still serving and has not panicked.
    served.push(served_meanwhile(&gw).await);
    let rows = stop_and_read_ledger(&mut gw).await;
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
    for id in &served {
        assert_eq!(
            rows.iter().filter(|r| &r.id == id).count(),
            1,
            "{fault}: one record for each request served on the side"
        );
    }
    rows.into_iter()
        .filter(|r| !served.contains(&r.id))
        .collect()
}

#[tokio::test]
async fn client_disconnects_before_the_response_leave_one_cancelled_record() {
    let rows = run_client_row("disconnects before the response").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].cancelled, "{rows:?}");
    assert_eq!(rows[0].status, 0, "no response was written: {rows:?}");
    assert_eq!(rows[0].cost_pico, "0", "nothing was generated: {rows:?}");
}

#[tokio::test]
async fn client_disconnects_mid_stream_leave_one_cancelled_record_charged_for_what_was_generated() {
    let rows = run_client_row("disconnects while streaming").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].cancelled && rows[0].streamed, "{rows:?}");
    assert!(
        rows[0].tokens_completion > 0 && rows[0].tokens_completion < 500,
        "{rows:?}"
    );
}

#[tokio::test]
async fn slow_loris_headers_hold_nothing_but_their_own_connection() {
    let rows = run_client_row("slow-loris headers").await;
    assert!(rows.is_empty(), "{rows:?}");
}

#[tokio::test]
async fn an_endless_chunked_body_is_refused_at_the_body_limit() {
    let rows = run_client_row("a chunked body that never ends").await;
    assert!(rows.is_empty(), "{rows:?}");
}

#[tokio::test]
async fn a_stalled_body_holds_nothing_but_its_own_connection() {
    let rows = run_client_row("a body shorter than its Content-Length, then silence").await;
    assert!(rows.is_empty(), "{rows:?}");
}

#[tokio::test]
async fn pipelined_garbage_gets_the_request_answered_and_one_record() {
    let rows = run_client_row("pipelined garbage after a request").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, 200, "{rows:?}");
}
