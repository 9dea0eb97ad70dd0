//! `include: [globs]`: catalog files merged into the config. Globs are relative to the
//! including file's directory; a wildcard (`*`, `?`) may appear in the file name only
//! (`catalog/*.yaml`), which keeps matching a single directory listing. Files are read in
//! glob order, then name order; each becomes its own [`Source`] so errors inside it carry
//! its name, line and column.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::locate::PathSeg;
use super::lower::{child, key, Lowering, Source};
use super::schema::{ModelEntries, RawCatalogFile, TypedCatalogFile};
use super::ConfigError;

/// One included file's entries.
pub(super) struct IncludedCatalog {
    pub providers: indexmap::IndexMap<String, serde_yaml::Value>,
    pub models: ModelEntries,
}

impl Lowering<'_> {
    /// Reads every file the globs match; returns each parsed file with its source index.
    pub(super) fn read_includes(
        &mut self,
        patterns: &[String],
        base_dir: Option<&Path>,
    ) -> Vec<(usize, IncludedCatalog)> {
        let base = base_dir.unwrap_or(Path::new(""));
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let path = child(&[key("include")], PathSeg::Index(i));
            let files = match expand(base, pattern) {
                Ok(files) => files,
                Err(e) => {
                    self.error(&path, e);
                    continue;
                }
            };
            if files.is_empty() {
                self.warn(&path, format!("`{pattern}` matches no file"));
            }
            for file in files {
                // Two globs naming one file include it once.
                let identity = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
                if !seen.insert(identity) {
                    continue;
                }
                if let Some(parsed) = self.read_catalog_file(&file, &path) {
                    out.push(parsed);
                }
            }
        }
        out
    }

    fn read_catalog_file(
        &mut self,
        file: &Path,
        include_path: &[PathSeg],
    ) -> Option<(usize, IncludedCatalog)> {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                self.error(include_path, format!("cannot read `{name}`: {e}"));
                return None;
            }
        };
        self.included_files.push(file.to_path_buf());
        if text.trim().is_empty() {
            return None;
        }
        let parsed = match serde_yaml::from_str::<TypedCatalogFile>(&text) {
            Ok(typed) => IncludedCatalog {
                providers: typed.providers,
                models: ModelEntries::Typed(typed.models),
            },
            Err(_) => match serde_yaml::from_str::<RawCatalogFile>(&text) {
                Ok(raw) => IncludedCatalog {
                    providers: raw.providers,
                    models: ModelEntries::Raw(raw.models),
                },
                Err(e) => {
                    let position = e.location().map(|l| (l.line(), l.column()));
                    let mut error = ConfigError::new("", position, &e.to_string());
                    error.file = Some(name);
                    self.errors.push(error);
                    return None;
                }
            },
        };
        self.sources.push(Source::new(Some(name), text));
        Some((self.sources.len() - 1, parsed))
    }
}

/// The files `pattern` names under `base`, sorted by name.
pub fn expand(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let (dir, name) = match pattern.rfind('/') {
        Some(i) => (&pattern[..i + 1], &pattern[i + 1..]),
        None => ("", pattern),
    };
    if dir.contains(['*', '?', '[']) {
        return Err(format!(
            "`{pattern}`: wildcards are allowed in the file name only (e.g. catalog/*.yaml)"
        ));
    }
    if name.is_empty() {
        return Err(format!("`{pattern}` names a directory, not files"));
    }
    let dir = base.join(dir);
    if !name.contains(['*', '?']) {
        let file = dir.join(name);
        return if file.is_file() {
            Ok(vec![file])
        } else {
            Err(format!("`{}` is not a readable file", file.display()))
        };
    }
    let listing =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = listing
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                return false;
            };
            // Editors' swap and backup files start with a dot; a glob skips them like a shell.
            (!file_name.starts_with('.') || name.starts_with('.'))
                && wildcard_match(name.as_bytes(), file_name.as_bytes())
                && entry.path().is_file()
        })
        .map(|entry| entry.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Shell-style matching of one path component: `*` any run, `?` one byte, others literal.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative matcher with one backtrack point: linear in practice, never exponential.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        let m = |p: &str, n: &str| wildcard_match(p.as_bytes(), n.as_bytes());
        assert!(m("*.yaml", "openai.yaml"));
        assert!(m("*.yaml", ".yaml"));
        assert!(!m("*.yaml", "openai.yml"));
        assert!(m("a?c*", "abcdef"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxx"));
        assert!(m("exact.yaml", "exact.yaml"));
        assert!(m("**", ""));
    }

    #[test]
    fn expands_relative_to_the_base_and_sorts() {
        let dir = std::env::temp_dir().join(format!("switchyard-glob-{}", std::process::id()));
        let sub = dir.join("catalog");
        std::fs::create_dir_all(&sub).unwrap();
        for f in ["b.yaml", "a.yaml", ".swap.yaml", "notes.txt"] {
            std::fs::write(sub.join(f), "models: {}\n").unwrap();
        }
        let files = expand(&dir, "catalog/*.yaml").unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.yaml", "b.yaml"]);
        assert_eq!(expand(&dir, "catalog/a.yaml").unwrap().len(), 1);
        assert!(expand(&dir, "catalog/missing.yaml").is_err());
        assert!(expand(&dir, "*/a.yaml").is_err());
        assert!(expand(&dir, "nowhere/*.yaml").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
