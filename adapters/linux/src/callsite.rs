//! This process's callsite table (core's [`flightrec_core::callsite`]): each `tracing`
//! callsite and each `log` callsite (level, target, file, line) gets an id the first time
//! one of its records is captured, and its target, level, literal message, file, line and
//! field names go once into the table, which is written into every dump (and every region of
//! the ring file). Its records then hold the id and the raw values only.
//!
//! Why ids on first sight, and a per-thread cache in front of the table:
//! - On first sight, not in `Layer::register_callsite`: a literal message is not in a
//!   callsite's metadata (it is the `message` field's value), so it is learnt from the first
//!   record, which is recorded in the full form (target, message, names) and is readable
//!   without the table. The table only grows with callsites that fire.
//! - The hot path asks a direct-mapped per-thread cache ([`SiteCache`], in the thread's
//!   encoder, which the record already borrows): the metadata's address (`tracing` metadata
//!   is `'static`, so its address is its identity) picks one slot, one compare says hit. No
//!   lock, no allocation, no hash map. A miss (first record of a callsite on this thread, or
//!   two callsites sharing a slot) takes the table's lock once and refills the slot.
//! - The literal message is compared, not trusted: a record whose message text equals the
//!   callsite's literal leaves it out, any other carries its text. A callsite whose message is
//!   only arguments (`"{}"`) learns its first value as "literal"; its records then carry
//!   their message unless it is that same text. The output is the same either way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use flightrec_core::callsite::{Callsite, Names, NAMES_MAX};
use flightrec_core::encode::{to_slice, Encode};
use flightrec_core::event::MESSAGE_MAX;
use flightrec_core::frame::MAX_BODY;
use flightrec_core::Level;
use tracing::Metadata;

/// Most callsites the table takes; later ones are recorded in the full form.
pub const CALLSITES_MAX: usize = 1 << 16;

/// A callsite's id and literal message, as the encoder needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Site {
    pub(crate) id: u32,
    pub(crate) literal: Option<&'static str>,
}

/// What the cache knows of a callsite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// In the table: record it in the callsite form.
    Site(Site),
    /// Not in the table yet: record it in the full form, then [`SiteCache::learn_tracing`].
    New,
    /// The table is full: the full form.
    Full,
}

