//! The upstream table: each fault injected at the first provider, what a non-stream and a
//! streaming client get alone and with a second candidate, and what the record says.

/// How the fault is injected at the first provider.
#[derive(Clone, Copy)]
pub(crate) enum Inject {
    /// Mock knobs appended to the upstream model (`m+status=429`).
    Knobs(&'static str),
    /// The provider's port has no listener.
    Refused,
    /// Knobs on a mock of its own behind a provider with generous timeouts, for an answer
    /// that keeps the (debug-built) mock busy for seconds.
    SlowKnobs(&'static str),
}

/// What a non-stream client gets.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Whole {
    /// 200 and a chat completion; `estimated` says the usage was estimated.
    Answer { estimated: bool },
    /// The gateway's own error, in OpenAI shape, with this status and `error.type`.
    Error(u16, &'static str),
    /// The 200 head is out when the provider breaks: the body ends cut off.
    CutOff,
    /// The 200 head is out when the answer turns out unreadable: the gateway's error, in
    /// OpenAI shape with this `error.type`, is the body under that 200 (the head is written
    /// before the body is read; see `docs/reliability.md`).
    ErrorUnder200(&'static str),
}

/// How a stream ends for its client.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Ending {
    /// No stream at all: the gateway's error, with this status and `error.type`.
    Error(u16, &'static str),
    /// Events, one usage chunk, `[DONE]`; `estimated` says the usage was estimated.
    Done { estimated: bool },
    /// Events, a chunk with `error` and `finish_reason: "error"`, the usage chunk, `[DONE]`.
    ErrorChunk,
}

/// With a second candidate behind the faulty one.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Backup {
    /// The second provider answers (2 attempts); the client never sees the fault.
    FailsOver,
    /// Bytes already reached the client: no failover, the same outcome as alone.
    Stays,
}

pub(crate) struct UpstreamFault {
    pub(crate) fault: &'static str,
    pub(crate) inject: Inject,
    pub(crate) whole: Whole,
    pub(crate) stream: Ending,
    pub(crate) backup: Backup,
    /// `Retry-After` the client gets when the answer is a 429.
    pub(crate) retry_after: Option<&'static str>,
}

pub(crate) const UPSTREAM_FAULTS: &[UpstreamFault] = &[
    UpstreamFault {
        fault: "connection refused",
        inject: Inject::Refused,
        whole: Whole::Error(502, "upstream_error"),
        stream: Ending::Error(502, "upstream_error"),
        backup: Backup::FailsOver,
        retry_after: None,
    },
    UpstreamFault {
        fault: "accepts, then silence",
        inject: Inject::Knobs("silence"),
        whole: Whole::Error(504, "timeout_error"),
        stream: Ending::Error(504, "timeout_error"),
        backup: Backup::FailsOver,
        retry_after: None,
    },
    UpstreamFault {
        fault: "response head later than `first_byte`",
        inject: Inject::Knobs("delay_ms=3500"),
        whole: Whole::Error(504, "timeout_error"),
        stream: Ending::Error(504, "timeout_error"),
        backup: Backup::FailsOver,
        retry_after: None,
    },
    UpstreamFault {
        fault: "429 with Retry-After",
        inject: Inject::Knobs("status=429+retry_after=7"),
        whole: Whole::Error(429, "rate_limit_error"),
        stream: Ending::Error(429, "rate_limit_error"),
        backup: Backup::FailsOver,
        retry_after: Some("7"),
    },
    UpstreamFault {
        fault: "429 without Retry-After",
        inject: Inject::Knobs("status=429"),
        whole: Whole::Error(429, "rate_limit_error"),
        stream: Ending::Error(429, "rate_limit_error"),
        backup: Backup::FailsOver,
        retry_after: Some("1"),
    },
    UpstreamFault {
        fault: "500",
        inject: Inject::Knobs("status=500"),
        whole: Whole::Error(502, "upstream_error"),
        stream: Ending::Error(502, "upstream_error"),
        backup: Backup::FailsOver,
        retry_after: None,
    },
    UpstreamFault {
        fault: "502",
        inject: Inject::Knobs("status=502"),
        whole: Whole::Error(502, "upstream_error"),
        stream: Ending::Error(502, "upstream_error"),
        backup: Backup::FailsOver,
        retry_after: None,
    },
    UpstreamFault {
        fault: "503",
        inject: Inject::Knobs("status=503"),
        whole: Whole::Error(502, "upstream_error"),
        stream: Ending::Error(502, "upstream_error"),
        backup: Backup::FailsOver,
        retry_after: None,
    },
    UpstreamFault {
        fault: "reset before the first byte",
        inject: Inject::Knobs("reset=before"),
        whole: Whole::Error(502, "upstream_error"),
        stream: Ending::Error(502, "upstream_error"),
        backup: Backup::FailsOver,
        retry_after: None,
    },
    UpstreamFault {
        fault: "reset mid-response",
        inject: Inject::Knobs("reset=mid+chunks=20"),
        whole: Whole::CutOff,
        stream: Ending::ErrorChunk,
        backup: Backup::Stays,
        retry_after: None,
    },
    UpstreamFault {
        fault: "malformed JSON",
        inject: Inject::Knobs("malformed"),
        whole: Whole::ErrorUnder200("upstream_error"),
        stream: Ending::Done { estimated: false },
        backup: Backup::Stays,
        retry_after: None,
    },
    UpstreamFault {
        fault: "truncated SSE (no finish, usage or `[DONE]`)",
        inject: Inject::Knobs("truncated"),
        whole: Whole::Answer { estimated: false },
        stream: Ending::ErrorChunk,
        backup: Backup::Stays,
        retry_after: None,
    },
    UpstreamFault {
        fault: "no usage reported",
        inject: Inject::Knobs("no_usage"),
        whole: Whole::Answer { estimated: true },
        stream: Ending::Done { estimated: true },
        backup: Backup::Stays,
        retry_after: None,
    },
    UpstreamFault {
        fault: "gigantic answer (8 MiB)",
        inject: Inject::SlowKnobs("huge=8388608"),
        whole: Whole::Answer { estimated: false },
        stream: Ending::Done { estimated: false },
        backup: Backup::Stays,
        retry_after: None,
    },
];

/// Gateway bugs this matrix found, by fault: those cells are left out of the main matrix test
/// and run by `#[ignore]`d `bug_*` tests until they are fixed (then drop the entry and the
/// `#[ignore]`). Each is described in `docs/reliability.md`. None is open.
pub(crate) const KNOWN_BUGS: &[(&str, Shape)] = &[];

/// A request shape: a non-stream answer or a stream.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Shape {
    Whole,
    Stream,
}
