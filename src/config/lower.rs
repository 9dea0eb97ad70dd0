//! Validation and lowering: raw YAML → [`Snapshot`]. Every problem found is collected with its
//! path, file and position, so `switchyard check` can list them all at once. Providers and
//! models are lowered in `providers.rs` and `models.rs`, keys in `keys.rs`; included catalog
//! files are read in `include.rs`.

use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::duration::parse_duration;
use super::locate::{render_path, PathSeg, PositionIndex};
use super::schema::*;
use super::snapshot::*;
use super::ConfigError;
use crate::catalog::*;

/// How the loader reads environment variables (tests pass their own map).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub struct Lowered {
    pub snapshot: Snapshot,
    pub warnings: Vec<ConfigError>,
}

/// One file that contributes to the config: the main file (index 0) or an included catalog.
pub(super) struct Source {
    /// `None` for the main file, whose name the caller's `LoadError` carries.
    pub file: Option<String>,
    text: String,
    /// Built on the first problem that needs a position: a file that loads cleanly is parsed
    /// once (by serde), not twice, which halves the load of a large catalog.
    index: OnceLock<PositionIndex>,
}

impl Source {
    pub fn new(file: Option<String>, text: String) -> Source {
        Source {
            file,
            text,
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> &PositionIndex {
        self.index.get_or_init(|| PositionIndex::new(&self.text))
    }
}

pub(super) struct Lowering<'a> {
    pub sources: Vec<Source>,
    /// The source whose entries are being lowered: errors point into that file.
    pub current: usize,
    pub env: EnvLookup<'a>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
    pub included_files: Vec<PathBuf>,
    /// Where relative paths in the main file (credential files) are resolved.
    pub base_dir: PathBuf,
    /// The credential files read, which a reload must also follow.
    pub secret_files: Vec<PathBuf>,
}

pub(super) fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

pub(super) fn child(path: &[PathSeg], seg: PathSeg) -> Vec<PathSeg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

/// Lowers the main file's `text`; `base_dir` is where its `include` globs and credential
/// files are resolved.
pub fn lower(
    text: &str,
    env: EnvLookup<'_>,
    base_dir: Option<&Path>,
) -> Result<Lowered, Vec<ConfigError>> {
    if text.trim().is_empty() {
        return Err(vec![ConfigError::new("", None, "the file is empty")]);
    }
    let raw: RawConfig = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let position = e.location().map(|l| (l.line(), l.column()));
            return Err(vec![ConfigError::new("", position, &e.to_string())]);
        }
    };
    let mut lowering = Lowering {
        sources: vec![Source::new(None, text.to_string())],
        current: 0,
        env,
        errors: Vec::new(),
        warnings: Vec::new(),
        included_files: Vec::new(),
        base_dir: base_dir.map(Path::to_path_buf).unwrap_or_default(),
        secret_files: Vec::new(),
    };
    let snapshot = lowering.snapshot(raw, base_dir);
    if lowering.errors.is_empty() {
        Ok(Lowered {
            snapshot,
            warnings: lowering.warnings,
        })
    } else {
        Err(lowering.errors)
    }
}

