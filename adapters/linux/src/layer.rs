//! Capture from `tracing` (a [`Layer`]) and from `log` (a [`log::Log`]).

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use flightrec_core::event::Value;
use flightrec_core::{Level, SessionId};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::callsite::Lookup;
use crate::callsite_encode::SiteEncoder;
use crate::encode::{with_encoders, Encoder, FormatSink, Window};
use crate::recorder::FlightRecorder;

/// A `tracing_subscriber` layer recording every event it sees into the ring, whatever the
/// console or file output shows.
///
/// Put the user's level filter on *their* output layer (a per-layer filter), not on the
/// subscriber, so this layer still sees debug and trace events:
///
/// ```
/// use tracing_subscriber::{prelude::*, filter::LevelFilter, filter::Targets};
/// use flightrec_linux::{FlightLayer, FlightRecorder, RecorderOptions};
///
/// let rec = FlightRecorder::new(RecorderOptions::default())?;
/// let subscriber = tracing_subscriber::registry()
///     // The console shows INFO and above ...
///     .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
///     // ... the ring gets everything but the chatty `hyper` debug output.
///     .with(FlightLayer::new(rec.clone())
///         .with_filter(Targets::new().with_default(tracing::Level::TRACE)
///                                    .with_target("hyper", tracing::Level::INFO)));
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("conn", session = 7u64);
///     let _g = span.enter();
///     tracing::debug!(user = "alice", attempt = 2, "checking password");
/// });
/// assert_eq!(rec.stats().stored, 1);
/// # Ok::<(), flightrec_linux::ConfigError>(())
/// ```
///
/// A global filter (`EnvFilter` on the registry, `RUST_LOG=info` with `fmt().init()`) would
/// stop debug events before they reach this layer. The cost of capturing everything is that
/// every `debug!`/`trace!` callsite is enabled: each one now encodes a record (see the
/// crate's bench for the cost per event).
///
/// Session scoping: a span field named `session` (see [`with_session_field`](Self::with_session_field))
/// holding an integer (or a decimal string) gives every event inside that span that session
/// id, so a failed login's dump can be scoped to its session.
#[derive(Debug, Clone)]
pub struct FlightLayer {
    rec: Arc<FlightRecorder>,
    session_field: &'static str,
    callsites: bool,
}

impl FlightLayer {
    /// A layer recording into `rec`, reading sessions from span field `session`.
    pub fn new(rec: Arc<FlightRecorder>) -> Self {
        FlightLayer {
            rec,
            session_field: "session",
            callsites: true,
        }
    }

    /// Whether records take the callsite form (the default: a callsite id and the raw
    /// values; the target, literal message and field names go once into the callsite
    /// table every dump carries) or the full form (each record holds its target, its
    /// formatted message and its field names: the encoding before callsite tables, kept to
    /// compare them). A decoder shows both the same.
    pub fn with_callsites(mut self, on: bool) -> Self {
        self.callsites = on;
        self
    }

    /// Reads the session id from span field `name` instead.
    pub fn with_session_field(mut self, name: &'static str) -> Self {
        self.session_field = name;
        self
    }
}

/// The session of the current `tracing` span (or of its nearest parent that has one), when
/// the default subscriber is built on `tracing_subscriber`'s registry and a [`FlightLayer`]
/// saw the span. Used by the panic hook to tag the panic with the panicking session.
pub fn current_session() -> Option<SessionId> {
    tracing::dispatcher::get_default(|d| {
        let registry = d.downcast_ref::<tracing_subscriber::Registry>()?;
        let current = d.current_span();
        let span = registry.span(current.id()?)?;
        span.scope()
            .find_map(|s| s.extensions().get::<SessionId>().copied())
    })
}

/// Maps a `tracing` level to ours.
pub fn level_of(l: &tracing::Level) -> Level {
    match *l {
        tracing::Level::TRACE => Level::Trace,
        tracing::Level::DEBUG => Level::Debug,
        tracing::Level::INFO => Level::Info,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::ERROR => Level::Error,
    }
}

thread_local! {
    /// Spans this thread is in, as `FlightLayer`s saw them entered and exited. While it is
    /// zero, an event in the current context has no span, so no session: the registry's
    /// span lookup, a sizeable part of the layer's instructions per event, is skipped.
    static ENTERED: Cell<usize> = const { Cell::new(0) };
}

fn entered_add(delta: isize) {
    let _ = ENTERED.try_with(|n| n.set(n.get().saturating_add_signed(delta)));
}

/// Finds the session field among a span's values.
struct SessionVisitor {
    name: &'static str,
    found: Option<SessionId>,
}

impl Visit for SessionVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == self.name {
            self.found = u32::try_from(value).ok().map(SessionId);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == self.name {
            self.found = u32::try_from(value).ok().map(SessionId);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.name {
            self.found = value.parse().ok().map(SessionId);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == self.name {
            let mut room = [0u8; 24];
            let mut text = Window::new(&mut room);
            let _ = fmt::Write::write_fmt(&mut text, format_args!("{value:?}"));
            self.found = std::str::from_utf8(text.kept())
                .ok()
                .and_then(|t| t.parse().ok())
                .map(SessionId);
        }
    }
}

/// Encodes an event's fields as they are visited; the `message` field is the message.
struct EventVisitor<'e> {
    enc: &'e mut Encoder,
}

