//! How many events a ring holds: records events into one 64 KiB shard until the first
//! eviction, and prints the ring bytes per event and the events a 1 MiB ring would hold.
//!
//! ```sh
//! cargo run --release -p flightrec-linux --example ring_density -- bench     # the capture bench's event
//! cargo run --release -p flightrec-linux --example ring_density -- gateway   # the demo gateway's mix
//! cargo run --release -p flightrec-linux --example ring_density -- gateway full  # the full form
//! ```
//!
//! `full` records the full form (target, message and names in every record,
//! `FlightLayer::with_callsites(false)`), the encoding before callsite tables.
//!
//! The gateway's mix is what `examples/support/gateway.rs` records for one good login (with
//! ten `NOISE` events) and one failed login, each in a `conn` span with its session: the
//! same macros, fields and security events, driven without sockets.

use flightrec_core::event::{AuthFailure, AuthSuccess, Connect, Logout, Peer};
use flightrec_core::SessionId;
use flightrec_linux::{FlightLayer, FlightRecorder, RecorderOptions, SHARD_BYTES};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

fn bench_event(_: &FlightRecorder, i: u64) -> u64 {
    tracing::debug!(user = "alice", attempt = i, "login attempt");
    1
}

/// One good and one failed session of the demo gateway; the number of events recorded.
fn gateway_sessions(rec: &FlightRecorder, i: u64) -> u64 {
    let peer: std::net::SocketAddr = "192.0.2.7:40000".parse().expect("address");
    let peer_addr = Some(Peer::from(peer));
    let (user, host) = ("alice".to_string(), "example.org".to_string());
    let mut n = 0;
    for good in [true, false] {
        let session = 2 * i + u64::from(good);
        let span = tracing::info_span!("conn", session, %peer);
        let _g = span.enter();
        let s = Some(SessionId(session as u32));
        rec.record(
            s,
            &Connect {
                protocol: "gw-login",
                peer: peer_addr,
            },
        );
        tracing::debug!("connection accepted");
        tracing::debug!(user = user.as_str(), host = host.as_str(), "login attempt");
        n += 3;
        if good {
            tracing::info!(user = user.as_str(), "login ok");
            rec.record(
                s,
                &AuthSuccess {
                    user: &user,
                    host: &host,
                    peer: peer_addr,
                    mechanism: "PLAIN",
                },
            );
            for i in 0..10u32 {
                tracing::debug!(i, "noise");
            }
            rec.record(
                s,
                &Logout {
                    user: &user,
                    host: &host,
                    peer: peer_addr,
                },
            );
            n += 13;
        } else {
            let reason = "bad password";
            tracing::warn!(reason, "login failed");
            rec.record(
                s,
                &AuthFailure {
                    user: &user,
                    host: &host,
                    peer: peer_addr,
                    mechanism: "PLAIN",
                    reason,
                },
            );
            n += 2;
        }
        tracing::debug!("connection closed");
        n += 1;
    }
    n
}

fn main() {
    let subject = std::env::args().nth(1).unwrap_or_else(|| "bench".into());
    let full = std::env::args().nth(2).is_some_and(|a| a == "full");
    let step: fn(&FlightRecorder, u64) -> u64 = match subject.as_str() {
        "gateway" => gateway_sessions,
        _ => bench_event,
    };
    let rec = FlightRecorder::new(RecorderOptions {
        shards: 1,
        ..RecorderOptions::default()
    })
    .expect("recorder options");
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(LevelFilter::INFO),
        )
        .with(FlightLayer::new(rec.clone()).with_callsites(!full));
    tracing::subscriber::with_default(subscriber, || {
        let mut i = 0;
        // Fill the ring once (the first records' sequence numbers and times are shorter),
        // then count what one full ring holds.
        while rec.stats().evicted == 0 {
            step(&rec, i);
            i += 1;
        }
        let base = rec.stats();
        let mut events = 0;
        while rec.stats().evicted - base.evicted < base.stored {
            events += step(&rec, i);
            i += 1;
        }
        let stats = rec.stats();
        let held = stats.stored - stats.evicted;
        let per_event = SHARD_BYTES as f64 / held as f64;
        println!(
            "{subject}{}: a {SHARD_BYTES}-byte ring holds {held} events ({per_event:.1} ring bytes per event, \
             {events} events recorded while measuring); a 1 MiB ring holds {:.0}",
            if full { " (full form)" } else { "" },
            (1 << 20) as f64 / per_event,
        );
    });
}
