//! Golden files (STYLE: an input and the expected output per dialect, side by side):
//! `tests/golden/<dialect>/<case>.input.json` -> `.expected.json` (provider request, plus an
//! optional `.dropped.json`), `<case>.upstream.json` -> `.expected.json` (OpenAI completion),
//! `<case>.upstream.sse` -> `.expected.sse` plus `.summary.json` (usage, finish, error).
//! `SWITCHYARD_BLESS=1 cargo test --lib dialects` rewrites the expected files.

use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Stream,
}

#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub kind: Kind,
    pub input: Vec<u8>,
    dir: PathBuf,
}

pub fn cases(dialect: &str) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(dialect);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut cases = Vec::new();
    for file in names {
        let (name, kind) = if let Some(n) = file.strip_suffix(".input.json") {
            (n, Kind::Request)
        } else if let Some(n) = file.strip_suffix(".upstream.json") {
            (n, Kind::Response)
        } else if let Some(n) = file.strip_suffix(".upstream.sse") {
            (n, Kind::Stream)
        } else {
            continue;
        };
        let input = std::fs::read(dir.join(&file)).unwrap_or_default();
        cases.push(Case {
            name: name.to_string(),
            kind,
            input,
            dir: dir.clone(),
        });
    }
    cases
}

impl Case {
    /// Compares `actual` with `<case>.<suffix>`: as JSON for `.json`, as the list of event
    /// payloads for `.sse`. Returns a readable difference.
    pub fn check(&self, suffix: &str, actual: &str) -> Result<(), String> {
        let path = self.dir.join(format!("{}.{suffix}", self.name));
        if std::env::var_os("SWITCHYARD_BLESS").is_some() {
            std::fs::write(&path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let expected =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let same = if suffix.ends_with(".sse") {
            sse_payloads(&expected) == sse_payloads(actual)
        } else {
            serde_json::from_str::<Value>(&expected).ok()
                == serde_json::from_str::<Value>(actual).ok()
        };
        match same {
            true => Ok(()),
            false => Err(format!(
                "{}: expected\n{expected}\nactual\n{actual}",
                path.display()
            )),
        }
    }

    /// Like [`Case::check`] for a file that may be absent when `actual` is `None`.
    pub fn check_optional(&self, suffix: &str, actual: Option<&str>) -> Result<(), String> {
        let path = self.dir.join(format!("{}.{suffix}", self.name));
        match actual {
            Some(a) => self.check(suffix, a),
            None if path.exists() => Err(format!("{}: expected nothing", path.display())),
            None => Ok(()),
        }
    }
}

/// Each `data:` payload, as JSON when it is JSON.
pub fn sse_payloads(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_string())))
        .collect()
}

/// `JSON` pretty-printed with a final newline, as the files are written.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// A dialect's stream converter, as the shared stream checks drive it.
pub trait StreamUnderTest {
    fn feed(&mut self, chunk: &[u8]) -> bytes::Bytes;
    fn end(&mut self) -> bytes::Bytes;
    fn usage(&self) -> Option<crate::metering::Usage>;
    fn finish_reason(&self) -> Option<&str>;
    fn error(&self) -> Option<&Value>;
}

/// Feeds the chunks in order: everything emitted, and the summary (usage, finish, error).
pub fn run_stream<C: StreamUnderTest>(mut conv: C, chunks: &[&[u8]]) -> (String, Value) {
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&conv.feed(c));
    }
    out.extend_from_slice(&conv.end());
    let usage = conv.usage().map(|u| {
        let mut v = serde_json::json!({ "prompt": u.prompt, "completion": u.completion, "cached_prompt": u.cached_prompt,
                            "reasoning": u.reasoning, "estimated": u.estimated });
        if u.cache_write > 0 {
            v["cache_write"] = u.cache_write.into();
        }
        v
    });
    let summary = serde_json::json!({ "usage": usage, "finish_reason": conv.finish_reason(), "error": conv.error() });
    (String::from_utf8_lossy(&out).into_owned(), summary)
}

/// Every stream case of the dialect converts the same whole, split in two at every byte
/// boundary, and fed byte by byte.
pub fn assert_split_anywhere_converts_identically<C: StreamUnderTest>(
    dialect: &str,
    make: impl Fn() -> C,
) {
    let cases = cases(dialect);
    assert!(
        cases.iter().any(|c| c.kind == Kind::Stream),
        "no stream cases for {dialect}"
    );
    for case in cases.iter().filter(|c| c.kind == Kind::Stream) {
        let bytes = &case.input[..];
        let whole = run_stream(make(), &[bytes]);
        for cut in 0..=bytes.len() {
            assert_eq!(
                run_stream(make(), &[&bytes[..cut], &bytes[cut..]]),
                whole,
                "{} cut at {cut}",
                case.name
            );
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(
            run_stream(make(), &one_by_one),
            whole,
            "{} byte by byte",
            case.name
        );
    }
}
