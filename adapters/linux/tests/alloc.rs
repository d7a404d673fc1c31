//! Capturing an event allocates nothing (counting allocator), through the tracing layer and
//! the log bridge, with spans and sessions, on two threads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use flightrec_linux::{FlightLayer, FlightLogger, FlightRecorder, RecorderOptions};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

struct Counting;
thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

#[inline(never)]
fn events(i: u64) {
    tracing::debug!(user = "alice", attempt = i, "login attempt");
    tracing::trace!(peer = %"10.0.0.1:5", ok = true, ratio = 0.25f64, "formatted {} {}", i, "args");
}

#[test]
fn no_allocation_per_event() {
    let rec = FlightRecorder::new(RecorderOptions {
        shards: 2,
        ..RecorderOptions::default()
    })
    .expect("recorder options");
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(LevelFilter::INFO),
        )
        .with(FlightLayer::new(rec.clone()));
    let dispatch = tracing::Dispatch::new(subscriber);
    let logger = FlightLogger::new(rec.clone(), None);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let dispatch = dispatch.clone();
            let logger = FlightLogger::new(rec.clone(), None);
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let span = tracing::info_span!("conn", session = 7u64);
                    let _g = span.enter();
                    // Warm-up: callsite registration, the thread's shard slot.
                    for i in 0..10 {
                        events(i);
                    }
                    use log::Log;
                    let record = |i: u64| {
                        logger.log(
                            &log::Record::builder()
                                .level(log::Level::Debug)
                                .target("gw")
                                .args(format_args!("log {i}"))
                                .build(),
                        )
                    };
                    record(0);
                    let before = allocs();
                    for i in 0..10_000 {
                        events(i);
                        record(i);
                    }
                    allocs() - before
                })
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 0, "allocations in 30000 captured events");
    }
    drop(logger);
    let stats = rec.stats();
    assert_eq!(stats.failed, 0);
    assert!(stats.stored >= 60_000, "{stats:?}");
}
