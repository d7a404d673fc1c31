//! Writing a sealed dump (`core/SEALING.md`, section 5): the dump streams to its file
//! through its hash while the key evolves on disk, and the frames that release it are
//! written only once both are done.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use crate::sealkey::{frames, Evolution, KeyFile, NextKey};

/// Writes a sealed dump to `out`: `stream` writes the dump itself (from its magic through
/// its end frame) to the writer it is given, which hashes it, while another thread evolves
/// the key on disk (`k[e+1]` written over the key file and `fdatasync`ed). Once both are
/// done, the seal is made with `k[e]`, `k[e+1]` put in use (`k[e]` erased), and only then
/// are the seal and signature frames written, which release the dump: a seal frame never
/// reaches the file while the key file could still give back the key that made it. Returns
/// those frames. If the dump fails before its seal is made, its epoch is not used (the
/// next dump gets it).
pub(crate) fn write_sealed(
    key: &mut KeyFile,
    out: &mut dyn Write,
    stream: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Vec<u8>> {
    let job = Arc::new(Evolving::new(key.evolution()?));
    let helper = job.clone();
    // Not joined: if the thread has not started by the time the dump is out, this thread
    // evolves the key itself, and the helper finds nothing left to do.
    let _ = std::thread::Builder::new()
        .name("flightrec-seal-key".into())
        .spawn(move || helper.run_here());
    // Small writes (a record goes out in several) gather in a buffer and are hashed a
    // buffer at a time.
    let mut hashed = io::BufWriter::with_capacity(
        HASH_CHUNK,
        Hashing {
            out,
            hash: Sha256::new(),
            len: 0,
        },
    );
    // The dump's bytes go to the file now: a failure past this point (writing the frames)
    // leaves its epoch used, and missing (`SEALING.md` section 5).
    let streamed = stream(&mut hashed).and_then(|()| hashed.flush());
    let next = job.finish();
    streamed?;
    let (Hashing { out, hash, len }, _) = hashed.into_parts();
    let (sealed, signed) = key.seal_with(next?, len, hash.finalize().into())?;
    let frames = frames(&sealed, &signed);
    out.write_all(&frames)?;
    Ok(frames)
}

/// Bytes a sealed dump's hash takes at a time.
const HASH_CHUNK: usize = 64 * 1024;

/// A key's evolution on disk, run by whichever thread gets to it first: the helper spawned
/// for it, or the dump's own thread once the dump is out (so a helper that a loaded machine
/// has not scheduled yet costs the dump nothing but the work itself).
struct Evolving {
    state: Mutex<EvolvingState>,
    done: Condvar,
}

// One per sealed dump, never in a collection: boxing the key would only leave a copy of it
// in freed memory.
#[allow(clippy::large_enum_variant)]
enum EvolvingState {
    Waiting(Evolution),
    Running,
    Done(io::Result<NextKey>),
}

impl Evolving {
    fn new(evolution: Evolution) -> Self {
        Evolving {
            state: Mutex::new(EvolvingState::Waiting(evolution)),
            done: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, EvolvingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The evolution, if no thread has taken it yet.
    fn claim(&self) -> Option<Evolution> {
        let mut state = self.state();
        match std::mem::replace(&mut *state, EvolvingState::Running) {
            EvolvingState::Waiting(e) => Some(e),
            other => {
                *state = other;
                None
            }
        }
    }

    /// The helper thread: runs the evolution unless the dump's thread took it.
    fn run_here(&self) {
        let Some(evolution) = self.claim() else {
            return;
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| evolution.run()))
            .unwrap_or_else(|_| Err(io::Error::other("sealing key thread panicked")));
        *self.state() = EvolvingState::Done(result);
        self.done.notify_all();
    }

    /// The dump's thread: the result, running the evolution here if the helper has not
    /// started it, waiting for the helper otherwise.
    fn finish(&self) -> io::Result<NextKey> {
        if let Some(evolution) = self.claim() {
            return evolution.run();
        }
        let mut state = self.state();
        loop {
            match std::mem::replace(&mut *state, EvolvingState::Running) {
                EvolvingState::Done(result) => return result,
                other => *state = other,
            }
            state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Passes a dump's bytes on to its file and hashes (SHA-256) those the file took: the
/// sealed dump streams through its hash, nothing of it kept.
struct Hashing<'a> {
    out: &'a mut dyn Write,
    hash: Sha256,
    len: u64,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        let taken = buf.get(..n).unwrap_or(buf);
        self.hash.update(taken);
        self.len += taken.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