impl Lowering<'_> {
    fn index(&self) -> &PositionIndex {
        self.sources[self.current].index()
    }

    fn problem(&self, path: &[PathSeg], message: impl AsRef<str>) -> ConfigError {
        let position = self.index().locate(path).map(|p| (p.line, p.column));
        let mut e = ConfigError::new(&render_path(path), position, message.as_ref());
        e.file = self.sources[self.current].file.clone();
        e
    }

    pub(super) fn error(&mut self, path: &[PathSeg], message: impl AsRef<str>) {
        let e = self.problem(path, message);
        self.errors.push(e);
    }

    pub(super) fn warn(&mut self, path: &[PathSeg], message: impl AsRef<str>) {
        let w = self.problem(path, message);
        self.warnings.push(w);
    }

    /// The file of a source, as operators read it in messages.
    pub(super) fn file_name(&self, source: usize) -> &str {
        self.sources[source]
            .file
            .as_deref()
            .unwrap_or("the main file")
    }

    /// Deserializes one entry on its own, so one bad entry does not hide the others' errors.
    pub(super) fn entry<T: DeserializeOwned>(
        &mut self,
        value: serde_yaml::Value,
        path: &[PathSeg],
    ) -> Option<T> {
        match serde_yaml::from_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let message = e.to_string();
                let at = match unknown_field(&message) {
                    Some(field) => self.index().find_key_under(path, field),
                    None => None,
                }
                .unwrap_or_else(|| path.to_vec());
                self.error(&at, message);
                None
            }
        }
    }

    /// An error for each key of the mapping `value` that is not one of `fields`: for types
    /// that ignore unknown fields in a client's body but come from the operator's file
    /// here, where a typo must not pass silently.
    pub(super) fn refuse_unknown_keys(
        &mut self,
        value: &serde_yaml::Value,
        path: &[PathSeg],
        fields: &[&str],
    ) {
        let serde_yaml::Value::Mapping(map) = value else {
            return;
        };
        for name in map.keys().filter_map(serde_yaml::Value::as_str) {
            if !fields.contains(&name) {
                let at = self
                    .index()
                    .find_key_under(path, name)
                    .unwrap_or_else(|| path.to_vec());
                let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
                self.error(
                    &at,
                    format!(
                        "unknown field `{name}`, expected one of {}",
                        expected.join(", ")
                    ),
                );
            }
        }
    }

    pub(super) fn env_secret(&mut self, path: &[PathSeg], var: &str) -> Option<Secret> {
        match (self.env)(var) {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                self.warn(path, format!("environment variable `{var}` is not set"));
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        path: &[PathSeg],
        text: Option<&String>,
        default: Duration,
    ) -> Duration {
        match text.map(|t| parse_duration(t)) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.error(path, e);
                default
            }
        }
    }

    fn snapshot(&mut self, raw: RawConfig, base_dir: Option<&Path>) -> Snapshot {
        let server = self.server(raw.server);
        let billing = self.billing(raw.billing);
        let included = self.read_includes(&raw.include, base_dir);
        let mut provider_entries = vec![(0, raw.providers)];
        let mut model_entries = vec![(0, ModelEntries::Raw(raw.models))];
        for (source, file) in included {
            provider_entries.push((source, file.providers));
            model_entries.push((source, file.models));
        }
        let providers = self.providers(provider_entries);
        let models = self.models(model_entries, &providers);
        let keys = self.keys(raw.keys);
        let redis_failure = match raw.storage.redis_failure.as_deref() {
            None => crate::limits::RedisFailure::default(),
            Some(text) => crate::limits::RedisFailure::parse(text).unwrap_or_else(|| {
                self.error(
                    &[key("storage"), key("redis_failure")],
                    format!("redis_failure `{text}` is not open or closed"),
                );
                crate::limits::RedisFailure::default()
            }),
        };
        let mock = raw.mock.map(|m| {
            if m.listen.parse::<SocketAddr>().is_err() {
                self.error(
                    &[key("mock"), key("listen")],
                    format!("`{}` is not an ip:port address", m.listen),
                );
            }
            MockSettings { listen: m.listen }
        });
        self.refuse_shared_addresses(&server, mock.as_ref());
        Snapshot {
            server,
            storage: StorageSettings {
                database_url: raw.storage.database_url,
                redis_url: raw.storage.redis_url,
                redis_failure,
            },
            billing,
            catalog: Catalog::new(providers, models),
            keys,
            mock,
            source: None,
            included_files: std::mem::take(&mut self.included_files),
            secret_files: std::mem::take(&mut self.secret_files),
        }
    }

    fn server(&mut self, raw: RawServer) -> ServerSettings {
        let base = [key("server")];
        let defaults = ServerSettings::default();
        let listen = raw.listen.unwrap_or(defaults.listen);
        if listen.is_empty() {
            self.error(
                &child(&base, key("listen")),
                "at least one listen address is required",
            );
        }
        for (i, addr) in listen.iter().enumerate() {
            if addr.parse::<SocketAddr>().is_err() {
                let path = [key("server"), key("listen"), PathSeg::Index(i)];
                self.error(&path, format!("`{addr}` is not an ip:port address"));
            }
        }
        for (field, addr) in [
            ("admin_listen", &raw.admin_listen),
            ("metrics_listen", &raw.metrics_listen),
        ] {
            if let Some(a) = addr {
                if a.parse::<SocketAddr>().is_err() {
                    self.error(
                        &child(&base, key(field)),
                        format!("`{a}` is not an ip:port address"),
                    );
                }
            }
        }
        let threads = raw.threads.unwrap_or(defaults.threads);
        if !(1..=256).contains(&threads) {
            self.error(
                &child(&base, key("threads")),
                "threads must be between 1 and 256",
            );
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(defaults.max_body_bytes);
        if max_body_bytes == 0 {
            self.error(
                &child(&base, key("max_body_bytes")),
                "max_body_bytes must be positive",
            );
        }
        let log_format = match raw.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.error(
                    &child(&base, key("log_format")),
                    format!("log_format `{other}` is not text or json"),
                );
                LogFormat::Text
            }
        };
        let admin_token = match &raw.admin_token_env {
            Some(var) => self.env_secret(&child(&base, key("admin_token_env")), var),
            None => None,
        };
        if raw.admin_listen.is_some() && admin_token.is_none() {
            self.warn(
                &child(&base, key("admin_listen")),
                "the admin API refuses every request until its token is set (admin_token_env)",
            );
        }
        let grace_period = self.duration(
            &child(&base, key("grace_period")),
            raw.grace_period.as_ref(),
            defaults.grace_period,
        );
        ServerSettings {
            listen,
            admin_listen: raw.admin_listen,
            metrics_listen: raw.metrics_listen,
            threads,
            work_stealing: raw.work_stealing.unwrap_or(defaults.work_stealing),
            max_body_bytes,
            admin_token,
            grace_period,
            log_format,
            pid_file: raw.pid_file,
            upgrade_sock: raw.upgrade_sock,
        }
    }

    /// Each listener needs an address of its own. Given one twice (`admin_listen` equal to
    /// `metrics_listen`, a `listen` entry repeated), the addresses bound at once and Pingora
    /// handed one socket to both services: one of them never answered, and stopping closed
    /// the socket twice, which aborted the process before the ledger was flushed.
    fn refuse_shared_addresses(&mut self, server: &ServerSettings, mock: Option<&MockSettings>) {
        let listen = server.listen.iter().enumerate().map(|(i, a)| {
            let path = vec![key("server"), key("listen"), PathSeg::Index(i)];
            (path, a)
        });
        let others = [
            (
                vec![key("server"), key("admin_listen")],
                server.admin_listen.as_ref(),
            ),
            (
                vec![key("server"), key("metrics_listen")],
                server.metrics_listen.as_ref(),
            ),
            (vec![key("mock"), key("listen")], mock.map(|m| &m.listen)),
        ];
        let all = listen.chain(
            others
                .into_iter()
                .filter_map(|(path, addr)| addr.map(|a| (path, a))),
        );
        let mut seen: Vec<(SocketAddr, Vec<PathSeg>)> = Vec::new();
        for (path, text) in all {
            // Unparseable addresses are reported already.
            let Ok(addr) = text.parse::<SocketAddr>() else {
                continue;
            };
            let clash = seen.iter().find(|(other, _)| {
                other.port() == addr.port()
                    && (other.ip() == addr.ip()
                        || (other.is_ipv4() == addr.is_ipv4()
                            && (other.ip().is_unspecified() || addr.ip().is_unspecified())))
            });
            if let Some((_, other_path)) = clash {
                let message = format!(
                    "`{text}` is taken by {} already: each listener needs an address of its own",
                    render_path(other_path)
                );
                self.error(&path, message);
            }
            seen.push((addr, path));
        }
    }

    fn billing(&mut self, raw: RawBilling) -> Billing {
        let fee_percent = raw.fee_percent.unwrap_or(0.0);
        if !(0.0..=1000.0).contains(&fee_percent) {
            self.error(
                &[key("billing"), key("fee_percent")],
                "fee_percent must be between 0 and 1000",
            );
        }
        Billing { fee_percent }
    }
}

pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

pub(super) fn valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+".contains(c))
}

/// The field an "unknown field `x`, expected ..." message names.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = &message[message.find("unknown field `")? + "unknown field `".len()..];
    rest.split('`').next()
}
