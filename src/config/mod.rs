//! Configuration: the YAML schema (DESIGN §2), validation with line and column for every
//! error, and lowering into the immutable [`Snapshot`] the proxy reads.

mod duration;
mod locate;
mod lower;
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
            path: path.to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
            write!(f, "{}:{e}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Parses and validates YAML text; `env` resolves the environment variables it names.
pub fn load_str(text: &str, origin: &str, env: EnvLookup<'_>) -> Result<Loaded, LoadError> {
    lower::lower(text, env)
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
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: origin.clone(),
        errors: vec![ConfigError::new(
            "",
            None,
            &format!("cannot read the file: {e}"),
        )],
    })?;
    let mut loaded = load_str(&text, &origin, &|var| std::env::var(var).ok())?;
    loaded.snapshot.source = Some(path.to_path_buf());
    Ok(loaded)
}

#[cfg(test)]
mod tests;
