//! The process's logger: `env_logger` as `RUST_LOG` configures it, behind a cap no directive
//! can lift.
//!
//! Pingora logs whole upstream request heads at debug level, the provider's
//! `Authorization` header included. A filter directive cannot be trusted to hold that back:
//! env_logger lets the most specific directive win, so `RUST_LOG=pingora_proxy::proxy_h1=debug`
//! would undo any `pingora_proxy=info` set here. The cap is enforced instead in a `log::Log`
//! wrapper that drops every record of a `pingora*` target above `info`, whatever the filter
//! let through.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::log_batch::{BatchWriter, Batched, LineBatch};

/// The most verbose level Pingora's own modules may log at.
pub const PINGORA_MAX: Level = Level::Info;

/// Whether a record of `target` at `level` may be logged at all.
pub fn allowed(target: &str, level: Level) -> bool {
    level <= PINGORA_MAX || !target.starts_with("pingora")
}

/// Wraps a logger and drops what [`allowed`] refuses.
pub struct Capped<L> {
    inner: L,
}

impl<L: Log> Capped<L> {
    pub fn new(inner: L) -> Capped<L> {
        Capped { inner }
    }
}

impl<L: Log> Log for Capped<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        allowed(metadata.target(), metadata.level()) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if allowed(record.target(), record.level()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the capped logger: `RUST_LOG` (default `info`) for everything, Pingora at most
/// `info`; lines go to stderr in batches (`log_batch`: access lines up to ~100 ms late, any
/// other line at once). Call `log::logger().flush()` before the process exits.
pub fn init() {
    let batch = LineBatch::new(Box::new(std::io::stderr()));
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .filter_module("pingora", LevelFilter::Info)
            .format(write_line)
            .target(env_logger::Target::Pipe(Box::new(BatchWriter(
                batch.clone(),
            ))))
            .build();
    let max = logger.filter();
    let logger = Batched {
        inner: logger,
        batch: batch.clone(),
    };
    if log::set_boxed_logger(Box::new(Capped::new(logger))).is_ok() {
        // Only for the logger installed: a second `init` leaves no thread or hook behind.
        batch.start_flusher();
        batch.install_panic_flush();
        batch.install();
        log::set_max_level(max);
    }
}

/// env_logger's default line, `[2026-01-02T03:04:05Z INFO  target] message`, written in one
/// pass: the default formatter re-scans every fragment for newlines to indent them, which
/// was most of the access log's cost per request (issue 12). The `[timestamp ` prefix is
/// formatted once a second per thread: formatting the date was most of what remained.
fn write_line(buf: &mut env_logger::fmt::Formatter, record: &Record) -> std::io::Result<()> {
    PREFIX.with(|prefix| {
        let mut prefix = prefix.borrow_mut();
        let now = unix_seconds();
        // The cell starts at second 0, so the first line always formats its prefix.
        if prefix.0 != now {
            prefix.1 = format!("[{} ", buf.timestamp());
            prefix.0 = now;
        }
        buf.write_all(prefix.1.as_bytes())
    })?;
    buf.write_all(padded_level(record.level()).as_bytes())?;
    buf.write_all(record.target().as_bytes())?;
    buf.write_all(b"] ")?;
    match record.args().as_str() {
        Some(text) => buf.write_all(text.as_bytes())?,
        None => write!(buf, "{}", record.args())?,
    }
    buf.write_all(b"\n")
}

thread_local! {
    /// The second the prefix was formatted in, and the prefix.
    static PREFIX: std::cell::RefCell<(u64, String)> = const {
        std::cell::RefCell::new((0, String::new()))
    };
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The level as `{:<5}` writes it, and the space after it.
fn padded_level(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR ",
        Level::Warn => "WARN  ",
        Level::Info => "INFO  ",
        Level::Debug => "DEBUG ",
        Level::Trace => "TRACE ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);

    impl Log for Collect {
        fn enabled(&self, _: &Metadata) -> bool {
            true
        }
        fn log(&self, record: &Record) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", record.level(), record.target()));
        }
        fn flush(&self) {}
    }

    fn emit(logger: &dyn Log, target: &str, level: Level) {
        logger.log(
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("x"))
                .build(),
        );
    }

    #[test]
    fn pingora_targets_never_pass_info() {
        let capped = Capped::new(Collect::default());
        for target in [
            "pingora_proxy",
            "pingora_proxy::proxy_h1",
            "pingora_core::protocols::http::v1::client",
            "pingora",
        ] {
            for level in Level::iter() {
                emit(&capped, target, level);
                let meta = Metadata::builder().target(target).level(level).build();
                assert_eq!(
                    capped.enabled(&meta),
                    level <= Level::Info,
                    "{target} {level}"
                );
            }
        }
        emit(&capped, "switchyard::proxy", Level::Trace);
        let seen = capped.inner.0.lock().unwrap();
        assert_eq!(seen.len(), 4 * 3 + 1, "{seen:?}");
        assert!(seen
            .iter()
            .all(|s| !s.starts_with("DEBUG pingora") && !s.starts_with("TRACE pingora")));
        assert!(seen.contains(&"TRACE switchyard::proxy".to_string()));
    }

    #[test]
    fn levels_are_padded_as_the_format_string_padded_them() {
        for level in Level::iter() {
            assert_eq!(padded_level(level), format!("{level:<5} "));
        }
    }
}
