//! Host files over semihosting (`SYS_OPEN`/`SYS_READ`/`SYS_WRITE`/`SYS_CLOSE`), paths
//! relative to QEMU's working directory.

use cortex_m_semihosting::{nr, syscall};

/// A host file open for writing.
pub struct File(usize);

impl File {
    /// Creates (truncates) `name` on the host.
    pub fn create(name: &str) -> Option<File> {
        Self::open(name, nr::open::W_TRUNC_BINARY)
    }

    /// Opens `name` on the host for reading; `None` if it is not there.
    pub fn open_read(name: &str) -> Option<File> {
        Self::open(name, nr::open::R_BINARY)
    }

    fn open(name: &str, mode: usize) -> Option<File> {
        let mut path = [0u8; 64];
        let bytes = name.as_bytes();
        path.get_mut(..bytes.len())?.copy_from_slice(bytes);
        // SAFETY: SYS_OPEN reads a NUL-terminated name of the given length (the buffer is
        // zeroed past it) and returns a handle or -1.
        let fd = unsafe { syscall!(OPEN, path.as_ptr(), mode, bytes.len()) };
        (fd != usize::MAX).then_some(File(fd))
    }

    /// Reads up to `buf.len()` bytes; the count read.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        // SAFETY: SYS_READ writes at most `buf.len()` bytes to `buf`; returns the count not
        // read.
        let left = unsafe { syscall!(READ, self.0, buf.as_mut_ptr(), buf.len()) };
        buf.len().saturating_sub(left)
    }
}

impl embedded_io::ErrorType for File {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for File {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: SYS_WRITE reads `buf.len()` bytes at `buf`; returns the count not written.
        let left = unsafe { syscall!(WRITE, self.0, buf.as_ptr(), buf.len()) };
        match buf.len().checked_sub(left) {
            Some(n) if n > 0 => Ok(n),
            _ => Err(embedded_io::ErrorKind::Other),
        }
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: closes the handle SYS_OPEN gave us, once.
        unsafe { syscall!(CLOSE, self.0) };
    }
}

/// Writes a line to the host's stderr.
pub fn eprint(msg: &str) {
    cortex_m_semihosting::heprintln!("{}", msg);
}
