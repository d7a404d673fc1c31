//! Opening an input that must be a regular file without ever waiting on it.
//!
//! `flightrec verify` checks evidence that an intruder may have tampered with, and an
//! intruder can put a FIFO where a dump was: a plain `open` of a FIFO waits for a writer,
//! forever, and a verification run from cron with it. So inputs that are read as files
//! (seeked, read twice) are opened `O_NONBLOCK` (which does not change how a regular file
//! reads) and `fstat`ed before the first read; whatever is not a regular file is refused
//! with what it is. Files found by walking a directory are opened `O_NOFOLLOW` as well:
//! a link there is not followed (a path given on the command line is, as the user named it).

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a file type is, for a refusal: "a FIFO", "a directory", ...
pub(crate) fn kind(ty: FileType) -> &'static str {
    if ty.is_file() {
        "a regular file"
    } else if ty.is_dir() {
        "a directory"
    } else if ty.is_symlink() {
        "a symbolic link"
    } else if ty.is_fifo() {
        "a FIFO"
    } else if ty.is_socket() {
        "a socket"
    } else if ty.is_block_device() {
        "a block device"
    } else if ty.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file; `follow: false` refuses a symbolic
/// link as the last component too. Never blocks on a FIFO or a device.
pub(crate) fn open_regular(path: &Path, follow: bool) -> io::Result<File> {
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if !follow && e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a symbolic link: not followed",
            ))
        }
        Err(e) => return Err(e),
    };
    let ty = file.metadata()?.file_type();
    if !ty.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", kind(ty)),
        ));
    }
    Ok(file)
}

/// Longest key file read: keys are a few lines; anything longer is not one.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// The text of a key file (a regular file, followed if a link: the user named it), refusing
/// what is not a regular file or is too long to be a key file.
pub(crate) fn read_key_text(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    open_regular(path, true)?
        .take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "longer than a key file can be",
        ));
    }
    Ok(text)
}
