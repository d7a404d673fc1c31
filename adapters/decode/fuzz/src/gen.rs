//! Dumps built from `arbitrary` input by the real writer: records of every kind (strings full
//! of controls, bidi, Unicode spaces and format characters, some past their bounds) pushed
//! into core's `Ring`, dumped by `flightrec_core::write_dump`. Beside the bytes, the model:
//! what the decoder must report for them.

use arbitrary::{Arbitrary, Result, Unstructured};
use flightrec_core::encode::Encode;
use flightrec_core::event::{
    Addr, AuthFailure, AuthSuccess, Connect, Custom, Field, Fields, Log, Logout, Peer,
    SessionForbidden, Value,
};
use flightrec_core::{
    write_dump, Build, ClockInfo, DumpHeader, Kind, Level, Reason, RecordHead, RecordMeta, Ring,
    SessionId, TimeBase,
};

/// Characters a peer may send to confuse a reader: C0/C1 controls, line and paragraph
/// separators, bidi controls, Unicode spaces, invisible format characters (Cf), tags,
/// the cut marker's ellipsis, delimiters and escapes.
const HOSTILE: &[char] = &[
    '\n',
    '\r',
    '\t',
    '\u{1b}',
    '\u{7f}',
    '\u{85}',
    '\u{9b}',
    '\u{a0}',
    '\u{ad}',
    '\u{61c}',
    '\u{1680}',
    '\u{180e}',
    '\u{2000}',
    '\u{2007}',
    '\u{200a}',
    '\u{200b}',
    '\u{200d}',
    '\u{200e}',
    '\u{2028}',
    '\u{2029}',
    '\u{202a}',
    '\u{202e}',
    '\u{202f}',
    '\u{205f}',
    '\u{2060}',
    '\u{2066}',
    '\u{2069}',
    '\u{3000}',
    '\u{feff}',
    '\u{fff9}',
    '\u{e0001}',
    '\u{e0041}',
    '\u{e007f}',
    '\u{10ffff}',
    '\u{fffd}',
    '…',
    '"',
    '\\',
    '|',
    ',',
    ';',
    '%',
    '@',
    '/',
    ' ',
    'é',
];

/// A string a peer controls: mostly hostile characters, sometimes longer than any bound.
#[derive(Clone, Debug, Default)]
pub struct Hostile(pub String);

impl<'a> Arbitrary<'a> for Hostile {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let max = if u.ratio(1, 16)? { 300 } else { 12 };
        let len = u.int_in_range(0..=max)?;
        let mut s = String::with_capacity(len);
        for _ in 0..len {
            let b: u8 = u.arbitrary()?;
            s.push(match b {
                0..=127 => char::from(b),
                128..=223 => HOSTILE[usize::from(b - 128) % HOSTILE.len()],
                _ => u.arbitrary()?,
            });
        }
        Ok(Hostile(s))
    }
}

/// A field value.
#[derive(Arbitrary, Clone, Debug)]
pub enum FieldValue {
    /// Bool.
    Bool(bool),
    /// Signed.
    I64(i64),
    /// Unsigned.
    U64(u64),
    /// Float (NaN and infinities included).
    F64(f64),
    /// Text.
    Str(Hostile),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// A peer address.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct PeerSpec {
    v6: bool,
    addr: [u8; 16],
    port: u16,
}

impl PeerSpec {
    fn peer(&self) -> Peer {
        let addr = if self.v6 {
            Addr::V6(self.addr)
        } else {
            let [a, b, c, d, ..] = self.addr;
            Addr::V4([a, b, c, d])
        };
        Peer {
            addr,
            port: self.port,
        }
    }
}

