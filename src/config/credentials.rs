//! Where a provider's credentials come from: an environment variable (`<name>_env`, the
//! process's environment, fixed when it starts) or a file (`<name>_file`, read at each load).
//! Files are watched with the config, so a credential that rotates (Vertex's hourly OAuth
//! token, AWS temporary credentials) reaches new requests when its file is rewritten, with no
//! restart: whatever refreshes it (a cron job, a sidecar, a Kubernetes Secret) writes the file.

use std::io::Read;
use std::path::Path;

use super::locate::PathSeg;
use super::lower::{child, key, Lowering};
use crate::catalog::Secret;

/// A credential file larger than this is a wrong path (a log, a device), not a key.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// One credential as an entry names it: `<stem>_env`, `<stem>_file`, or neither.
#[derive(Clone, Copy)]
pub(super) struct CredentialRef<'a> {
    pub stem: &'static str,
    pub env: Option<&'a str>,
    pub file: Option<&'a str>,
}

impl CredentialRef<'_> {
    pub fn is_named(&self) -> bool {
        self.env.is_some() || self.file.is_some()
    }

    /// How messages name where it comes from.
    pub fn source(&self) -> String {
        match (self.env, self.file) {
            (Some(var), _) => format!("`{var}`"),
            (None, Some(file)) => format!("`{file}`"),
            (None, None) => String::new(),
        }
    }
}

pub(super) enum Credential {
    /// Neither form is configured.
    Absent,
    /// Configured but not readable (an unset variable, a missing or empty file): why. The
    /// load goes on with a warning and the provider is marked unavailable, as for a key.
    Missing(String),
    Found(Secret),
}

impl Lowering<'_> {
    /// Reads the credential `r` of the entry at `path`; warnings and errors name its field.
    pub(super) fn credential(&mut self, path: &[PathSeg], r: CredentialRef<'_>) -> Credential {
        let field = |form: &str| child(path, key(&format!("{}_{form}", r.stem)));
        match (r.env, r.file) {
            (None, None) => Credential::Absent,
            (Some(_), Some(_)) => {
                let message = format!("set {0}_env or {0}_file, not both", r.stem);
                self.error(&field("file"), &message);
                Credential::Missing(message)
            }
            (Some(var), None) => match self.env_secret(&field("env"), var) {
                Some(secret) => Credential::Found(secret),
                None => Credential::Missing(format!("environment variable `{var}` is not set")),
            },
            (None, Some(file)) => {
                let full = self.base_dir.join(file);
                let read = read_secret_file(&full);
                self.secret_files.push(full);
                match read {
                    Ok(secret) => Credential::Found(Secret::new(secret)),
                    Err(why) => {
                        self.warn(&field("file"), &why);
                        Credential::Missing(why)
                    }
                }
            }
        }
    }
}

/// The file's text without surrounding whitespace (`echo token > file` adds a newline).
fn read_secret_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    // A pipe or a device (/dev/stdin) would block the load or never end: regular files only
    // (a Kubernetes Secret's links lead to one).
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(format!(
                "the credential file `{shown}` is not a regular file"
            ))
        }
        _ => {}
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read the credential file `{shown}`: {e}"))?;
    if text.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "the credential file `{shown}` is over {} KiB: not a key",
            MAX_SECRET_FILE_BYTES / 1024
        ));
    }
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("the credential file `{shown}` is empty"));
    }
    Ok(secret.to_string())
}
