//! Configuration: the YAML schema (DESIGN §2), validation with line and column for every
//! error, and lowering into the immutable [`Snapshot`] the proxy reads.

mod credentials;
mod duration;
mod include;
mod keys;
mod locate;
mod lower;
mod models;
pub mod presets;
mod providers;
mod schema;
mod snapshot;
mod store;

pub use duration::parse_duration;
pub use lower::EnvLookup;
pub use snapshot::{Billing, LogFormat, MockSettings, ServerSettings, Snapshot, StorageSettings};
pub use store::SnapshotStore;

use std::fmt;
use std::path::Path;

/// One problem in a config file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The included catalog file the problem is in; `None` for the main file (whose name the
    /// [`LoadError`] carries).
    pub file: Option<String>,
    /// Dotted path of the offending setting (`models.a/b.endpoints[0].provider`); empty for
    /// problems of the whole document.
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: &str, position: Option<(usize, usize)>, message: &str) -> ConfigError {
        ConfigError {
            file: None,
            path: path.to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            message: message.to_string(),
        }
    }
}

impl ConfigError {
    /// `file:line:column: path: message`, with `main_file` when the problem is in the main
    /// file (whose name the error does not carry).
    pub fn located(&self, main_file: &str) -> String {
        match self.file {
            Some(_) => self.to_string(),
            None => format!("{main_file}:{self}"),
        }
    }
}

/// `line:column: path: message`, prefixed by the file's name when the problem is in an
/// included file; for the main file, the caller adds it ([`ConfigError::located`]).
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A loaded snapshot and the warnings worth showing the operator.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub warnings: Vec<ConfigError>,
}

/// Every reason a file was refused.
#[derive(Debug)]
pub struct LoadError {
    pub file: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&e.located(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Parses and validates YAML text; `env` resolves the environment variables it names.
/// `include` globs are resolved against the current directory.
pub fn load_str(text: &str, origin: &str, env: EnvLookup<'_>) -> Result<Loaded, LoadError> {
    lower_text(text, origin, None, env)
}

fn lower_text(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
    env: EnvLookup<'_>,
) -> Result<Loaded, LoadError> {
    lower::lower(text, env, base_dir)
        .map(|l| Loaded {
            snapshot: l.snapshot,
            warnings: l.warnings,
        })
        .map_err(|errors| LoadError {
            file: origin.to_string(),
            errors,
        })
}

/// Reads, parses and validates a config file against the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    load_file_with_env(path, &|var| std::env::var(var).ok())
}

/// Reads, parses and validates a config file (and the catalog files it includes, relative to
/// its directory); `env` resolves the environment variables it names.
pub fn load_file_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Loaded, LoadError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: origin.clone(),
        errors: vec![ConfigError::new(
            "",
            None,
            &format!("cannot read the file: {e}"),
        )],
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let mut loaded = lower_text(&text, &origin, Some(base_dir), env)?;
    loaded.snapshot.source = Some(path.to_path_buf());
    Ok(loaded)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod catalog_tests;