/// One event of each kind core knows, and payloads of kinds it does not.
#[derive(Arbitrary, Clone, Debug)]
pub enum Event {
    /// A log line with fields (more than the 16 kept, sometimes).
    Log {
        /// Level code (0-4).
        level: u8,
        /// Target.
        target: Hostile,
        /// Message.
        message: Hostile,
        /// Fields.
        fields: Vec<(Hostile, FieldValue)>,
    },
    /// Opaque bytes (defmt frames).
    Frame(Vec<u8>),
    /// Failed login.
    AuthFailure {
        /// User.
        user: Hostile,
        /// Host.
        host: Hostile,
        /// Peer.
        peer: Option<PeerSpec>,
        /// Mechanism.
        mechanism: Hostile,
        /// Reason.
        reason: Hostile,
    },
    /// Login.
    AuthSuccess {
        /// User.
        user: Hostile,
        /// Host.
        host: Hostile,
        /// Peer.
        peer: Option<PeerSpec>,
        /// Mechanism.
        mechanism: Hostile,
    },
    /// Logout.
    Logout {
        /// User.
        user: Hostile,
        /// Host.
        host: Hostile,
        /// Peer.
        peer: Option<PeerSpec>,
    },
    /// Refused session.
    SessionForbidden {
        /// User.
        user: Hostile,
        /// Host.
        host: Hostile,
        /// Resource.
        resource: Hostile,
    },
    /// Connection.
    Connect {
        /// Protocol.
        protocol: Hostile,
        /// Peer.
        peer: Option<PeerSpec>,
    },
    /// Application event.
    Custom {
        /// Level code.
        level: u8,
        /// Name.
        name: Hostile,
        /// Attributes.
        attributes: Vec<(Hostile, FieldValue)>,
    },
    /// A kind this version does not know (from a newer writer): any bytes.
    Unknown {
        /// Kind, taken into 9..=255.
        kind: u8,
        /// Payload.
        bytes: Vec<u8>,
    },
}

fn level(code: u8) -> Level {
    Level::from_u8(code % 5).unwrap_or(Level::Info)
}

fn value(v: &FieldValue) -> Value<'_> {
    match v {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I64(i) => Value::I64(*i),
        FieldValue::U64(u) => Value::U64(*u),
        FieldValue::F64(f) => Value::F64(*f),
        FieldValue::Str(s) => Value::Str(&s.0),
        FieldValue::Bytes(b) => Value::Bytes(b),
    }
}

fn fields(f: &[(Hostile, FieldValue)]) -> Vec<Field<'_>> {
    f.iter()
        .map(|(n, v)| Field {
            name: &n.0,
            value: value(v),
        })
        .collect()
}

fn ser<T: Encode + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // The writer's encoding: core's encoder, as the ring writes it.
    out.clear();
    out.resize(v.encoded_len(), 0);
    let len = flightrec_core::encode::to_slice(v, out).unwrap_or(0);
    out.truncate(len);
}

