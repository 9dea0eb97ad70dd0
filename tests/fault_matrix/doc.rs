//! `docs/reliability.md` shows both tables, rendered here; a test keeps the two in step.

use super::client::CLIENT_FAULTS;
use super::upstream::{record_for_ending, record_for_whole, RecordExpect};
use super::upstream_table::*;

pub(crate) fn whole_text(w: Whole, retry_after: Option<&str>) -> String {
    match w {
        Whole::Answer { estimated: false } => "200, the answer".into(),
        Whole::Answer { estimated: true } => "200, usage `estimated`".into(),
        Whole::Error(s, kind) => error_text(s, kind, retry_after),
        Whole::CutOff => "200 head, then the body is cut off".into(),
        Whole::ErrorUnder200(kind) => format!("200 head, then the gateway's `{kind}` body"),
    }
}

pub(crate) fn error_text(status: u16, kind: &str, retry_after: Option<&str>) -> String {
    match retry_after {
        Some(r) if status == 429 => format!("{status} `{kind}`, `Retry-After: {r}`"),
        _ => format!("{status} `{kind}`"),
    }
}

pub(crate) fn ending_text(e: Ending, retry_after: Option<&str>) -> String {
    match e {
        Ending::Error(s, kind) => format!("{} (no stream)", error_text(s, kind, retry_after)),
        Ending::Done { estimated: false } => "events, usage chunk, `[DONE]`".into(),
        Ending::Done { estimated: true } => "events, usage chunk (`estimated`), `[DONE]`".into(),
        Ending::ErrorChunk => "events, error chunk, usage chunk, `[DONE]`".into(),
    }
}

pub(crate) fn inject_text(i: Inject) -> String {
    match i {
        Inject::Refused => "a port with no listener".into(),
        Inject::Knobs(k) | Inject::SlowKnobs(k) => format!("`{k}`"),
    }
}

pub(crate) fn record_text(r: &RecordExpect) -> String {
    let mut out = r.status.to_string();
    if r.error {
        out.push_str(", `error`");
    }
    if r.estimated == Some(true) {
        out.push_str(", `estimated`");
    }
    out
}

/// Both tables, as `docs/reliability.md` shows them between its markers.
pub(crate) fn render_doc_tables() -> String {
    let mut out = String::from(
        "| upstream fault | mock knob | alone: non-stream | alone: stream | with a second candidate | ledger record (alone) |\n|---|---|---|---|---|---|\n",
    );
    for row in UPSTREAM_FAULTS {
        let backup = match row.backup {
            Backup::FailsOver => "fails over: 200 from the second, 2 attempts",
            Backup::Stays => "no failover (bytes were sent): same as alone",
        };
        let (whole, stream) = (
            record_text(&record_for_whole(row.whole, "")),
            record_text(&record_for_ending(row.stream, "")),
        );
        let record = if whole == stream {
            whole
        } else {
            format!("non-stream: {whole}; stream: {stream}")
        };
        let mut fault = row.fault.to_string();
        for (bug_fault, shape) in KNOWN_BUGS {
            if *bug_fault == row.fault {
                fault.push_str(match shape {
                    Shape::Whole => " (bug: non-stream)",
                    Shape::Stream => " (bug: stream)",
                });
            }
        }
        out.push_str(&format!(
            "| {fault} | {} | {} | {} | {backup} | {record} |\n",
            inject_text(row.inject),
            whole_text(row.whole, row.retry_after),
            ending_text(row.stream, row.retry_after),
        ));
    }
    out.push_str(
        "\n| client fault | what the client sees | upstream | ledger |\n|---|---|---|---|\n",
    );
    for row in CLIENT_FAULTS {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.fault, row.what_the_client_sees, row.upstream, row.record
        ));
    }
    out
}

pub(crate) const BEGIN: &str = "<!-- fault-matrix:begin (generated from tests/fault_matrix/) -->\n";
pub(crate) const END: &str = "<!-- fault-matrix:end -->";

#[test]
fn the_reliability_doc_shows_this_matrix() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let doc = std::fs::read_to_string(&path).expect("docs/reliability.md");
    let start = doc.find(BEGIN).expect("the begin marker") + BEGIN.len();
    let end = doc.find(END).expect("the end marker");
    let table = render_doc_tables();
    if std::env::var_os("UPDATE_RELIABILITY_DOC").is_some() {
        let updated = format!("{}{table}{}", &doc[..start], &doc[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &doc[start..end],
        table,
        "docs/reliability.md differs from the tables in tests/fault_matrix/: rerun this test with UPDATE_RELIABILITY_DOC=1"
    );
    // Every client fault has its test.
    let me = include_str!("client.rs");
    for row in CLIENT_FAULTS {
        assert!(
            me.matches(&format!("\"{}\"", row.fault)).count() >= 2,
            "no test runs client fault {:?}",
            row.fault
        );
    }
}
