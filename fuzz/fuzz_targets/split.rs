//! Input layout shared by the stream targets: byte 0 says how many cut points follow (0..=7),
//! each a little-endian u16 taken modulo the stream's length; the rest is the stream. So the
//! fuzzer chooses both the bytes and where the network splits them.

/// The stream bytes and the chunks they arrive in (in order, covering every byte once).
#[allow(dead_code)]
pub fn split(data: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let (cuts, stream) = cut_points(data);
    (stream, chunks(stream, &cuts))
}

/// The cut points the input asks for, and the rest of the input.
pub fn cut_points(data: &[u8]) -> (Vec<u16>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), &[]);
    };
    let n = (n % 8) as usize;
    if rest.len() < 2 * n {
        return (Vec::new(), rest);
    }
    let (cuts, stream) = rest.split_at(2 * n);
    let cuts = cuts
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    (cuts, stream)
}

/// `stream` cut at each point (taken modulo its length).
pub fn chunks<'a>(stream: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| c as usize % (stream.len() + 1))
        .collect();
    at.sort_unstable();
    let mut chunks = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for cut in at {
        chunks.push(&stream[start..cut]);
        start = cut;
    }
    chunks.push(&stream[start..]);
    chunks
}

/// Every event of converter output is `data: <JSON object>\n\n`.
#[allow(dead_code)]
pub fn assert_openai_events(out: &[u8]) {
    let text = std::str::from_utf8(out).expect("converter output is UTF-8");
    if text.is_empty() {
        return;
    }
    assert!(text.ends_with("\n\n"), "output ends mid-event: {text:?}");
    for event in text[..text.len() - 2].split("\n\n") {
        // A comment (`: keep-alive`, Anthropic's ping passed on) is well-formed SSE that
        // clients skip.
        if event.starts_with(':') && !event.contains('\n') {
            continue;
        }
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data event: {event:?}"));
        let v: serde_json::Value = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data:?}"));
        assert!(v.is_object(), "event data is not an object: {data}");
    }
}
