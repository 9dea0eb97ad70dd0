//! Hostile input on the wire: oversized heads and bodies, unknown paths and methods, CR/LF
//! in any field, odd model ids, garbage bytes.

use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::common::*;
use super::*;

/// Sends raw bytes and returns the status line's code (0 if the connection closed silently).
fn raw_status(port: u16, request: &[u8]) -> (u16, String) {
    let out = raw_exchange(port, request);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn oversized_headers_get_431_or_400_and_oversized_bodies_413() {
    let (mock, mut gw) = start();
    let body =
        json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let with_headers = |extra: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let header_cases = [
        (
            "one 2 MiB header",
            format!("X-Big: {}\r\n", "a".repeat(2 << 20)),
        ),
        (
            "2 MiB of small headers",
            (0..40_000)
                .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(40)))
                .collect::<String>(),
        ),
        (
            "300 headers",
            (0..300)
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect::<String>(),
        ),
        ("a 2 MiB request line", String::new()),
    ];
    for (what, extra) in header_cases {
        let request = if what == "a 2 MiB request line" {
            format!(
                "GET /v1/models?q={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "q".repeat(2 << 20)
            )
        } else {
            with_headers(&extra)
        };
        let (status, text) = raw_status(gw.port, request.as_bytes());
        assert!(
            status == 431 || status == 400,
            "{what}: expected 431 or 400, got {status}: {}",
            &text[..text.len().min(300)]
        );
    }

    // Bodies: declared too large (refused before reading), and sent too large.
    let limit = 1 << 20;
    let declared = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {}\r\n\r\n{{",
        limit * 100
    );
    let (status, text) = raw_status(gw.port, declared.as_bytes());
    assert_eq!(status, 413, "{text}");
    let big = json!({"model": "test/model", "messages": [{"role": "user", "content": "x".repeat(limit)}]});
    let (status, text) = post_raw(&gw, big.to_string().into_bytes()).await;
    let e = assert_client_error(status, &text, "a body over max_body_bytes");
    assert_eq!(status, 413, "{e}");
    // A Content-Length that is not a number, or two that disagree.
    for cl in [
        "Content-Length: abc\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 99999999999999999999999\r\n",
    ] {
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n{cl}Connection: close\r\n\r\n{{}}"
        );
        let (status, text) = raw_status(gw.port, request.as_bytes());
        assert!(
            (400..500).contains(&status) || status == 0,
            "{cl:?}: {status}: {text}"
        );
    }
    assert_eq!(mock.request_count(), 0);
    assert_still_serving(&mut gw).await;
}

