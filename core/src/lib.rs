//! flightrec core: a flight recorder for logs and security events that fits a microcontroller.
//!
//! Every event, whatever its level, goes into a fixed-size in-memory [`Ring`]. When a trigger
//! fires (a failed login, a panic, an operator's signal, a brute-force threshold), the
//! [`TriggerMachine`] asks for a dump after a short post-trigger window, and [`write_dump`]
//! streams the ring to any [`embedded_io::Write`] in the format written down in
//! `WIRE-FORMAT.md` beside this crate.
//!
//! The crate is `#![no_std]`, never allocates, and returns [`Result`]s instead of panicking
//! on any input. Sharing between threads and interrupt handlers goes through
//! [`critical_section`]; a platform supplies the critical-section implementation and a
//! [`Clock`].
//!
//! ```
//! use flightrec_core::{event::AuthFailure, Recorder, RecorderConfig, RecorderSettings,
//!     TriggerConfig, Action, Build, ClockInfo, Level, Reason, SessionId};
//!
//! // The configuration, known at compile time: a type naming a constant.
//! struct Console;
//! impl RecorderSettings for Console {
//!     const CONFIG: RecorderConfig = RecorderConfig {
//!         trigger: TriggerConfig { post_records: 2, ..TriggerConfig::DEFAULT },
//!         ..RecorderConfig::DEFAULT
//!     };
//! }
//! // A recorder with a 4 KiB ring; in firmware this is a `static` (all zero: in `.bss`).
//! static REC: Recorder<4096, Console> = Recorder::new();
//!
//! let session = Some(SessionId(7));
//! REC.log(10, Level::Debug, session, "console", "prompt shown", &[]).unwrap();
//! let failed = AuthFailure { user: "admin", host: "dev1", peer: None,
//!                            mechanism: "pin", reason: "wrong pin" };
//! assert!(matches!(REC.record(11, session, &failed).unwrap(), Action::Start(_)));
//! REC.log(12, Level::Info, session, "console", "locked for 1 s", &[]).unwrap();
//! // The post-trigger window is two records: this one closes it.
//! let action = REC.log(13, Level::Trace, None, "idle", "tick", &[]).unwrap();
//! assert_eq!(action, Action::Dump(Reason::FailedLogin));
//!
//! let mut out = Vec::new();
//! let mut scratch = [0u8; 512];
//! let clock = ClockInfo::BOOT_MILLIS;
//! let build = Build { name: "demo", version: "1.0", id: &[0xab; 8] };
//! let summary = REC.dump_due(clock, &build, &mut out, &mut scratch).unwrap().unwrap();
//! assert_eq!(summary.records, 4);
//! ```
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod bytes;
pub mod callsite;
pub mod crc;
pub mod dump;
pub mod encode;
mod error;
pub mod event;
pub mod frame;
pub mod recorder;
pub mod ring;
#[cfg(feature = "seal")]
pub mod seal;
mod shared;
pub mod text;
pub mod trigger;

pub use dump::{
    write_dump, write_dump_from, Build, ClockInfo, DumpEnd, DumpError, DumpHeader, DumpSummary,
    RecordHead, Source, TimeBase,
};
pub use recorder::{
    Attached, AttachedRecorder, CaptureFilter, Defaults, RecordError, Recorder, RecorderConfig,
    RecorderInner, RecorderSettings, RecorderStats, RingStorage,
};
pub use ring::{Cursor, Read, RecordMeta, Ring, RingError, RingStats};
pub use shared::SharedRing;
pub use trigger::{
    Action, DumpOrder, RateLimit, Reason, RecordInfo, Threshold, TriggerConfig, TriggerMachine,
    TriggerState,
};

/// Severity of a record. Ordered: `Trace < Debug < Info < Warn < Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Level {
    /// Very verbose diagnostics.
    Trace = 0,
    /// Diagnostics.
    Debug = 1,
    /// Normal operation.
    Info = 2,
    /// Something suspicious; security events default here.
    Warn = 3,
    /// Something failed.
    Error = 4,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ];

    /// The level with wire code `code`, if it is one this version knows.
    pub const fn from_u8(code: u8) -> Option<Level> {
        match code {
            0 => Some(Level::Trace),
            1 => Some(Level::Debug),
            2 => Some(Level::Info),
            3 => Some(Level::Warn),
            4 => Some(Level::Error),
            _ => None,
        }
    }

    /// Upper-case name, as log lines print it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// What a record's payload is. A plain byte so that kinds added by a newer writer still travel
/// through older code; the known kinds are associated constants.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Kind(pub u8);

impl Kind {
    /// [`event::Log`]: a log line with target, message and fields.
    pub const LOG: Kind = Kind(0);
    /// A raw frame, e.g. defmt-encoded bytes; the payload is opaque.
    pub const FRAME: Kind = Kind(1);
    /// [`event::AuthFailure`].
    pub const AUTH_FAILURE: Kind = Kind(2);
    /// [`event::AuthSuccess`].
    pub const AUTH_SUCCESS: Kind = Kind(3);
    /// [`event::Logout`].
    pub const LOGOUT: Kind = Kind(4);
    /// [`event::SessionForbidden`].
    pub const SESSION_FORBIDDEN: Kind = Kind(5);
    /// [`event::Connect`].
    pub const CONNECT: Kind = Kind(6);
    /// [`event::Custom`].
    pub const CUSTOM: Kind = Kind(7);
    /// A log line in its callsite form ([`callsite`]): a callsite id and raw values, read
    /// with the dump's callsite table. Not a kind of its own for users: a decoder resolves
    /// it into a [`Kind::LOG`] record, so it has no name and is not in [`Kind::KNOWN`].
    pub const CALLSITE: Kind = Kind(8);

    /// Every kind this version knows, in code order.
    pub const KNOWN: [Kind; 8] = [
        Kind::LOG,
        Kind::FRAME,
        Kind::AUTH_FAILURE,
        Kind::AUTH_SUCCESS,
        Kind::LOGOUT,
        Kind::SESSION_FORBIDDEN,
        Kind::CONNECT,
        Kind::CUSTOM,
    ];

    /// The known kind named `name` (see [`Kind::name`]).
    ///
    /// ```
    /// use flightrec_core::Kind;
    /// assert_eq!(Kind::from_name("auth-failure"), Some(Kind::AUTH_FAILURE));
    /// assert_eq!(Kind::from_name("nope"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::KNOWN.into_iter().find(|k| k.name() == Some(name))
    }

    /// Short lower-case name of a known kind, `None` for kinds this version does not know.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("log"),
            1 => Some("frame"),
            2 => Some("auth-failure"),
            3 => Some("auth-success"),
            4 => Some("logout"),
            5 => Some("session-forbidden"),
            6 => Some("connect"),
            7 => Some("custom"),
            _ => None,
        }
    }

    /// Security events: the ones an audit log keeps.
    pub const fn is_security(self) -> bool {
        matches!(self.0, 2..=6)
    }
}

/// Identifies one session (a connection, a login attempt): a dump can be scoped to it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SessionId(pub u32);

/// The platform's time source. Ticks are monotonic; [`ClockInfo`] tells a decoder how to
/// turn them into seconds and whether they count from boot or from the Unix epoch.
pub trait Clock {
    /// Current time in ticks.
    fn now(&self) -> u64;
    /// Tick rate and time base, written into every dump header.
    fn info(&self) -> ClockInfo;
}
