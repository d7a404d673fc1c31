//! One `tracing::debug!` with two fields while the console shows only INFO: captured by
//! flightrec's layer, by tracing-flight-recorder, written by tracing-appender's
//! non_blocking writer, written by a plain `tracing_subscriber::fmt` to a file; and the
//! baseline without any capture. The floor cases put the same registry and console under a
//! layer whose `on_event` does nothing (or only reads a clock): that is what `tracing`
//! itself costs for an enabled event, which no capture layer can go below. Then allocations
//! per event (counting allocator) and the scaling of flightrec's layer from one thread to
//! two.
//!
//! `cargo bench -p flightrec-linux --bench capture`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn console() -> impl tracing_subscriber::Layer<tracing_subscriber::Registry> {
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(LevelFilter::INFO)
}

/// A layer that takes every event and does nothing with it: tracing's own cost.
struct Nothing;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nothing {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        std::hint::black_box(event);
    }
}

/// A layer that visits the event's fields with a visitor that keeps nothing (the message's
/// `fmt::Arguments` is not formatted).
struct Visit;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Visit {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct V;
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                std::hint::black_box((f, v));
            }
        }
        event.record(&mut V);
    }
}

/// A layer that only reads `std::time::Instant` (the vDSO's `clock_gettime`) per event.
struct StdClock;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StdClock {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        std::hint::black_box((event, Instant::now()));
    }
}

/// A layer that only reads the clock flightrec stamps its records with.
struct OurClock(flightrec_linux::UnixClock);
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for OurClock {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        use flightrec_core::Clock;
        std::hint::black_box((event, self.0.now()));
    }
}

struct Case {
    name: &'static str,
    dispatch: Dispatch,
    _keep: Option<Box<dyn std::any::Any>>,
}

fn cases(dir: &std::path::Path) -> Vec<Case> {
    let rec = flightrec_linux::FlightRecorder::new(flightrec_linux::RecorderOptions {
        shards: 4,
        ..flightrec_linux::RecorderOptions::default()
    })
    .expect("recorder options");
    let ours = Dispatch::new(
        tracing_subscriber::registry()
            .with(console())
            .with(flightrec_linux::FlightLayer::new(rec)),
    );
    let tfr = tracing_flight_recorder::FlightRecorder::new(10_000);
    let theirs = Dispatch::new(
        tracing_subscriber::registry()
            .with(console())
            .with(tracing_flight_recorder::FlightRecorderLayer::new(tfr)),
    );
    let file = std::fs::File::create(dir.join("appender.log")).expect("bench file");
    let (nb, guard) = tracing_appender::non_blocking(file);
    let appender = Dispatch::new(
        tracing_subscriber::registry().with(console()).with(
            tracing_subscriber::fmt::layer()
                .with_writer(nb)
                .with_filter(LevelFilter::DEBUG),
        ),
    );
    let file = Arc::new(std::fs::File::create(dir.join("fmt.log")).expect("bench file"));
    let fmt_file = Dispatch::new(
        tracing_subscriber::registry().with(console()).with(
            tracing_subscriber::fmt::layer()
                .with_writer(file)
                .with_filter(LevelFilter::DEBUG),
        ),
    );
    let baseline = Dispatch::new(tracing_subscriber::registry().with(console()));
    let floor = Dispatch::new(tracing_subscriber::registry().with(console()).with(Nothing));
    let visit = Dispatch::new(tracing_subscriber::registry().with(console()).with(Visit));
    let std_clock = Dispatch::new(
        tracing_subscriber::registry()
            .with(console())
            .with(StdClock),
    );
    let our_clock = Dispatch::new(
        tracing_subscriber::registry()
            .with(console())
            .with(OurClock(flightrec_linux::UnixClock::new())),
    );
    vec![
        Case {
            name: "flightrec-linux layer",
            dispatch: ours,
            _keep: None,
        },
        Case {
            name: "tracing-flight-recorder",
            dispatch: theirs,
            _keep: None,
        },
        Case {
            name: "tracing-appender non_blocking",
            dispatch: appender,
            _keep: Some(Box::new(guard)),
        },
        Case {
            name: "tracing_subscriber::fmt to a file",
            dispatch: fmt_file,
            _keep: None,
        },
        Case {
            name: "baseline: console at INFO only (debug! not captured)",
            dispatch: baseline,
            _keep: None,
        },
        Case {
            name: "floor: a layer doing nothing",
            dispatch: floor,
            _keep: None,
        },
        Case {
            name: "floor + visiting the fields (nothing kept)",
            dispatch: visit,
            _keep: None,
        },
        Case {
            name: "floor + Instant::now()",
            dispatch: std_clock,
            _keep: None,
        },
        Case {
            name: "floor + flightrec's clock",
            dispatch: our_clock,
            _keep: None,
        },
    ]
}

