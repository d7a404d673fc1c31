//! Sealed audit logs for `flightrec verify` (`core/SEALING.md` section 9): finding each
//! log's family (its sidecars and its rotated files, in its directory) among the paths
//! given, and verifying it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flightrec_decode::auditseal::{is_sidecar, AuditVerifier, ReportLine, SIDECAR_SUFFIX};

use crate::open::open_regular;
use crate::shown;

/// Bytes read from a sidecar at most (a sidecar is read whole; its writer rotates it with
/// its log).
const MAX_SIDECAR: u64 = 256 * 1024 * 1024;

/// The log name a sidecar's name is for: `audit.log` for `audit.log.seal`,
/// `audit.log.seal.3` and `audit.log.seal-20261207`.
fn sidecar_base(name: &str) -> Option<&str> {
    let at = name.rfind(SIDECAR_SUFFIX)?;
    let rest = name.get(at + SIDECAR_SUFFIX.len()..)?;
    (rest.is_empty() || rest.starts_with('.') || rest.starts_with('-'))
        .then(|| name.get(..at))
        .flatten()
        .filter(|b| !b.is_empty())
}

/// Whether `name` is the log `base` or one of its rotations (`base.N`, `base-DATE`).
fn in_family(name: &str, base: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .is_some_and(|r| r.starts_with('.') || r.starts_with('-'))
}

fn starts_as_sidecar(path: &Path) -> io::Result<bool> {
    let mut head = Vec::with_capacity(32);
    open_regular(path, true)?.take(32).read_to_end(&mut head)?;
    Ok(is_sidecar(&head))
}

/// One log path's sidecars and files, in one directory.
#[derive(Debug, Default)]
pub(crate) struct Family {
    sidecars: Vec<PathBuf>,
    logs: Vec<PathBuf>,
}

/// The families of the files among `paths`: a sidecar given brings its family; so does a
/// log given whose directory holds a sidecar for it. Returns the families and the paths
/// they took (not to be read as dumps).
pub(crate) fn families(paths: &[PathBuf]) -> io::Result<(Vec<Family>, Vec<PathBuf>)> {
    let mut keys: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    // The sidecar bases of each directory looked at, listed once.
    let mut bases: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for p in paths {
        let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
            continue;
        };
        if let Some(base) = sidecar_base(name) {
            if starts_as_sidecar(p)? {
                keys.insert((dir.to_owned(), base.to_owned()));
                continue;
            }
        }
        // A log given: its sidecar is `<base>.seal` for the longest base it is in.
        if !bases.contains_key(dir) {
            let listing = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let mut found = Vec::new();
            for e in fs::read_dir(listing)? {
                if let Some(b) = e?.file_name().to_str().and_then(sidecar_base) {
                    found.push(b.to_owned());
                }
            }
            bases.insert(dir.to_owned(), found);
        }
        let best = bases
            .get(dir)
            .into_iter()
            .flatten()
            .filter(|b| in_family(name, b))
            .max_by_key(|b| b.len());
        if let Some(b) = best {
            keys.insert((dir.to_owned(), b.clone()));
        }
    }
    let mut out = Vec::new();
    let mut taken = Vec::new();
    for (dir, base) in keys {
        let listing = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.clone()
        };
        let mut names: Vec<String> = fs::read_dir(&listing)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| in_family(n, &base))
            .collect();
        names.sort();
        let mut fam = Family::default();
        for n in names {
            let p = dir.join(&n);
            if sidecar_base(&n) == Some(base.as_str()) && starts_as_sidecar(&p)? {
                fam.sidecars.push(p.clone());
            } else {
                fam.logs.push(p.clone());
            }
            taken.push(p);
        }
        out.push(fam);
    }
    Ok((out, taken))
}

/// Verifies `families` with `verifier`; the report lines.
pub(crate) fn verify(
    mut verifier: AuditVerifier,
    families: &[Family],
) -> io::Result<Vec<ReportLine>> {
    for fam in families {
        let mut sidecars = Vec::new();
        for p in &fam.sidecars {
            let mut text = Vec::new();
            // Listed as regular files: a link or FIFO put there since is refused.
            open_regular(p, false)
                .and_then(|f| f.take(MAX_SIDECAR + 1).read_to_end(&mut text))
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shown(p))))?;
            if text.len() as u64 > MAX_SIDECAR {
                return Err(io::Error::other(format!(
                    "{}: sidecar larger than {MAX_SIDECAR} bytes: not read",
                    shown(p)
                )));
            }
            sidecars.push((shown(p), text));
        }
        let names: Vec<String> = fam.logs.iter().map(|p| shown(p)).collect();
        verifier.verify_family(&sidecars, &names, |i| {
            fam.logs.get(i).map_or_else(
                || Err(io::Error::other("no such log")),
                |p| open_regular(p, false),
            )
        })?;
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_names() {
        assert_eq!(sidecar_base("audit.log.seal"), Some("audit.log"));
        assert_eq!(sidecar_base("audit.log.seal.3"), Some("audit.log"));
        assert_eq!(sidecar_base("audit.log.seal-20261207"), Some("audit.log"));
        assert_eq!(sidecar_base("audit.log.sealed"), None);
        assert_eq!(sidecar_base(".seal"), None);
        assert!(in_family("audit.log.1", "audit.log"));
        assert!(!in_family("audit.logx", "audit.log"));
    }
}
