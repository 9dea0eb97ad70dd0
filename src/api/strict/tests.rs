//! The strict pass against serde_json itself: whatever it accepts, serde accepts with the
//! same fields; and it accepts what serde accepts, but for the cases it leaves to serde.

use super::*;
use crate::api::fields::raw_fields;

/// Bodies a client might send, valid JSON objects all, with the tokens a mutation can break.
const SEEDS: &[&str] = &[
    r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello"}],"max_tokens":128,"temperature":0.2}"#,
    r#"{"model":"a/b","stream":true,"stream_options":{"include_usage":true},"n":1,"stop":null,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]}"#,
    r#" { "model" : "x" , "messages" : [ { "role" : "user" , "content" : [ { "type" : "text" , "text" : "caf\u00e9 \"q\" \\ \/ \b\f\n\r\t \ud83d\ude00 \udc00" } ] } ] } "#,
    "{\"model\":\"m\",\"x\":[-0,0.5,-1.25e+10,3E-2,1e999,12345678901234567890],\"y\":{},\"z\":[],\"w\":[[],{},[{}]]}\n",
    "{\"k\":\"caf\u{e9} \u{1f600} \u{4e2d}\u{6587}\",\"t\":true,\"f\":false,\"n\":null}",
    r#"{}"#,
    r#"{"a":{"b":{"c":[1,[2,[3,{"d\u0041":"e"}]]]}}}"#,
    "{\t\"a\"\r\n:\n1\r}",
];

/// Checks one body; `true` when the strict pass answered.
fn check(body: &[u8]) -> bool {
    let strict = object_fields(body);
    let serde = raw_fields(body);
    match (&strict, &serde) {
        (Some(ours), Ok(theirs)) => {
            let base = body.as_ptr() as usize;
            let theirs: Vec<(String, Range<usize>)> = theirs
                .iter()
                .map(|(k, v)| {
                    let start = v.get().as_ptr() as usize - base;
                    (k.to_string(), start..start + v.get().len())
                })
                .collect();
            let ours: Vec<(String, Range<usize>)> = ours
                .iter()
                .map(|(k, v)| {
                    let key = std::str::from_utf8(&body[k.clone()]).unwrap();
                    (key.to_string(), v.clone())
                })
                .collect();
            assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(body));
        }
        (Some(_), Err(e)) => panic!(
            "accepted what serde refuses ({e}): {:?}",
            String::from_utf8_lossy(body)
        ),
        (None, Ok(theirs)) => {
            // Left to serde: only a key with an escape (nesting over 128 is not in this corpus).
            assert!(
                theirs
                    .iter()
                    .any(|(k, _)| matches!(k, std::borrow::Cow::Owned(_))),
                "refused what serde accepts: {:?}",
                String::from_utf8_lossy(body)
            );
        }
        (None, Err(_)) => {}
    }
    strict.is_some()
}

#[test]
fn valid_bodies_take_the_fast_path_with_serdes_fields() {
    for seed in SEEDS {
        assert!(check(seed.as_bytes()), "{seed}");
    }
}

#[test]
fn faults_are_left_to_serde() {
    for body in [
        &br#"{"a":1,}"#[..],
        br#"{"a":01}"#,
        br#"{"a":-}"#,
        br#"{"a":1.}"#,
        br#"{"a":1e}"#,
        br#"{"a":.5}"#,
        br#"{"a":+1}"#,
        br#"{"a":[1,]}"#,
        br#"{"a":[1 2]}"#,
        br#"{"a":{"b"}}"#,
        br#"{"a":{"b":1,}}"#,
        br#"{"a":{1:2}}"#,
        br#"{"a":tru}"#,
        br#"{"a":truex}"#,
        br#"{"a":nul}"#,
        br#"{"a":"\x"}"#,
        br#"{"a":"\u12g4"}"#,
        br#"{"a":"\u12"}"#,
        b"{\"a\":\"tab\there\"}",
        b"{\"a\":\"\x00\"}",
        b"{\"a\":\"\xff\"}",
        b"\xef\xbb\xbf{}",
        br#"{"a":1} {}"#,
        br#"{"a":1"#,
        br#"{"a":"x"#,
        br#"[1]"#,
        br#""x""#,
        br#"{"a" 1}"#,
        br#"{a:1}"#,
        br#"{"a":1]"#,
        br#"{"a":[}"#,
        br#"{"a":{]}"#,
        br#"{"a":[1}"#,
        br#"{"a":{"b":1]}"#,
        b"{\"a\":1}\x0b",
        b"",
    ] {
        assert!(
            object_fields(body).is_none(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
        check(body);
    }
}

#[test]
fn escaped_keys_and_deep_nesting_are_left_to_serde() {
    assert!(object_fields(br#"{"mod\u0065l":"a"}"#).is_none());
    let nested = |depth: usize| format!("{{\"x\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
    assert!(object_fields(nested(128).as_bytes()).is_some());
    assert!(object_fields(nested(129).as_bytes()).is_none());
    assert!(raw_fields(nested(129).as_bytes()).is_ok(), "serde judges");
}

/// A small deterministic generator: the same cases every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to JSON's grammar, and some that must never pass.
const INTERESTING: &[u8] =
    b"\"\\{}[]:,-+.0123456789eEtrufalsn /bu \t\r\n\x00\x1f\x7f\xc3\xa9\xff\xed\xa0";

#[test]
fn mutated_bodies_agree_with_serde() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut cases, mut fast) = (0, 0);
    for seed in SEEDS {
        for _ in 0..4000 {
            let mut body = seed.as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(body.len() + 1);
                let byte = INTERESTING[rng.below(INTERESTING.len())];
                match rng.below(4) {
                    0 if at < body.len() => body[at] = byte,
                    1 => body.insert(at, byte),
                    2 if at < body.len() => {
                        body.remove(at);
                    }
                    _ => body.truncate(at),
                }
            }
            cases += 1;
            fast += usize::from(check(&body));
        }
    }
    // Some mutations keep the body valid (a digit for a digit, a space added): those must
    // have taken the fast path too, which `check` asserts; this only says the corpus did.
    assert!(fast > cases / 50, "{fast} of {cases} took the fast path");
}

#[test]
fn the_word_at_a_time_search_finds_the_first_stop() {
    let naive = |text: &[u8]| text.iter().position(|b| STRING_STOP[*b as usize]);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    // Plain text with, now and then, a stop or a byte near one (0x1f/0x20, 0x21/0x23,
    // 0x5b/0x5d, 0x80 and up): every offset in and across words.
    const NEAR: &[u8] = b"\x00\x01\x1f\x20\x21\x22\x23\x5b\x5c\x5d\x7f\x80\xa2\xdc\xff";
    for _ in 0..50_000 {
        let len = rng.below(40);
        let text: Vec<u8> = (0..len)
            .map(|_| match rng.below(8) {
                0 => NEAR[rng.below(NEAR.len())],
                _ => b'a' + rng.below(26) as u8,
            })
            .collect();
        assert_eq!(find_string_stop(&text), naive(&text), "{text:?}");
    }
}