/// `log` callsites of one file and line: their level, target and site.
type LogSites = Vec<(Level, &'static str, Site)>;

#[derive(Default)]
struct Table {
    tracing: HashMap<usize, Site>,
    /// By file and line, then level and target (no allocation to look one up).
    log: HashMap<(&'static str, u32), LogSites>,
    /// The callsites' encodings, back to back, and where each ends.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// The ring files being written: each callsite also goes into their table areas.
    ring_files: Vec<Weak<crate::ringfile::Tables>>,
}

impl Table {
    fn add(&mut self, site: &Callsite<'_>) -> bool {
        let mut out = vec![0u8; site.encoded_len()];
        match to_slice(site, &mut out) {
            Some(n) if n == out.len() && n <= MAX_BODY => {
                self.ring_files.retain(|f| f.strong_count() > 0);
                let files: Vec<_> = self.ring_files.iter().filter_map(Weak::upgrade).collect();
                if !files.iter().all(|f| f.room(n)) {
                    // Its records keep the full form, readable from the ring file too.
                    return false;
                }
                for f in &files {
                    f.append(&out);
                }
                self.bytes.extend_from_slice(&out);
                self.ends.push(self.bytes.len());
                true
            }
            _ => false,
        }
    }

    fn next_id(&self) -> Option<u32> {
        (self.ends.len() < CALLSITES_MAX).then_some(self.ends.len() as u32)
    }
}

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    let t = TABLE.get_or_init(Default::default);
    // A panic while holding it leaves a consistent table (entries are added whole).
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a literal for the life of the process (callsites are finite and static).
fn keep(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// Writes every callsite of the table into a new ring file's table areas, and the later
/// ones as they come, while the file is written.
pub(crate) fn attach(file: &Arc<crate::ringfile::Tables>) {
    let mut t = table();
    let mut start = 0;
    for &end in &t.ends {
        file.append(t.bytes.get(start..end).unwrap_or(&[]));
        start = end;
    }
    t.ring_files.push(Arc::downgrade(file));
}

/// The table as bodies of callsite table frames, each at most one frame long.
pub(crate) fn frames() -> Vec<Vec<u8>> {
    let t = table();
    let mut out = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for &e in &t.ends {
        if e - start > MAX_BODY {
            out.push(t.bytes.get(start..end).unwrap_or(&[]).to_vec());
            start = end;
        }
        end = e;
    }
    if end > start {
        out.push(t.bytes.get(start..end).unwrap_or(&[]).to_vec());
    }
    out
}

const TRACING_SLOTS: usize = 256;
const LOG_SLOTS: usize = 64;

#[derive(Clone, Copy)]
struct TracingSlot {
    key: usize,
    site: Option<Site>,
}

#[derive(Clone, Copy)]
struct LogSlot {
    file: usize,
    line: u32,
    level: Level,
    target: &'static str,
    site: Option<Site>,
}

/// One slot of `slots` for `key` (Fibonacci hashing of an address).
#[inline(always)]
fn slot_of(key: usize, slots: usize) -> usize {
    ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & (slots - 1)
}

/// A thread's direct-mapped cache of the table (see the module's documentation).
pub(crate) struct SiteCache {
    tracing: Box<[TracingSlot]>,
    log: Box<[LogSlot]>,
}

impl SiteCache {
    pub(crate) fn new() -> Self {
        SiteCache {
            tracing: vec![TracingSlot { key: 0, site: None }; TRACING_SLOTS].into_boxed_slice(),
            log: vec![
                LogSlot {
                    file: 0,
                    line: 0,
                    level: Level::Trace,
                    target: "",
                    site: None,
                };
                LOG_SLOTS
            ]
            .into_boxed_slice(),
        }
    }

    /// The callsite of `meta`.
    #[inline(always)]
    pub(crate) fn tracing(&mut self, meta: &'static Metadata<'static>) -> Lookup {
        let key = meta as *const Metadata<'static> as usize;
        if let Some(slot) = self.tracing.get(slot_of(key, TRACING_SLOTS)) {
            if slot.key == key {
                return slot.site.map_or(Lookup::Full, Lookup::Site);
            }
        }
        self.tracing_miss(key)
    }

    #[cold]
    #[inline(never)]
    fn tracing_miss(&mut self, key: usize) -> Lookup {
        let t = table();
        let found = match t.tracing.get(&key) {
            Some(site) => Some(*site),
            None if t.next_id().is_none() => None,
            None => return Lookup::New,
        };
        drop(t);
        self.fill_tracing(key, found)
    }

    fn fill_tracing(&mut self, key: usize, site: Option<Site>) -> Lookup {
        if let Some(slot) = self.tracing.get_mut(slot_of(key, TRACING_SLOTS)) {
            *slot = TracingSlot { key, site };
        }
        site.map_or(Lookup::Full, Lookup::Site)
    }

    /// Adds `meta`'s callsite to the table, with the literal message its first record had.
    #[cold]
    #[inline(never)]
    pub(crate) fn learn_tracing(
        &mut self,
        meta: &'static Metadata<'static>,
        literal: Option<&str>,
    ) {
        let key = meta as *const Metadata<'static> as usize;
        let mut t = table();
        let site = match t.tracing.get(&key) {
            Some(site) => Some(*site),
            None => t.next_id().and_then(|id| {
                let literal = literal.filter(|l| l.len() <= MESSAGE_MAX).map(keep);
                let names: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
                let site = Callsite {
                    id,
                    level: crate::layer::level_of(meta.level()),
                    target: meta.target(),
                    message: literal,
                    file: meta.file().unwrap_or(""),
                    line: meta.line().unwrap_or(0),
                    names: Names::Slice(names.get(..NAMES_MAX).unwrap_or(&names)),
                };
                let site = t.add(&site).then_some(Site { id, literal })?;
                t.tracing.insert(key, site);
                Some(site)
            }),
        };
        drop(t);
        self.fill_tracing(key, site);
    }

    /// The callsite of a `log` record from `file`:`line` (a static file name).
    #[inline]
    pub(crate) fn log(
        &mut self,
        level: Level,
        target: &str,
        file: &'static str,
        line: u32,
    ) -> Lookup {
        let key = file.as_ptr() as usize ^ (line as usize).rotate_left(40);
        if let Some(s) = self.log.get(slot_of(key, LOG_SLOTS)) {
            if s.file == file.as_ptr() as usize
                && s.line == line
                && s.level == level
                && s.target == target
            {
                return s.site.map_or(Lookup::Full, Lookup::Site);
            }
        }
        self.log_miss(key, level, target, file, line, None, false)
    }

    /// Adds a `log` callsite to the table, with its literal message (`Arguments::as_str`).
    #[cold]
    #[inline(never)]
    pub(crate) fn learn_log(
        &mut self,
        level: Level,
        target: &str,
        file: &'static str,
        line: u32,
        literal: Option<&str>,
    ) {
        let key = file.as_ptr() as usize ^ (line as usize).rotate_left(40);
        self.log_miss(key, level, target, file, line, literal, true);
    }

    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)] // the key's parts, then what to do on a miss
    fn log_miss(
        &mut self,
        key: usize,
        level: Level,
        target: &str,
        file: &'static str,
        line: u32,
        literal: Option<&str>,
        learn: bool,
    ) -> Lookup {
        let mut t = table();
        let known = t
            .log
            .get(&(file, line))
            .and_then(|v| v.iter().find(|(l, tg, _)| *l == level && *tg == target))
            .map(|(_, tg, site)| (*tg, *site));
        let (target, site) = match known {
            Some((tg, site)) => (tg, Some(site)),
            None if !learn => {
                return if t.next_id().is_some() {
                    Lookup::New
                } else {
                    Lookup::Full
                };
            }
            None => {
                let Some(id) = t.next_id() else {
                    return Lookup::Full;
                };
                let target = keep(target);
                let site = Some(id).and_then(|id| {
                    let literal = literal.filter(|l| l.len() <= MESSAGE_MAX).map(keep);
                    let entry = Callsite {
                        id,
                        level,
                        target,
                        message: literal,
                        file,
                        line,
                        names: Names::Slice(&[]),
                    };
                    let site = t.add(&entry).then_some(Site { id, literal })?;
                    t.log
                        .entry((file, line))
                        .or_default()
                        .push((level, target, site));
                    Some(site)
                });
                (target, site)
            }
        };
        drop(t);
        if let Some(slot) = self.log.get_mut(slot_of(key, LOG_SLOTS)) {
            *slot = LogSlot {
                file: file.as_ptr() as usize,
                line,
                level,
                target,
                site,
            };
        }
        site.map_or(Lookup::Full, Lookup::Site)
    }
}