#[inline(never)]
fn event(i: u64) {
    tracing::debug!(user = "alice", attempt = i, "login attempt");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = cases(dir.path());
    let mut group = c.benchmark_group("debug_two_fields");
    for case in &cases {
        tracing::dispatcher::with_default(&case.dispatch, || {
            group.bench_function(case.name, |b| {
                let mut i = 0u64;
                b.iter(|| {
                    i += 1;
                    event(i)
                })
            });
        });
    }
    group.finish();

    println!("\nallocations per event (counting allocator, 10000 events after warm-up):");
    for case in &cases {
        tracing::dispatcher::with_default(&case.dispatch, || {
            for i in 0..1000 {
                event(i);
            }
            let before = ALLOCS.load(Ordering::Relaxed);
            for i in 0..10_000 {
                event(i);
            }
            let n = ALLOCS.load(Ordering::Relaxed) - before;
            println!("  {:55} {:.2}", case.name, n as f64 / 10_000.0);
        });
    }

    // Scaling: wall time for `iters` events on each of N threads.
    let mut group = c.benchmark_group("flightrec_threads");
    let ours = cases[0].dispatch.clone();
    for threads in [1usize, 2] {
        let d = ours.clone();
        group.bench_function(format!("{threads} thread(s), per event per thread"), |b| {
            b.iter_custom(|iters| wall(&d, threads, iters))
        });
    }
    group.finish();
    // Best of 5 (least disturbed by other load on the machine) for each, alternating the
    // subjects so that a burst of other load hits all of them alike.
    let n = 2_000_000;
    let subjects = [
        ("flightrec-linux layer", &cases[0].dispatch),
        ("control: nothing captured", &cases[4].dispatch),
        ("control: floor (a layer doing nothing)", &cases[5].dispatch),
    ];
    let mut best = [[Duration::MAX; 2]; 3];
    for _ in 0..5 {
        for (b, (_, d)) in best.iter_mut().zip(&subjects) {
            for (t, slot) in b.iter_mut().enumerate() {
                *slot = (*slot).min(wall(d, t + 1, n));
            }
        }
    }
    println!("\n1 -> 2 threads ({n} events per thread, best of 5 wall times):");
    for (b, (name, _)) in best.iter().zip(&subjects) {
        println!(
            "  {:40} 1 thread {:.1} M events/s, 2 threads {:.1} M events/s: scaling {:.2}x",
            name,
            n as f64 / b[0].as_secs_f64() / 1e6,
            2.0 * n as f64 / b[1].as_secs_f64() / 1e6,
            2.0 * b[0].as_secs_f64() / b[1].as_secs_f64()
        );
    }
    // The controls share nothing between threads: if they do not scale either, the machine
    // has no second core to give (other load).
}

fn wall(d: &Dispatch, threads: usize, iters: u64) -> Duration {
    let barrier = Arc::new(std::sync::Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (d, barrier) = (d.clone(), barrier.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    event(0); // warm the thread's shard slot
                    barrier.wait();
                    for i in 0..iters {
                        event(i);
                    }
                })
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    start.elapsed()
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
