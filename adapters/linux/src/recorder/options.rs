//! How a recorder is built, what it refuses, and what it counts.

use flightrec_core::trigger::TriggerConfig;
use flightrec_core::Level;

use super::shards::MAX_SHARDS;
use super::trigger::THRESHOLD_DEPTH;
use crate::config::ConfigError;

/// Most named-event triggers: a dump names its trigger by an 8-bit index into the list.
const NAMED_MAX: usize = u8::MAX as usize + 1;

/// How a [`FlightRecorder`](crate::FlightRecorder) is built.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    /// Shards (rings of [`SHARD_BYTES`](crate::SHARD_BYTES)); 1 to [`MAX_SHARDS`]. Default:
    /// twice the CPUs, at least 2.
    pub shards: usize,
    /// Lowest level recorded by the `log` bridge and [`record`](crate::FlightRecorder::record)
    /// (security events are always recorded; the `tracing` layer takes its filter from
    /// `tracing_subscriber`; see [`crate::FlightLayer`]).
    pub min_level: Level,
    /// Trigger criteria. `post_records` must be 0: only records that can fire a trigger
    /// reach the trigger machine, so it cannot count the records after a trigger; use
    /// `post_ticks` (nanoseconds) for a post-trigger window. A threshold counts 1 to 32
    /// events; at most 256 named events.
    pub trigger: TriggerConfig,
    /// Program name written into dumps.
    pub program: String,
    /// Program version written into dumps.
    pub version: String,
    /// This machine's name, for `{host}` in file names and as the audit host fallback.
    pub host: String,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        RecorderOptions {
            shards: (cpus * 2).clamp(2, MAX_SHARDS),
            min_level: Level::Trace,
            trigger: TriggerConfig {
                post_records: 0,
                post_ticks: 100_000_000,
                ..TriggerConfig::DEFAULT
            },
            program: "flightrec".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            host: crate::files::hostname(),
        }
    }
}

impl RecorderOptions {
    /// Refuses what this recorder cannot honour, naming the option as the TOML
    /// configuration does (`trigger.post_records`, `ring.shards`, `trigger.named`,
    /// `trigger.threshold.count`).
    pub fn check(&self) -> Result<(), ConfigError> {
        let refuse = |key: &str, problem: String| {
            Err(ConfigError {
                key: key.into(),
                problem,
            })
        };
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return refuse(
                "ring.shards",
                format!("{} is not in 1..={MAX_SHARDS}", self.shards),
            );
        }
        if self.trigger.post_records != 0 {
            return refuse(
                "trigger.post_records",
                format!(
                    "{} cannot be honoured: only records that can fire a trigger reach the \
                     trigger machine, so the records after a trigger are not counted; use a \
                     time window (post_ms, or post_ticks in nanoseconds)",
                    self.trigger.post_records
                ),
            );
        }
        let names = self.trigger.named.len();
        if names > NAMED_MAX {
            return refuse(
                "trigger.named",
                format!("{names} names: a dump can name at most {NAMED_MAX}"),
            );
        }
        if let Some(t) = self.trigger.threshold {
            if t.count == 0 {
                return refuse("trigger.threshold.count", "must be at least 1".into());
            }
            if usize::from(t.count) > THRESHOLD_DEPTH {
                return refuse(
                    "trigger.threshold.count",
                    format!(
                        "{} is more events than this recorder counts ({THRESHOLD_DEPTH})",
                        t.count
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Counters of a [`FlightRecorder`](crate::FlightRecorder).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records stored, all shards.
    pub stored: u64,
    /// Records refused (too large, unencodable), as the shards' rings count them.
    pub failed: u64,
    /// Records evicted to make room (the normal life of a ring).
    pub evicted: u64,
    /// Queue items (audit lines, dump orders) dropped because the writer's queue was full.
    pub queue_dropped: u64,
    /// Audit lines dropped because the queue was full (also in `queue_dropped`).
    pub audit_dropped: u64,
    /// Dump orders dropped because the queue was full (also in `queue_dropped`), reported as
    /// suppressed in the next dump.
    pub dumps_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlightRecorder;
    use flightrec_core::trigger::Threshold;
    use flightrec_core::Kind;

    fn refused(opts: RecorderOptions) -> ConfigError {
        let e = FlightRecorder::new(opts.clone()).expect_err("refused");
        let dir = std::env::temp_dir().join(format!("flightrec-options-{}", std::process::id()));
        let io = FlightRecorder::with_ring_file(opts, &dir.join("ring"), &Default::default())
            .expect_err("refused");
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
        assert!(!dir.exists(), "nothing created for refused options");
        e
    }

    #[test]
    fn post_records_is_refused_naming_the_key() {
        let mut opts = RecorderOptions::default();
        opts.trigger.post_records = 4;
        let e = refused(opts);
        assert_eq!(e.key, "trigger.post_records");
        assert!(e.problem.contains("post_ms"), "{e}");
    }

    #[test]
    fn what_the_recorder_cannot_honour_is_refused_naming_the_key() {
        let threshold = |count| {
            let mut o = RecorderOptions::default();
            o.trigger.threshold = Some(Threshold {
                kind: Kind::AUTH_FAILURE,
                count,
                window: 1,
                per_peer: false,
            });
            o
        };
        assert_eq!(refused(threshold(33)).key, "trigger.threshold.count");
        assert_eq!(refused(threshold(0)).key, "trigger.threshold.count");
        assert!(FlightRecorder::new(threshold(32)).is_ok());
        for shards in [0, MAX_SHARDS + 1] {
            let e = refused(RecorderOptions {
                shards,
                ..RecorderOptions::default()
            });
            assert_eq!(e.key, "ring.shards");
        }
        let names: &'static [&'static str] = Box::leak(vec!["n"; NAMED_MAX + 1].into_boxed_slice());
        let mut o = RecorderOptions::default();
        o.trigger.named = names;
        assert_eq!(refused(o).key, "trigger.named");
    }
}
