//! Generation ids: every id a client is given names a record it can read back.

use serde_json::json;

use super::client::{client_config, hello};
use super::common::*;
use super::upstream::record_of;

/// Every `x-generation-id` a client is given names a record it can read back, whatever the
/// request's fate (DESIGN §3: the id is the generation's).
pub(crate) async fn ids_given_for_refused_requests() -> Vec<(String, u16, Option<String>, u16)> {
    let mock = MockServer::start("127.0.0.1:0").unwrap();
    let gw = Gateway::start(&client_config(&mock));
    let c = client();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{not json".to_vec()),
        ("no model", br#"{"messages": []}"#.to_vec()),
        ("unknown model", br#"{"model": "no/such", "messages": []}"#.to_vec()),
        (
            "too large",
            json!({"model": "test/model", "messages": [{"role": "user", "content": "x".repeat(2 << 20)}]})
                .to_string()
                .into_bytes(),
        ),
        ("served", hello().to_string().into_bytes()),
    ];
    let mut out = Vec::new();
    for (what, body) in cases {
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let id = r
            .headers()
            .get("x-generation-id")
            .map(|v| v.to_str().unwrap().to_string());
        r.text().await.unwrap();
        let lookup = match &id {
            Some(id) => record_of(&gw, id).await.map_or(404, |_| 200),
            None => 0,
        };
        out.push((what.to_string(), status, id, lookup));
    }
    out
}

#[tokio::test]

pub(crate) async fn every_generation_id_a_client_gets_has_a_record() {
    let orphans: Vec<String> = ids_given_for_refused_requests()
        .await
        .into_iter()
        .filter(|(_, _, id, lookup)| id.is_some() && *lookup != 200)
        .map(|(what, status, id, _)| format!("{what} ({status}): {id:?}"))
        .collect();
    assert!(
        orphans.is_empty(),
        "x-generation-id with no record behind it:\n{}",
        orphans.join("\n")
    );
}
