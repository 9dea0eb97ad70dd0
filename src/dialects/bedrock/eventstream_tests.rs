//! The event-stream decoder against frames it did not write: the published aws-c-event-stream
//! vectors, a stream framed by a Python script, and the mock's encoder; then every way a
//! frame can be damaged.

use super::eventstream::{EventStreamDecoder, FrameError, HeaderValue, Message, MAX_MESSAGE_LEN};
use super::tests::handbuilt_stream;
use crate::mock::eventstream;

/// Every message of `chunks` fed in order, or the first error.
fn decode(chunks: &[&[u8]]) -> Result<Vec<Message>, FrameError> {
    let mut d = EventStreamDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c);
        while let Some(m) = d.next_message()? {
            out.push(m);
        }
    }
    Ok(out)
}

/// A frame with raw header bytes, CRCs computed here (for header shapes the mock cannot write).
fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len() + payload.len()) as u32;
    let mut out = total.to_be_bytes().to_vec();
    out.extend((headers.len() as u32).to_be_bytes());
    out.extend(crc32fast::hash(&out).to_be_bytes());
    out.extend(headers);
    out.extend(payload);
    out.extend(crc32fast::hash(&out).to_be_bytes());
    out
}

#[test]
fn decodes_the_published_aws_c_event_stream_vectors() {
    // aws-c-event-stream's "one header" and "empty message" test vectors.
    let one_header = hex::decode(
        "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e\
         7b27666f6f273a27626172277d8d9c08b1",
    )
    .unwrap();
    let messages = decode(&[&one_header]).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].str_header("content-type"),
        Some("application/json")
    );
    assert_eq!(&messages[0].payload[..], b"{'foo':'bar'}");
    let empty = hex::decode("000000100000000005c248eb7d98c8ff").unwrap();
    let messages = decode(&[&empty]).unwrap();
    assert!(messages[0].headers.is_empty() && messages[0].payload.is_empty());
}

#[test]
fn the_handbuilt_stream_decodes_the_same_split_anywhere_and_matches_the_mock_encoder() {
    let bytes = handbuilt_stream();
    let whole = decode(&[&bytes]).unwrap();
    let kinds: Vec<_> = whole
        .iter()
        .map(|m| m.event_type().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert!(whole.iter().all(|m| m.message_type() == Some("event")));
    assert_eq!(
        &whole[1].payload[..],
        br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#
    );
    for cut in 0..=bytes.len() {
        assert_eq!(
            decode(&[&bytes[..cut], &bytes[cut..]]).unwrap(),
            whole,
            "cut at {cut}"
        );
    }
    let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode(&one_by_one).unwrap(), whole);
    // The mock frames the same events into the same bytes as the Python script did.
    let mocked: Vec<u8> = whole
        .iter()
        .flat_map(|m| eventstream::event(m.event_type().unwrap_or_default(), &m.payload))
        .collect();
    assert_eq!(mocked, bytes);
}

#[test]
fn every_header_type_is_read() {
    let mut h = Vec::new();
    let mut put = |name: &str, kind: u8, value: &[u8]| {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(kind);
        h.extend_from_slice(value);
    };
    put("t", 0, &[]);
    put("f", 1, &[]);
    put("b", 2, &[0xff]);
    put("s", 3, &(-2i16).to_be_bytes());
    put("i", 4, &(-3i32).to_be_bytes());
    put("l", 5, &(-4i64).to_be_bytes());
    put("bytes", 6, &[0, 2, 0xde, 0xad]);
    put("str", 7, &[0, 2, b'o', b'k']);
    put("ts", 8, &1_700_000_000_000i64.to_be_bytes());
    put("id", 9, &[7; 16]);
    let m = decode(&[&frame(&h, b"x")]).unwrap().remove(0);
    let values: Vec<&HeaderValue> = m.headers.iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        [
            &HeaderValue::Bool(true),
            &HeaderValue::Bool(false),
            &HeaderValue::Byte(-1),
            &HeaderValue::Short(-2),
            &HeaderValue::Int(-3),
            &HeaderValue::Long(-4),
            &HeaderValue::Bytes(bytes::Bytes::from_static(&[0xde, 0xad])),
            &HeaderValue::String("ok".into()),
            &HeaderValue::Timestamp(1_700_000_000_000),
            &HeaderValue::Uuid([7; 16]),
        ]
    );
    assert_eq!(m.str_header("str"), Some("ok"));
    assert_eq!(m.str_header("i"), None, "not a string");
}

#[test]
fn every_single_bit_flip_is_a_crc_error() {
    let good = eventstream::event("contentBlockDelta", br#"{"delta":{"text":"Hi"}}"#);
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let e = decode(&[&bad]).expect_err("a flipped bit must not decode");
        let prelude = bit < 12 * 8;
        assert!(
            matches!(
                (&e, prelude),
                (FrameError::PreludeCrc { .. }, true) | (FrameError::MessageCrc { .. }, false)
            ),
            "bit {bit}: {e}"
        );
    }
}

#[test]
fn an_error_poisons_the_decoder_and_frees_its_buffer() {
    let mut bad = eventstream::event("messageStart", b"{}");
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut d = EventStreamDecoder::new();
    d.feed(&bad);
    let e = d.next_message().unwrap_err();
    assert!(matches!(e, FrameError::MessageCrc { .. }), "{e}");
    d.feed(&eventstream::event("messageStart", b"{}"));
    assert_eq!(
        d.next_message().unwrap_err(),
        e,
        "no resynchronising on later bytes"
    );
    assert_eq!(d.buffered(), 0);
}

#[test]
fn absurd_lengths_are_errors_before_anything_is_buffered() {
    let prelude = |total: u32, headers: u32| {
        let mut p = total.to_be_bytes().to_vec();
        p.extend(headers.to_be_bytes());
        p.extend(crc32fast::hash(&p).to_be_bytes());
        p
    };
    let too_long = (MAX_MESSAGE_LEN + 1) as u32;
    for (total, headers) in [
        (u32::MAX, 0),
        (too_long, 0),
        (15, 0),
        (0, 0),
        (20, 5),
        (100, 85),
    ] {
        let mut d = EventStreamDecoder::new();
        d.feed(&prelude(total, headers));
        assert_eq!(
            d.next_message(),
            Err(FrameError::Length { total, headers }),
            "{total}/{headers}"
        );
        d.feed(&vec![0; 1 << 20]);
        assert_eq!(d.buffered(), 0, "nothing kept after the error");
    }
    // The largest allowed message only waits for its bytes.
    let mut d = EventStreamDecoder::new();
    d.feed(&prelude(MAX_MESSAGE_LEN as u32, 0));
    assert_eq!(d.next_message(), Ok(None));
}

#[test]
fn unreadable_headers_are_errors() {
    let cases: [(&[u8], &str); 4] = [
        (&[5, b'a'], "runs past"),
        (&[1, b'a', 42], "unknown value type 42"),
        (&[1, b'a', 7, 0, 9, b'x'], "runs past"),
        (&[2, 0xff, 0xfe, 0], "not UTF-8"),
    ];
    for (headers, why) in cases {
        let e = decode(&[&frame(headers, b"")]).unwrap_err();
        assert!(
            matches!(&e, FrameError::Header(m) if m.contains(why)),
            "{headers:?}: {e}"
        );
    }
}
