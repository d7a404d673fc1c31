//! flightrec for Linux daemons: capture every `tracing` event and `log` record into
//! per-thread rings, record security events, dump on triggers and signals, write the audit
//! log.
//!
//! Adding it to a tokio daemon:
//!
//! ```no_run
//! use std::sync::Arc;
//! use tracing_subscriber::{prelude::*, filter::LevelFilter};
//! use flightrec_linux::{Config, FlightLayer, FlightRecorder, Service, install_panic_hook};
//!
//! # async fn daemon() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load("gateway.toml".as_ref())?;
//! let rec = FlightRecorder::new(config.recorder_options()?)?;
//! // With a [forward] section, records also go to a syslog collector (see `forward`).
//! let forwarder = config.forwarder(&rec)?;
//! let _service = Service::start_with(rec.clone(), config.service_options()?, forwarder)?;
//! install_panic_hook(rec.clone());
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
//!     .with(FlightLayer::new(rec.clone()).with_filter(config.capture_filter()))
//!     .init();
//! // In the login handler: core's typed security events.
//! use flightrec_core::event::AuthFailure;
//! rec.record(None, &AuthFailure { user: "alice", host: "example.org", peer: None,
//!                                 mechanism: "PLAIN", reason: "bad password" });
//! # Ok(()) }
//! ```
//!
//! - [`FlightLayer`] (tracing) and [`FlightLogger`] (log) record every event, whatever the
//!   console shows, without heap allocation per event.
//! - [`FlightRecorder`] holds one core ring per shard (threads are spread over shards) and
//!   the trigger machine; [`FlightRecorder::record`] takes core's typed events
//!   (`AuthFailure`, `AuthSuccess`, `Logout`, `SessionForbidden`, `Connect`, `Custom`),
//!   records them, feeds the triggers and queues audit lines. A dump is a merge of the
//!   shards streamed to its file ([`FlightRecorder::write_dump`]).
//! - [`Service`] is the writer task: dumps (file name templates, append, 0600), audit files
//!   per `@HOST@` with rotation and expiry, `SIGUSR2` dumps, `SIGHUP` reopens; every line
//!   and dump whole in its file or counted as lost ([`ServiceStats`], [`Service::flush`]).
//!   [`install_panic_hook`] dumps with reason "untimely death", never waiting.
//! - [`files`] opens every file: the whole path without following a link, each directory
//!   checked (owner, group/world write), only regular files, loose modes tightened.
//! - [`forward`]: audit events, trigger firings and dump notices to a syslog collector
//!   (RFC 5424 over RELP, TCP or TLS), through a crash-surviving spool.
//! - [`Config`] reads all of it from TOML.
#![deny(missing_docs)]

mod auditlog;
mod auditseal;
mod callsite;
mod callsite_encode;
mod clock;
mod config;
mod dumpfile;
mod dumpseal;
mod encode;
pub mod files;
pub mod forward;
mod layer;
mod recorder;
pub mod ringfile;
pub mod sealkey;
mod service;
mod shardlock;
mod stats;

pub use auditlog::{AuditLog, AuditOptions};
pub use clock::UnixClock;
pub use config::{Config, ConfigError};
pub use dumpfile::{forensic, DumpFiles, DumpFormat, DumpOptions};
pub use forward::{ForwardOptions, ForwardStats, Forwarder};
pub use layer::{current_session, level_of, FlightLayer, FlightLogger};
pub use recorder::{AuditItem, FlightRecorder, RecorderOptions, Stats, MAX_SHARDS, SHARD_BYTES};
pub use service::{install_panic_hook, Service, ServiceOptions};
pub use stats::{Lost, Refusals, ServiceStats};
