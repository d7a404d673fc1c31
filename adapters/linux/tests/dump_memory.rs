//! A dump's memory does not grow with the rings: full shards (2 MiB of records) are
//! dumped with the memory of about one record, beside the writer's buffer (counting
//! allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use flightrec_core::Level;
use flightrec_linux::{DumpFormat, FlightRecorder, RecorderOptions, MAX_SHARDS, SHARD_BYTES};

struct Counting;
thread_local! {
    /// Bytes this thread has allocated and not freed, and the most it had.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + delta);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        add(n as isize - l.size() as isize);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Most bytes allocated at once on this thread while `f` runs, beyond what was live before.
fn peak_of(f: impl FnOnce()) -> isize {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    f();
    PEAK.with(Cell::get) - before
}

#[test]
fn a_dump_takes_one_record_and_one_write_buffer_whatever_the_rings() {
    let rec = FlightRecorder::new(RecorderOptions {
        shards: MAX_SHARDS,
        ..RecorderOptions::default()
    })
    .expect("recorder options");
    // One thread per shard (threads take shards round-robin), each filling its ring.
    std::thread::scope(|s| {
        for t in 0..MAX_SHARDS {
            let rec = &rec;
            s.spawn(move || {
                for i in 0..4000 {
                    rec.log(
                        Level::Info,
                        None,
                        "fill",
                        &format!("thread {t} line {i}"),
                        &[],
                    );
                }
            });
        }
    });
    assert!(rec.stats().evicted > 0, "the rings are full");
    let order = rec.manual_order();
    let mut bytes = 0;
    let peak = peak_of(|| {
        let summary = rec
            .write_dump(&order, DumpFormat::Binary, std::io::sink())
            .unwrap();
        bytes = summary.bytes;
    });
    assert!(
        bytes > MAX_SHARDS * SHARD_BYTES * 9 / 10,
        "{bytes} bytes dumped"
    );
    // A shard's largest record (the read buffer) and a few words per shard: the writer
    // buffers as it likes (the dump files' buffer is 64 KiB).
    let bound = SHARD_BYTES + 16 * 1024;
    assert!(
        peak <= bound as isize,
        "{peak} bytes at once for a {bytes}-byte dump"
    );
}