impl Visit for EventVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.enc.f64(field.name(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.enc.i64(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.enc.u64(field.name(), value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.enc.i64(field.name(), v),
            Err(_) => self.enc.debug(field.name(), &value),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.enc.u64(field.name(), v),
            Err(_) => self.enc.debug(field.name(), &value),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.enc.bool(field.name(), value);
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.enc.bytes(field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.enc.message_str(value);
        } else {
            self.enc.str(field.name(), value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.enc.display(field.name(), &value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.enc.message_debug(value);
        } else {
            self.enc.debug(field.name(), value);
        }
    }
}

/// Encodes an event's values in the callsite form: each by its field's index.
struct SiteVisitor<'e> {
    enc: &'e mut SiteEncoder,
}

impl Visit for SiteVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.enc.field(field.index(), Value::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.enc.field(field.index(), Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.enc.field(field.index(), Value::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.enc.field(field.index(), Value::I64(v)),
            Err(_) => self.enc.debug(field.index(), &value),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.enc.field(field.index(), Value::U64(v)),
            Err(_) => self.enc.debug(field.index(), &value),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.enc.field(field.index(), Value::Bool(value));
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.enc.field(field.index(), Value::Bytes(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.enc.message_str(value);
        } else {
            self.enc.field(field.index(), Value::Str(value));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.enc.display(field.index(), &value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.enc.message_debug(value);
        } else {
            self.enc.debug(field.index(), value);
        }
    }
}

impl<S> Layer<S> for FlightLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = SessionVisitor {
            name: self.session_field,
            found: None,
        };
        attrs.record(&mut v);
        if let (Some(session), Some(span)) = (v.found, ctx.span(id)) {
            span.extensions_mut().replace(session);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut v = SessionVisitor {
            name: self.session_field,
            found: None,
        };
        values.record(&mut v);
        if let (Some(session), Some(span)) = (v.found, ctx.span(id)) {
            span.extensions_mut().replace(session);
        }
    }

    fn on_enter(&self, _: &Id, _: Context<'_, S>) {
        entered_add(1);
    }

    fn on_exit(&self, _: &Id, _: Context<'_, S>) {
        entered_add(-1);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = level_of(meta.level());
        let in_span = !event.is_contextual() || ENTERED.try_with(Cell::get).unwrap_or(1) > 0;
        let session = if in_span {
            ctx.event_scope(event).and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<SessionId>().copied())
            })
        } else {
            None
        };
        with_encoders(|enc| {
            let lookup = if self.callsites {
                enc.cache.tracing(meta)
            } else {
                Lookup::Full
            };
            if let Lookup::Site(site) = lookup {
                enc.site.clear();
                event.record(&mut SiteVisitor { enc: &mut enc.site });
                if let Some(payload) = enc.site.finish(site) {
                    self.rec.callsite_payload(level, session, payload);
                }
                return;
            }
            enc.full.clear();
            event.record(&mut EventVisitor { enc: &mut enc.full });
            if let Some(payload) = enc.full.finish(meta.target()) {
                self.rec.log_payload(level, session, payload);
            }
            if lookup == Lookup::New {
                enc.cache.learn_tracing(meta, enc.full.literal_message());
            }
        });
    }
}

/// A [`log::Log`] recording every `log` record into the ring, then handing it to the
/// daemon's own logger (which keeps its own level filter).
///
/// ```
/// use flightrec_linux::{FlightLogger, FlightRecorder, RecorderOptions};
/// let rec = FlightRecorder::new(RecorderOptions::default())?;
/// let logger = FlightLogger::new(rec.clone(), None);
/// // In a daemon: `logger.install()?` (sets the global logger and `log::max_level` to trace).
/// use log::Log;
/// logger.log(&log::Record::builder().level(log::Level::Debug).target("gw")
///     .args(format_args!("hello {}", 42)).build());
/// assert_eq!(rec.stats().stored, 1);
/// # Ok::<(), flightrec_linux::ConfigError>(())
/// ```
///
/// `log` records carry no span, so they have no session. (A daemon that bridges `log` into
/// `tracing` with `tracing-log` gets them through [`FlightLayer`] instead.)
pub struct FlightLogger {
    rec: Arc<FlightRecorder>,
    inner: Option<Box<dyn log::Log>>,
    callsites: bool,
}

impl fmt::Debug for FlightLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightLogger")
            .field("inner", &self.inner.is_some())
            .finish()
    }
}

impl FlightLogger {
    /// Records into `rec`, then passes each record to `inner` if it wants it.
    pub fn new(rec: Arc<FlightRecorder>, inner: Option<Box<dyn log::Log>>) -> Self {
        FlightLogger {
            rec,
            inner,
            callsites: true,
        }
    }

    /// Whether records take the callsite form (the default, for records whose file name is
    /// static) or the full form; see [`FlightLayer::with_callsites`].
    pub fn with_callsites(mut self, on: bool) -> Self {
        self.callsites = on;
        self
    }

    /// Installs this as the global `log` logger and lets every level through to it.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(log::LevelFilter::Trace);
        Ok(())
    }
}

fn level_of_log(l: log::Level) -> Level {
    match l {
        log::Level::Trace => Level::Trace,
        log::Level::Debug => Level::Debug,
        log::Level::Info => Level::Info,
        log::Level::Warn => Level::Warn,
        log::Level::Error => Level::Error,
    }
}

impl log::Log for FlightLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = level_of_log(record.level());
        match record.file_static().filter(|_| self.callsites) {
            Some(file) => self.rec.log_site(
                level,
                record.target(),
                file,
                record.line().unwrap_or(0),
                record.args(),
            ),
            None => self
                .rec
                .log_fmt(level, None, record.target(), record.args()),
        }
        if let Some(inner) = &self.inner {
            if inner.enabled(record.metadata()) {
                inner.log(record);
            }
        }
    }

    fn flush(&self) {
        if let Some(inner) = &self.inner {
            inner.flush();
        }
    }
}