impl Event {
    /// Kind, level and payload bytes (the writer's encoding, postcard's).
    pub fn encode(&self, out: &mut Vec<u8>) -> (Kind, Level) {
        let peer = |p: &Option<PeerSpec>| p.as_ref().map(PeerSpec::peer);
        match self {
            Event::Log {
                level: l,
                target,
                message,
                fields: f,
            } => {
                let f = fields(f);
                let e = Log {
                    level: level(*l),
                    target: &target.0,
                    message: &message.0,
                    fields: Fields::Slice(&f),
                };
                ser(&e, out);
                (Kind::LOG, e.level)
            }
            Event::Frame(b) => {
                out.clear();
                out.extend_from_slice(b);
                (Kind::FRAME, Level::Debug)
            }
            Event::AuthFailure {
                user,
                host,
                peer: p,
                mechanism,
                reason,
            } => {
                let e = AuthFailure {
                    user: &user.0,
                    host: &host.0,
                    peer: peer(p),
                    mechanism: &mechanism.0,
                    reason: &reason.0,
                };
                ser(&e, out);
                (Kind::AUTH_FAILURE, Level::Warn)
            }
            Event::AuthSuccess {
                user,
                host,
                peer: p,
                mechanism,
            } => {
                let e = AuthSuccess {
                    user: &user.0,
                    host: &host.0,
                    peer: peer(p),
                    mechanism: &mechanism.0,
                };
                ser(&e, out);
                (Kind::AUTH_SUCCESS, Level::Info)
            }
            Event::Logout {
                user,
                host,
                peer: p,
            } => {
                let e = Logout {
                    user: &user.0,
                    host: &host.0,
                    peer: peer(p),
                };
                ser(&e, out);
                (Kind::LOGOUT, Level::Info)
            }
            Event::SessionForbidden {
                user,
                host,
                resource,
            } => {
                let e = SessionForbidden {
                    user: &user.0,
                    host: &host.0,
                    resource: &resource.0,
                };
                ser(&e, out);
                (Kind::SESSION_FORBIDDEN, Level::Warn)
            }
            Event::Connect { protocol, peer: p } => {
                let e = Connect {
                    protocol: &protocol.0,
                    peer: peer(p),
                };
                ser(&e, out);
                (Kind::CONNECT, Level::Info)
            }
            Event::Custom {
                level: l,
                name,
                attributes,
            } => {
                let f = fields(attributes);
                let e = Custom {
                    level: level(*l),
                    name: &name.0,
                    attributes: Fields::Slice(&f),
                };
                ser(&e, out);
                (Kind::CUSTOM, e.level)
            }
            Event::Unknown { kind, bytes } => {
                out.clear();
                out.extend_from_slice(bytes);
                (
                    // Past the callsite form (kind 8, read with the dump's table).
                    Kind(kind.saturating_add(9).max(9)),
                    level(bytes.len() as u8),
                )
            }
        }
    }
}

/// What a dump header says beyond the ring's positions.
#[derive(Arbitrary, Clone, Debug, Default)]
pub struct HeaderSpec {
    reason: (u8, u8),
    detail: Hostile,
    trigger_seq: Option<u8>,
    clock: (u8, u8),
    lost: u64,
    suppressed: u32,
    /// A session scope (sessions are drawn from 0..4, so scopes hit and miss).
    scope: Option<u8>,
    name: Hostile,
    version: Hostile,
    id: Vec<u8>,
}

/// One step of a writer's life.
#[derive(Arbitrary, Clone, Debug)]
pub enum Step {
    /// Records an event.
    Push {
        /// Ticks since the previous record (times never go back).
        dt: u16,
        /// Session, drawn from a few so scopes have something to select.
        session: Option<u8>,
        /// The event.
        event: Event,
    },
    /// Dumps the ring.
    Dump(HeaderSpec),
    /// Moves on to the other writer (a second device: dumps of both may be spliced).
    Switch,
}

/// A writer's scenario: ring size and steps.
#[derive(Arbitrary, Clone, Debug)]
pub struct Scenario {
    /// Ring size selector.
    pub ring: u8,
    /// Steps (the first few dozen are used).
    pub steps: Vec<Step>,
}

/// A record as the decoder must report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRecord {
    /// Its head.
    pub head: RecordHead,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A dump written, with what the decoder must report for it.
#[derive(Clone, Debug)]
pub struct ModelDump {
    /// The bytes `write_dump` wrote.
    pub bytes: Vec<u8>,
    /// The header the decoder must show.
    pub header: flightrec_decode::Header,
    /// The records it holds, in order.
    pub records: Vec<ModelRecord>,
}

/// Steps used at most, dumps written at most: enough for every structure, small enough to
/// keep an execution cheap.
pub const MAX_STEPS: usize = 48;
/// Dumps written at most.
pub const MAX_DUMPS: usize = 4;

struct Writer<const N: usize> {
    ring: Ring<N>,
    /// Records pushed and not yet evicted: (seq, model).
    held: std::collections::VecDeque<(u64, ModelRecord)>,
    time: u64,
    index: u32,
}

