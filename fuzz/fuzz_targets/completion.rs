//! A provider's chat completion, scanned (`api::scan`) and stamped: never a panic; wherever
//! serde reads one JSON object, the scan finds the same fields and the stamped answer is
//! JSON; the usage read in the scan's pass is the usage read from its text; and a stamped
//! answer is always JSON unless the provider's nested bytes were not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use switchyard::api::scan::top_level_fields;
use switchyard::api::stamp::{Completion, Stamp};
use switchyard::metering::Usage;

fuzz_target!(|data: &[u8]| {
    let scanned = top_level_fields(data);
    let by_serde = serde_json::from_slice::<indexmap::IndexMap<String, &RawValue>>(data);
    if let Ok(fields) = &by_serde {
        let scanned = scanned.as_ref().expect("serde read an object the scan refused");
        // serde keeps the last of duplicate keys; compare when there are none.
        if scanned.len() == fields.len() {
            for ((k, v), (sk, sv)) in fields.iter().zip(scanned) {
                assert_eq!((k.as_str(), v.get()), (sk.as_ref(), *sv));
            }
        }
    }
    let Some(completion) = Completion::parse(data) else {
        assert!(scanned.is_none(), "the scan found fields the completion reader refused");
        return;
    };
    // The usage read in the scan's pass is the usage read from the first `usage` value.
    let fields = scanned.expect("the completion reader accepted what the scan refused");
    let first_usage = fields.iter().find(|(k, _)| k == "usage");
    assert_eq!(
        completion.peek().usage,
        first_usage.and_then(|(_, raw)| Usage::from_openai_raw(raw))
    );
    let stamped = completion.stamp(&Stamp {
        id: "gen-1",
        model: "m",
        provider: "p",
        usage: Usage::default().to_openai(Default::default()),
    });
    if by_serde.is_ok() {
        // Read raw, as the provider's body was: a number too large for a float is still JSON.
        let fields: indexmap::IndexMap<String, &RawValue> =
            serde_json::from_slice(&stamped).expect("stamped is JSON");
        assert_eq!(fields["id"].get(), "\"gen-1\"");
    }
});