/// A client that writes its whole oversized body before reading (every HTTP client library)
/// reads its 413, not "broken pipe": the gateway drops the unread body before it closes.
/// Without that, closing with unread bytes resets the connection under the client's writes.
#[tokio::test]
async fn a_client_still_sending_an_oversized_body_reads_its_413() {
    let (mock, mut gw) = start();
    // 8 MiB against the 1 MiB limit: far more than loopback's socket buffers absorb.
    let big = json!({"model": "test/model", "messages": [{"role": "user", "content": "x".repeat(8 << 20)}]})
        .to_string()
        .into_bytes();
    for round in 0..3 {
        let sent = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await;
        let r = sent.unwrap_or_else(|e| panic!("round {round}: the client saw {e:?}"));
        assert_eq!(r.status(), 413, "round {round}");
        let e = assert_client_error(413, &r.text().await.unwrap(), "an 8 MiB body");
        assert_eq!(e["code"], "request_too_large", "{e}");
    }
    // The same for a request refused before its body for another reason.
    let unauthorized = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-wrong")
        .body(big)
        .send()
        .await
        .unwrap_or_else(|e| panic!("a wrong key: the client saw {e:?}"));
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(mock.request_count(), 0);
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404_or_405() {
    let (mock, mut gw) = start();
    let c = client();
    let paths = [
        "/",
        "/v1",
        "/v1/",
        "/v2/chat/completions",
        "/v1/chat/completions/extra",
        "/v1/chat",
        "//v1/models",
        "/v1//models",
        "/v1/models/../../etc/passwd",
        "/v1/%2e%2e/%2e%2e/etc/passwd",
        "/api/v2/models",
        "/v1/keys",
        "/api/v1/keys",
        "/admin/reload",
        "/metrics",
        "/v1/embeddings/../keys",
        "/.env",
        "/v1/chat/completions%00",
        "/v1/chat/completions;x=1",
        &format!("/{}", "a/".repeat(5000)),
    ];
    for path in paths {
        for method in ["GET", "POST", "DELETE"] {
            let r = c
                .request(method.parse().unwrap(), gw.url(path))
                .bearer_auth(KEY)
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(
                status == 404 || status == 405,
                "{method} {}: {status} {text}",
                &path[..path.len().min(60)]
            );
            assert_client_error(status, &text, path);
        }
    }
    for method in ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
        let r = c
            .request(method.parse().unwrap(), gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
    // Methods no client library sends, and HTTP/0.9 and 2.0 preambles.
    for request in [
        &b"BREW /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /v1/models HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /v1/models\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let (status, text) = raw_status(gw.port, request);
        assert!(
            status == 0 || (400..500).contains(&status),
            "{:?}: {status} {text}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(mock.request_count(), 0);
    assert_still_serving(&mut gw).await;
}

/// Asserts the mock saw no header, path or query that a client's CR/LF could have made.
fn assert_nothing_injected(mock: &MockServer) {
    for req in mock.requests() {
        for (name, value) in &req.headers {
            assert!(
                !name.contains("injected") && !value.to_ascii_lowercase().contains("injected"),
                "an injected header reached the provider: {name}: {value}"
            );
            assert!(
                !value.contains(['\r', '\n']),
                "CR/LF in the upstream header {name}: {value:?}"
            );
        }
        assert!(
            !req.path.to_ascii_lowercase().contains("injected")
                && !req.path.contains("..")
                && req.query.as_deref().is_none_or(|q| !q.contains("injected")),
            "the upstream URL carries client input: {} {:?}",
            req.path,
            req.query
        );
    }
}

#[tokio::test]
async fn cr_lf_in_any_field_never_reaches_an_upstream_header_or_url() {
    let (mock, mut gw) = start();
    let evil = [
        "test/model\r\nX-Injected: 1",
        "test/model\nX-Injected: 1",
        "test/model\r\n\r\nGET /injected HTTP/1.1",
        "test/model%0d%0aX-Injected:%201",
        "test/model\u{0085}X-Injected: 1",
        "test/model\u{2028}X-Injected: 1",
    ];
    for model in evil {
        for stream in [false, true] {
            let r = chat(&gw, json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})).await;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            let e = assert_client_error(status, &text, model);
            assert_eq!(status, 404, "{model:?}: {e}");
        }
    }
    // The same in every other field a client controls: fallbacks, provider names, session
    // ids, tool names, user, metadata; to every dialect (Gemini puts the model in its URL).
    for model in MODELS {
        for evil in evil {
            let body = json!({
                "model": model,
                "models": [evil],
                "provider": {"order": [evil], "ignore": [evil]},
                "session_id": evil,
                "prompt_cache_key": evil,
                "user": evil,
                "metadata": {"x": evil},
                "stop": [evil],
                "messages": [{"role": "user", "content": evil, "name": evil}],
                "tools": [{"type": "function", "function": {"name": evil, "description": evil, "parameters": {"type": "object"}}}],
            });
            let (status, text) = post_raw(&gw, body.to_string().into_bytes()).await;
            assert!(
                status == 200 || (400..500).contains(&status),
                "{model}: {status} {text}"
            );
        }
    }
    // Headers that reach upstreams (`anthropic-beta`) or steer routing (`x-session-id`),
    // with obsolete line folding and raw CR/LF the client library would never send.
    for (name, value) in [
        ("anthropic-beta", "tools-2024\r\n X-Injected: folded"),
        ("anthropic-beta", "tools-2024\r\nX-Injected: split"),
        ("x-session-id", "s\r\n X-Injected: folded"),
        ("anthropic-beta", "tools-2024\rX-Injected: bare-cr"),
        ("anthropic-beta", "tools-2024\nX-Injected: bare-lf"),
    ] {
        for model in MODELS {
            let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
                .to_string();
            let request = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{name}: {value}\r\n\r\n{body}",
                body.len()
            );
            let (status, text) = raw_status(gw.port, request.as_bytes());
            assert!(
                status == 200 || status == 0 || (400..500).contains(&status),
                "{name}: {value:?} to {model}: {status} {text}"
            );
        }
    }
    // Query strings and fragments on the client's URL do not follow the request upstream.
    let r = client()
        .post(gw.url("/v1/chat/completions?x=injected&key=injected#injected"))
        .bearer_auth(KEY)
        .json(&json!({"model": "google/gemini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        mock.request_count() > 0,
        "the legitimate requests went upstream"
    );
    assert_nothing_injected(&mock);
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn path_traversal_in_model_ids_finds_nothing() {
    let (mock, mut gw) = start();
    for model in [
        "../../etc/passwd",
        "test/../test/model",
        "test/model/..",
        "./test/model",
        "test/./model",
        "..%2f..%2fetc%2fpasswd",
        "test%2fmodel",
        "test\\..\\model",
        "/test/model",
        "test/model/",
        "test/model\u{0000}",
        "google/gemini/../../v1/models/gemini-test:generateContent",
        "google/gemini?alt=sse",
        "google/gemini#frag",
    ] {
        let r = chat(
            &gw,
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let e = assert_client_error(status, &text, model);
        assert_eq!(status, 404, "{model}: {e}");
    }
    assert_eq!(mock.request_count(), 0, "no odd model id was served");
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn model_endpoints_with_odd_ids_are_404_never_5xx() {
    let (_mock, mut gw) = start();
    let r = client()
        .get(gw.url("/v1/models/test/model/endpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the plain id works");
    let long = "a".repeat(16 * 1024);
    for id in [
        "",
        "/",
        "//",
        "test",
        "test/model/extra",
        "../../etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "test%2Fmodel",
        "%00",
        "%ff%fe",
        "test/model%0d%0aX-Injected:%201",
        "test/model/endpoints",
        "a/b/c/d/e/f/g",
        "%",
        "%%",
        long.as_str(),
    ] {
        let url = gw.url(&format!("/v1/models/{id}/endpoints"));
        let r = client().get(&url).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            status == 404 || status == 400 || status == 431 || status == 414,
            "{}: {status} {text}",
            &id[..id.len().min(60)]
        );
    }
    // Raw bytes no URL library would send.
    for path in [
        &b"/v1/models/\xff\xfe/endpoints"[..],
        b"/v1/models/a\tb/endpoints",
    ] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, text) = raw_status(gw.port, &request);
        assert!(
            status == 0 || (400..500).contains(&status),
            "{status}: {text}"
        );
    }
    assert_still_serving(&mut gw).await;
}

#[tokio::test]
async fn garbage_on_the_wire_never_stops_the_gateway() {
    let (_mock, mut gw) = start();
    let junk: Vec<Vec<u8>> = vec![
        (0..=255u8).collect(),
        b"\r\n\r\n\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\x00\x00\x00: y\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n : x\r\n\r\n".to_vec(),
        vec![b'G'; 100_000],
    ];
    for request in &junk {
        let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(request);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(
            !out.starts_with(b"HTTP/1.1 5"),
            "{}: {}",
            excerpt(request),
            excerpt(&out)
        );
    }
    assert_still_serving(&mut gw).await;
}
