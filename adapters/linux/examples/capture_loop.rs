//! The bench's event in a plain loop, for instruction counts (callgrind), which the load of
//! a shared machine does not change:
//!
//! ```sh
//! cargo build --profile bench -p flightrec-linux --example capture_loop
//! for n in 0 100000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/capture_loop ours $n 2>&1 | grep Collected; done
//! ```
//!
//! `(count at 100000 - count at 0) / 100000` is instructions per event. Subjects: `ours`,
//! `floor` (a layer doing nothing), `baseline` (console only, the debug event disabled).

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

struct Nothing;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nothing {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        std::hint::black_box(event);
    }
}

#[inline(never)]
fn event(i: u64) {
    tracing::debug!(user = "alice", attempt = i, "login attempt");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "ours".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let console = || {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(LevelFilter::INFO)
    };
    let rec = flightrec_linux::FlightRecorder::new(flightrec_linux::RecorderOptions {
        shards: 4,
        ..flightrec_linux::RecorderOptions::default()
    })
    .expect("recorder options");
    let dispatch = match subject.as_str() {
        "floor" => {
            tracing::Dispatch::new(tracing_subscriber::registry().with(console()).with(Nothing))
        }
        "baseline" => tracing::Dispatch::new(tracing_subscriber::registry().with(console())),
        _ => tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(console())
                .with(flightrec_linux::FlightLayer::new(rec.clone())),
        ),
    };
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..1000 {
            event(i); // warm-up: callsite registration, the thread's buffers
        }
        for i in 0..n {
            event(i);
        }
    });
    println!(
        "{subject}: {} records stored, clock reads the TSC: {}",
        rec.stats().stored,
        rec.clock().is_tsc()
    );
}