impl<const N: usize> Writer<N> {
    fn new() -> Self {
        Writer {
            ring: Ring::new(),
            held: Default::default(),
            time: 0,
            index: 0,
        }
    }
}

/// Runs the scenario; returns the dumps written, in order.
pub fn build(s: &Scenario) -> Vec<ModelDump> {
    match s.ring % 3 {
        0 => run::<256>(s),
        1 => run::<1024>(s),
        _ => run::<4096>(s),
    }
}

fn run<const N: usize>(s: &Scenario) -> Vec<ModelDump> {
    let mut writers = [Writer::<N>::new(), Writer::<N>::new()];
    let mut w = 0;
    let mut dumps = Vec::new();
    let mut payload = Vec::new();
    for step in s.steps.iter().take(MAX_STEPS) {
        let writer = &mut writers[w];
        match step {
            Step::Switch => w = 1 - w,
            Step::Push { dt, session, event } => {
                let (kind, level) = event.encode(&mut payload);
                writer.time += u64::from(*dt);
                let meta = RecordMeta {
                    time: writer.time,
                    level,
                    kind,
                    session: session.map(|s| SessionId(u32::from(s % 4))),
                };
                if let Ok(seq) = writer.ring.push(&meta, &payload) {
                    let head = RecordHead {
                        seq,
                        time: meta.time,
                        kind,
                        level: level as u8,
                        session: meta.session,
                    };
                    writer.held.push_back((
                        seq,
                        ModelRecord {
                            head,
                            payload: payload.clone(),
                        },
                    ));
                }
                let first = writer.ring.stats().first_seq;
                while writer.held.front().is_some_and(|(seq, _)| *seq < first) {
                    writer.held.pop_front();
                }
            }
            Step::Dump(spec) if dumps.len() < MAX_DUMPS => {
                dumps.push(dump(writer, spec));
                writer.index += 1;
            }
            Step::Dump(_) => {}
        }
    }
    // A scenario that never dumped still dumps once: a file with no dump tells little.
    if dumps.is_empty() {
        dumps.push(dump(&writers[w], &HeaderSpec::default()));
    }
    dumps
}

fn dump<const N: usize>(w: &Writer<N>, spec: &HeaderSpec) -> ModelDump {
    let stats = w.ring.stats();
    let (code, base) = spec.clock;
    let clock = ClockInfo {
        rate_hz: [0, 1, 1000, 32_768, 1_000_000_000][usize::from(code % 5)],
        base: match base % 4 {
            0 => TimeBase::Boot,
            1 => TimeBase::Unix,
            _ => TimeBase::Unknown(base),
        },
    };
    let scope = spec.scope.map(|s| SessionId(u32::from(s % 4)));
    let header = DumpHeader {
        reason: Reason::from_wire(spec.reason.0 % 10, u32::from(spec.reason.1)),
        detail: &spec.detail.0,
        trigger_time: w.time,
        trigger_seq: spec
            .trigger_seq
            .map(|d| stats.next_seq.saturating_sub(u64::from(d))),
        clock,
        first_seq: stats.first_seq,
        next_seq: stats.next_seq,
        lost: spec.lost,
        suppressed: spec.suppressed,
        scope,
        index: w.index,
        capacity: N as u32,
        build: Build {
            name: &spec.name.0,
            version: &spec.version.0,
            id: &spec.id,
        },
    };
    let mut bytes = Vec::new();
    let mut scratch = vec![0u8; N + 8192];
    let written = write_dump(&mut bytes, &w.ring, header, &mut scratch);
    assert!(written.is_ok(), "the writer failed: {written:?}");
    let records = w
        .held
        .iter()
        .filter(|(_, r)| match (scope, r.head.session) {
            (Some(scope), Some(s)) => s == scope,
            _ => true,
        })
        .map(|(_, r)| r.clone())
        .collect();
    ModelDump {
        bytes,
        header: flightrec_decode::Header::from(&header),
        records,
    }
}
