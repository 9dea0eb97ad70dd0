//! A client's chat request body, parsed and converted for every dialect: never a panic, and
//! whatever is accepted becomes a JSON object upstream that names the provider's model and
//! carries none of the gateway-only fields. The strict pass (`api::strict`) accepts a body
//! only where serde does, with the same fields.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard::api::ChatRequest;
use switchyard::catalog::Dialect;
use switchyard::dialects;

fuzz_target!(|data: &[u8]| {
    if let Some(fields) = switchyard::api::strict::object_fields(data) {
        let by_serde = switchyard::api::fields::raw_fields(data)
            .expect("the strict pass accepted a body serde refuses");
        let base = data.as_ptr() as usize;
        assert_eq!(fields.len(), by_serde.len());
        for ((key, value), (serde_key, raw)) in fields.iter().zip(&by_serde) {
            assert_eq!(&data[key.clone()], serde_key.as_bytes());
            assert_eq!(value.start, raw.get().as_ptr() as usize - base);
            assert_eq!(value.len(), raw.get().len());
        }
    }
    let Ok(chat) = ChatRequest::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = chat.conversation_opening();
    for dialect in [
        Dialect::OpenAi,
        Dialect::Azure,
        Dialect::Anthropic,
        Dialect::Gemini,
        Dialect::Bedrock,
    ] {
        for stream in [false, true] {
            let Ok(up) = dialects::chat_request(dialect, &chat.fields, "up-model", stream, 4096)
            else {
                continue;
            };
            let body: serde_json::Value = serde_json::from_slice(&up.body).unwrap_or_else(|e| {
                panic!(
                    "{dialect:?} upstream body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&up.body)
                )
            });
            assert!(body.is_object(), "{dialect:?}: {body}");
            if matches!(dialect, Dialect::OpenAi | Dialect::Azure) {
                assert_eq!(body["model"], "up-model", "{body}");
                for gone in switchyard::api::chat::GATEWAY_ONLY_FIELDS {
                    assert!(body.get(*gone).is_none(), "{gone} went upstream: {body}");
                }
            }
        }
    }
});
