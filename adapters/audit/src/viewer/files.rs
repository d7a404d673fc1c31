//! Finding the files to read (files, directories, globs, rotated sets) and reading their
//! lines.

use std::cmp::Reverse;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use super::{shown_path, Problems};

pub(super) fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Files named by `paths` (files, directories, globs), oldest rotation first. A directory
/// is read with its subdirectories, so the per-host layout the Linux adapter writes
/// (`audit/@HOST@/audit.log`, rotated as `audit.log.1`, `audit.log.2.gz`) is found from
/// `audit/`.
pub(super) fn expand(paths: &[String], problems: &mut Problems<'_>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        let path = Path::new(p);
        match std::fs::metadata(path) {
            Ok(m) => add(path, &m, &mut files, problems),
            Err(_) if has_glob_chars(p) => match glob::glob(p) {
                Ok(matches) => {
                    let before = files.len();
                    for m in matches {
                        match m {
                            Ok(found) => match std::fs::metadata(&found) {
                                Ok(meta) => add(&found, &meta, &mut files, problems),
                                Err(e) => problems.io(format_args!("{}: {e}", shown_path(&found))),
                            },
                            Err(e) => {
                                problems.io(format_args!("{}: {}", shown_path(e.path()), e.error()))
                            }
                        }
                    }
                    if files.len() == before {
                        problems.io(format_args!("{}: matches no file", shown_path(path)));
                    }
                }
                Err(e) => problems.io(format_args!("bad pattern {}: {e}", shown_path(path))),
            },
            Err(e) => problems.io(format_args!("{}: {e}", shown_path(path))),
        }
    }
    files.sort_by_cached_key(|f| rotation_key(f));
    files.dedup_by(|a, b| same_file(a, b));
    files
}

/// Adds a named path (`meta` follows links: the user named it): a regular file, or the
/// files under a directory. Anything else (a FIFO would block the reader) is refused.
fn add(
    path: &Path,
    meta: &std::fs::Metadata,
    files: &mut Vec<PathBuf>,
    problems: &mut Problems<'_>,
) {
    if meta.is_dir() {
        walk(path, files, problems);
    } else if meta.is_file() {
        files.push(path.to_path_buf());
    } else {
        problems.io(format_args!(
            "{}: not a regular file or directory",
            shown_path(path)
        ));
    }
}

/// Regular files under `dir`, at any depth. Hidden entries are skipped; other non-regular
/// files (FIFOs, sockets, devices) are skipped and said so; a link to a file is read, a
/// link to a directory is not followed (so a link loop cannot hold the walk) and said so.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Problems<'_>) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.io(format_args!("{}: {e}", shown_path(&dir)));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    problems.io(format_args!("{}: {e}", shown_path(&dir)));
                    continue;
                }
            };
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() && is_seal_sidecar(&path) => {}
                Ok(t) if t.is_file() => files.push(path),
                Ok(t) if t.is_symlink() => {
                    if path.is_file() {
                        files.push(path);
                    } else if path.is_dir() {
                        problems.note(format_args!(
                            "{}: link to a directory, not followed (name it to read it)",
                            shown_path(&path)
                        ));
                    } else {
                        problems.note(format_args!(
                            "{}: link to neither a regular file nor a directory: skipped",
                            shown_path(&path)
                        ));
                    }
                }
                Ok(_) => problems.note(format_args!(
                    "{}: not a regular file: skipped",
                    shown_path(&path)
                )),
                Err(e) => problems.io(format_args!("{}: {e}", shown_path(&path))),
            }
        }
    }
}

/// Whether `path` is an audit log's seal sidecar (`audit.log.seal`, `core/SEALING.md`
/// section 9): seals, not lines; `flightrec verify` reads them.
fn is_seal_sidecar(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; crate::SEAL_SIDECAR_TAG.len()];
    open_regular(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == crate::SEAL_SIDECAR_TAG.as_bytes())
}

/// Sort key putting a rotated set oldest first: `x.log.2.gz`, `x.log.1`, `x.log`.
fn rotation_key(path: &Path) -> (PathBuf, String, Reverse<u64>) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".gz").unwrap_or(&name);
    let (base, index) = match stem.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (base.to_owned(), n.parse().unwrap_or(u64::MAX))
        }
        _ => (stem.to_owned(), 0),
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    (dir, base, Reverse(index))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Opens `path` if it is a regular file, without waiting: `O_NONBLOCK` (no effect on a
/// regular file's reads) so that a FIFO put in a log's place since the walk is refused
/// rather than blocking the viewer.
fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Opens a log, gunzipping it if it starts with the gzip magic (whatever its name).
pub(super) fn open(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut reader = BufReader::new(open_regular(path)?);
    let gz = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}
