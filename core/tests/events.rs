//! Events through the recorder and the ring and back through `event::decode`: every type
//! round-trips, long strings are cut visibly and exactly, extra fields are counted, and no
//! bytes make the decoder panic.

use flightrec_core::event::{
    self, Addr, AuthFailure, AuthSuccess, Connect, Custom, Decoded, Event, Field, Fields, Log,
    Logout, Peer, SessionForbidden, Value, FIELDS_MAX, HOST_MAX, MESSAGE_MAX, NAME_MAX, TARGET_MAX,
    TEXT_MAX, USER_MAX, VALUE_MAX,
};
use flightrec_core::{
    Kind, Level, Read, RecordMeta, Recorder, RecorderConfig, Ring, SessionId, Source, TriggerConfig,
};
use proptest::prelude::*;

/// A `RecorderSettings` type `$name` for the configuration `$config`.
macro_rules! settings {
    ($name:ident = $config:expr) => {
        struct $name;
        impl flightrec_core::RecorderSettings for $name {
            const CONFIG: flightrec_core::RecorderConfig = $config;
        }
    };
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 6 } else { 512 },
        failure_persistence: None,
        // ChaCha (the default) is several times slower under Miri.
        rng_algorithm: if cfg!(miri) {
            proptest::test_runner::RngAlgorithm::XorShift
        } else {
            proptest::test_runner::RngAlgorithm::default()
        },
        ..ProptestConfig::default()
    }
}

const QUIET: RecorderConfig = RecorderConfig {
    trigger: TriggerConfig {
        failed_login: false,
        ..TriggerConfig::DEFAULT
    },
    ..RecorderConfig::DEFAULT
};

/// The format's reference for payloads, independent of core's encoder: postcard's encoding
/// (`WIRE-FORMAT.md` section 1) of each payload's shape as serde types, with the cut rule of
/// section 6 applied here.
mod reference {
    use super::*;
    use serde::Serialize;

    /// `s` kept to at most `max` bytes, cut at a character boundary and marked `…[+N]`.
    pub fn cut(s: &str, max: usize) -> String {
        if s.len() <= max {
            return s.to_owned();
        }
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…[+{}]", &s[..end], s.len() - end)
    }

    /// A field's value, in the order of its variants on the wire.
    #[derive(Serialize)]
    enum V {
        Bool(bool),
        I64(i64),
        U64(u64),
        F64(f64),
        Str(String),
        Bytes(Vec<u8>),
    }

    fn value(v: &Value<'_>) -> V {
        match *v {
            Value::Bool(v) => V::Bool(v),
            Value::I64(v) => V::I64(v),
            Value::U64(v) => V::U64(v),
            Value::F64(v) => V::F64(v),
            Value::Str(s) => V::Str(cut(s, VALUE_MAX)),
            // Bytes are cut without a marker.
            Value::Bytes(b) => V::Bytes(b[..b.len().min(VALUE_MAX)].to_vec()),
        }
    }

    /// The first `FIELDS_MAX` fields, then `…dropped` with the count of the others.
    fn fields(f: &Fields<'_>) -> Vec<(String, V)> {
        let Fields::Slice(f) = *f else {
            panic!("the reference encodes given fields");
        };
        let mut out: Vec<(String, V)> = f
            .iter()
            .take(FIELDS_MAX)
            .map(|f| (cut(f.name, NAME_MAX), value(&f.value)))
            .collect();
        if f.len() > FIELDS_MAX {
            out.push(("…dropped".into(), V::U64((f.len() - FIELDS_MAX) as u64)));
        }
        out
    }

    fn bytes(v: &impl Serialize) -> Vec<u8> {
        postcard::to_allocvec(v).unwrap()
    }

    /// A payload's reference bytes.
    pub trait Reference {
        fn reference(&self) -> Vec<u8>;
    }

    impl Reference for Log<'_> {
        fn reference(&self) -> Vec<u8> {
            let (t, m) = (cut(self.target, TARGET_MAX), cut(self.message, MESSAGE_MAX));
            bytes(&(t, m, fields(&self.fields)))
        }
    }

    impl Reference for Custom<'_> {
        fn reference(&self) -> Vec<u8> {
            bytes(&(cut(self.name, NAME_MAX), fields(&self.attributes)))
        }
    }

    impl Reference for AuthFailure<'_> {
        fn reference(&self) -> Vec<u8> {
            let (u, h) = (cut(self.user, USER_MAX), cut(self.host, HOST_MAX));
            let (m, r) = (cut(self.mechanism, NAME_MAX), cut(self.reason, TEXT_MAX));
            bytes(&(u, h, self.peer, m, r))
        }
    }

    impl Reference for AuthSuccess<'_> {
        fn reference(&self) -> Vec<u8> {
            let (u, h) = (cut(self.user, USER_MAX), cut(self.host, HOST_MAX));
            bytes(&(u, h, self.peer, cut(self.mechanism, NAME_MAX)))
        }
    }

    impl Reference for Logout<'_> {
        fn reference(&self) -> Vec<u8> {
            let (u, h) = (cut(self.user, USER_MAX), cut(self.host, HOST_MAX));
            bytes(&(u, h, self.peer))
        }
    }

    impl Reference for SessionForbidden<'_> {
        fn reference(&self) -> Vec<u8> {
            let (u, h) = (cut(self.user, USER_MAX), cut(self.host, HOST_MAX));
            bytes(&(u, h, cut(self.resource, TEXT_MAX)))
        }
    }

    impl Reference for Connect<'_> {
        fn reference(&self) -> Vec<u8> {
            bytes(&(cut(self.protocol, NAME_MAX), self.peer))
        }
    }
}

use reference::Reference;

/// Records `event` in a fresh recorder and in a fresh ring, reads both back, checks the
/// record's meta and that the payload is the reference's bytes for the event, and returns
/// the payload.
fn through_both<E: Event + Reference>(event: &E) -> Vec<u8> {
    let session = Some(SessionId(77));
    settings!(Settings1 = QUIET);
    let rec: Recorder<2048, Settings1> = Recorder::new();
    rec.record(1234, session, event).expect("recorded");
    let mut cursor = Source::oldest(&rec).unwrap();
    let mut buf = vec![0u8; 2048];
    let Ok(Read::Record { seq: 0, meta, len }) = Source::read(&rec, &mut cursor, &mut buf) else {
        panic!("one record expected");
    };
    let want = RecordMeta {
        time: 1234,
        level: event.level(),
        kind: E::KIND,
        session,
    };
    assert_eq!(meta, want);
    let from_recorder = buf[..len].to_vec();

    let mut ring: Ring<2048> = Ring::new();
    ring.push_event(&want, event).unwrap();
    let r = ring.iter().next().unwrap();
    assert_eq!(r.meta, want);
    let mut from_ring = vec![0u8; r.len()];
    r.copy_to(&mut from_ring).unwrap();
    assert_eq!(from_ring, from_recorder);
    assert_eq!(from_ring, event.reference());
    from_ring
}

/// Decoded fields as (name, value) text, comparable with [`owned`] of the originals.
fn fields_of(f: &Fields<'_>) -> Vec<(String, String)> {
    f.iter()
        .map(|f| f.expect("well-formed field"))
        .map(|f| (f.name.to_owned(), format!("{:?}", f.value)))
        .collect()
}

fn owned(fields: &[Field<'_>]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| (f.name.to_owned(), format!("{:?}", f.value)))
        .collect()
}

const V4: Peer = Peer {
    addr: Addr::V4([192, 0, 2, 1]),
    port: 21,
};
const V6: Peer = Peer {
    addr: Addr::V6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    port: 5222,
};

#[test]
fn security_events_round_trip() {
    for peer in [None, Some(V4), Some(V6)] {
        let e = AuthFailure {
            user: "ädmin",
            host: "ftp.example",
            peer,
            mechanism: "PLAIN",
            reason: "bad password",
        };
        let p = through_both(&e);
        assert_eq!(
            event::decode(Kind::AUTH_FAILURE, Level::Warn, &p),
            Ok(Decoded::AuthFailure(e))
        );
        assert_eq!(e.peer().copied(), peer.map(|p| p.addr));
        assert_eq!(e.level(), Level::Warn);

        let e = AuthSuccess {
            user: "u",
            host: "",
            peer,
            mechanism: "SCRAM-SHA-1",
        };
        let p = through_both(&e);
        assert_eq!(
            event::decode(Kind::AUTH_SUCCESS, Level::Info, &p),
            Ok(Decoded::AuthSuccess(e))
        );
        assert_eq!(e.peer().copied(), peer.map(|p| p.addr));

        let e = Logout {
            user: "u",
            host: "h",
            peer,
        };
        let p = through_both(&e);
        assert_eq!(
            event::decode(Kind::LOGOUT, Level::Info, &p),
            Ok(Decoded::Logout(e))
        );

        let e = Connect {
            protocol: "xmpp-c2s",
            peer,
        };
        let p = through_both(&e);
        assert_eq!(
            event::decode(Kind::CONNECT, Level::Info, &p),
            Ok(Decoded::Connect(e))
        );
        assert_eq!(e.peer().copied(), peer.map(|p| p.addr));
    }
    let e = SessionForbidden {
        user: "mallory",
        host: "example.org",
        resource: "res\r\nource",
    };
    let p = through_both(&e);
    assert_eq!(
        event::decode(Kind::SESSION_FORBIDDEN, Level::Warn, &p),
        Ok(Decoded::SessionForbidden(e))
    );
    assert_eq!(e.peer(), None);
}

fn all_values() -> Vec<Field<'static>> {
    vec![
        Field {
            name: "b",
            value: Value::Bool(true),
        },
        Field {
            name: "i",
            value: Value::I64(i64::MIN),
        },
        Field {
            name: "u",
            value: Value::U64(u64::MAX),
        },
        Field {
            name: "f",
            value: Value::F64(-1.5e300),
        },
        Field {
            name: "s",
            value: Value::Str("ßtring"),
        },
        Field {
            name: "y",
            value: Value::Bytes(&[0, 1, 0xff]),
        },
    ]
}

#[test]
fn log_custom_and_frame_round_trip() {
    let fields = all_values();
    for level in Level::ALL {
        let log = Log {
            level,
            target: "net::ftp",
            message: "login failed",
            fields: Fields::Slice(&fields),
        };
        let p = through_both(&log);
        let Ok(Decoded::Log(d)) = event::decode(Kind::LOG, level, &p) else {
            panic!("a log");
        };
        assert_eq!(
            (d.level, d.target, d.message),
            (level, "net::ftp", "login failed")
        );
        assert_eq!(fields_of(&d.fields), owned(&fields));
    }

    let custom = Custom {
        level: Level::Error,
        name: "tamper",
        attributes: Fields::Slice(&fields),
    };
    assert_eq!(custom.name(), Some("tamper"));
    let p = through_both(&custom);
    let Ok(Decoded::Custom(d)) = event::decode(Kind::CUSTOM, Level::Error, &p) else {
        panic!("a custom event");
    };
    assert_eq!((d.level, d.name), (Level::Error, "tamper"));
    assert_eq!(fields_of(&d.attributes), owned(&fields));

    // No fields at all.
    let p = through_both(&Log {
        level: Level::Info,
        target: "",
        message: "",
        fields: Fields::NONE,
    });
    assert_eq!(p, [0, 0, 0]);

    // Frames are opaque bytes.
    settings!(Settings2 = QUIET);
    let rec: Recorder<256, Settings2> = Recorder::new();
    rec.frame(5, Level::Debug, None, &[9, 8, 7]).unwrap();
    let mut c = Source::oldest(&rec).unwrap();
    let mut buf = [0u8; 16];
    let Ok(Read::Record { meta, len, .. }) = Source::read(&rec, &mut c, &mut buf) else {
        panic!("a record");
    };
    assert_eq!(meta.kind, Kind::FRAME);
    assert_eq!(
        event::decode(meta.kind, meta.level, &buf[..len]),
        Ok(Decoded::Frame(&[9, 8, 7]))
    );
}

#[test]
fn unknown_kinds_and_trailing_bytes() {
    for k in 8..=255u8 {
        assert_eq!(
            event::decode(Kind(k), Level::Info, &[1, 2, 3]),
            Ok(Decoded::Unknown {
                kind: Kind(k),
                len: 3
            })
        );
    }
    // A newer writer may append fields: bytes after the known ones are ignored.
    let e = Connect {
        protocol: "ftp",
        peer: Some(V4),
    };
    let mut p = ours(&e);
    p.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(
        event::decode(Kind::CONNECT, Level::Info, &p),
        Ok(Decoded::Connect(e))
    );
}

#[test]
fn too_many_fields_are_counted() {
    let names: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
    for n in [0, 1, FIELDS_MAX - 1, FIELDS_MAX, FIELDS_MAX + 1, 40] {
        let fields: Vec<Field<'_>> = names[..n]
            .iter()
            .enumerate()
            .map(|(i, name)| Field {
                name,
                value: Value::U64(i as u64),
            })
            .collect();
        let log = Log {
            level: Level::Info,
            target: "t",
            message: "m",
            fields: Fields::Slice(&fields),
        };
        let p = through_both(&log);
        let Ok(Decoded::Log(d)) = event::decode(Kind::LOG, Level::Info, &p) else {
            panic!("a log");
        };
        let got = fields_of(&d.fields);
        let kept = n.min(FIELDS_MAX);
        assert_eq!(&got[..kept], &owned(&fields)[..kept]);
        if n > FIELDS_MAX {
            assert_eq!(got.len(), FIELDS_MAX + 1);
            assert_eq!(
                got[FIELDS_MAX],
                owned(&[Field {
                    name: "…dropped",
                    value: Value::U64((n - FIELDS_MAX) as u64)
                }])[0]
            );
        } else {
            assert_eq!(got.len(), n);
        }
        // The same for a custom event's attributes.
        let p = through_both(&Custom {
            level: Level::Info,
            name: "k",
            attributes: Fields::Slice(&fields),
        });
        let Ok(Decoded::Custom(d)) = event::decode(Kind::CUSTOM, Level::Info, &p) else {
            panic!("a custom event");
        };
        assert_eq!(
            fields_of(&d.attributes).len(),
            kept + usize::from(n > FIELDS_MAX)
        );
    }
}

/// A decoded bounded string is the original, or the longest char-boundary prefix within
/// `max` bytes followed by `…[+N]`, N the exact number of bytes cut.
fn check_bounded(original: &str, decoded: &str, max: usize) -> Result<(), TestCaseError> {
    if original.len() <= max {
        prop_assert_eq!(decoded, original);
        return Ok(());
    }
    let (prefix, n) = decoded
        .rsplit_once("…[+")
        .ok_or_else(|| TestCaseError::fail(format!("no marker in {decoded:?}")))?;
    let n: usize = n
        .strip_suffix(']')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| TestCaseError::fail(format!("bad marker in {decoded:?}")))?;
    prop_assert!(
        prefix.len() <= max,
        "{} bytes kept of {}",
        prefix.len(),
        max
    );
    prop_assert!(original.starts_with(prefix));
    prop_assert_eq!(n, original.len() - prefix.len());
    // Nothing more could have been kept: the next char would cross the bound.
    let next = original[prefix.len()..]
        .chars()
        .next()
        .map_or(0, char::len_utf8);
    prop_assert!(prefix.len() + next > max, "cut too short: {:?}", prefix);
    Ok(())
}

/// Strings from chars of 1 to 4 bytes.
fn chars(set: &'static [char], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(set), 0..max).prop_map(String::from_iter)
}

/// Strings around every bound, mostly multi-byte. (No regex strategies: building Unicode
/// classes is very slow under Miri.)
fn text() -> impl Strategy<Value = String> {
    const MIXED: &[char] = &[
        'a', 'z', 'é', 'ß', '€', '…', '[', '+', ']', '😀', '\0', '\n',
    ];
    prop_oneof![
        chars(MIXED, 300),
        chars(&['a', '\u{1F600}'], 140),
        chars(&['€', 'x'], 200),
        (0usize..300).prop_map(|n| "x".repeat(n)),
        any::<Vec<char>>().prop_map(String::from_iter),
    ]
}

/// Core's encoder's bytes for `value` (what the ring stores).
fn ours<T: flightrec_core::encode::Encode>(value: &T) -> Vec<u8> {
    let mut out = vec![0u8; value.encoded_len()];
    let len = flightrec_core::encode::to_slice(value, &mut out).expect("sized by encoded_len");
    assert_eq!(len, out.len(), "encoded_len and encode agree");
    out
}

/// The reference's bytes for `value`, after checking that core's encoder writes the same.
fn same<T: flightrec_core::encode::Encode + Reference>(value: &T) -> Vec<u8> {
    let p = value.reference();
    assert_eq!(ours(value), p, "core's encoder and the reference disagree");
    p
}

/// A field value that owns its text or bytes (a `Value` borrows them).
#[derive(Clone, Debug)]
enum Owned {
    Plain(Value<'static>),
    Str(String),
    Bytes(Vec<u8>),
}

impl Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Owned::Plain(v) => *v,
            Owned::Str(s) => Value::Str(s),
            Owned::Bytes(b) => Value::Bytes(b),
        }
    }
}

fn any_value() -> impl Strategy<Value = Owned> {
    prop_oneof![
        any::<bool>().prop_map(|v| Owned::Plain(Value::Bool(v))),
        any::<i64>().prop_map(|v| Owned::Plain(Value::I64(v))),
        any::<u64>().prop_map(|v| Owned::Plain(Value::U64(v))),
        any::<u64>().prop_map(|b| Owned::Plain(Value::F64(f64::from_bits(b)))),
        text().prop_map(Owned::Str),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Owned::Bytes),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Core's encoder is checked against the format's reference (postcard), on any fields
    /// (every value kind, strings to be cut, more fields than kept) and peers.
    #[test]
    fn encoder_writes_the_references_bytes(
        target in text(), message in text(),
        fields in prop::collection::vec((text(), any_value()), 0..20),
        v6 in any::<[u8; 16]>(), v4 in any::<[u8; 4]>(), port in any::<u16>(), which in 0u8..3,
    ) {
        let fields: Vec<Field<'_>> =
            fields.iter().map(|(n, v)| Field { name: n.as_str(), value: v.value() }).collect();
        same(&Log { level: Level::Debug, target: &target, message: &message, fields: Fields::Slice(&fields) });
        same(&Custom { level: Level::Info, name: &target, attributes: Fields::Slice(&fields) });
        let peer = match which {
            0 => None,
            1 => Some(Peer { addr: Addr::V4(v4), port }),
            _ => Some(Peer { addr: Addr::V6(v6), port }),
        };
        same(&AuthFailure { user: &target, host: &message, peer, mechanism: &target, reason: &message });
        same(&AuthSuccess { user: &message, host: &target, peer, mechanism: &message });
        same(&Logout { user: &target, host: &target, peer });
        same(&Connect { protocol: &message, peer });
    }

    #[test]
    fn long_strings_are_cut_visibly(
        a in text(), b in text(), c in text(), d in text(), e in text(),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let ev = AuthFailure { user: &a, host: &b, peer: None, mechanism: &c, reason: &d };
        let p = same(&ev);
        let Ok(Decoded::AuthFailure(x)) = event::decode(Kind::AUTH_FAILURE, Level::Warn, &p) else {
            return Err(TestCaseError::fail("not an auth failure"));
        };
        check_bounded(&a, x.user, USER_MAX)?;
        check_bounded(&b, x.host, HOST_MAX)?;
        check_bounded(&c, x.mechanism, NAME_MAX)?;
        check_bounded(&d, x.reason, TEXT_MAX)?;

        let ev = SessionForbidden { user: &a, host: &b, resource: &e };
        let p = same(&ev);
        let Ok(Decoded::SessionForbidden(x)) = event::decode(Kind::SESSION_FORBIDDEN, Level::Warn, &p) else {
            return Err(TestCaseError::fail("not a forbidden session"));
        };
        check_bounded(&e, x.resource, TEXT_MAX)?;

        let ev = Connect { protocol: &c, peer: None };
        let p = same(&ev);
        let Ok(Decoded::Connect(x)) = event::decode(Kind::CONNECT, Level::Info, &p) else {
            return Err(TestCaseError::fail("not a connect"));
        };
        check_bounded(&c, x.protocol, NAME_MAX)?;

        let fields = [
            Field { name: &a, value: Value::Str(&e) },
            Field { name: "bytes", value: Value::Bytes(&bytes) },
        ];
        let log = Log { level: Level::Info, target: &b, message: &d, fields: Fields::Slice(&fields) };
        let p = same(&log);
        let Ok(Decoded::Log(x)) = event::decode(Kind::LOG, Level::Info, &p) else {
            return Err(TestCaseError::fail("not a log"));
        };
        check_bounded(&b, x.target, TARGET_MAX)?;
        check_bounded(&d, x.message, MESSAGE_MAX)?;
        let got: Vec<_> = x.fields.iter().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got.len(), 2);
        check_bounded(&a, got[0].name, NAME_MAX)?;
        let Value::Str(v) = got[0].value else { return Err(TestCaseError::fail("not a str")) };
        check_bounded(&e, v, VALUE_MAX)?;
        // Bytes are cut without a marker.
        prop_assert_eq!(got[1].value, Value::Bytes(&bytes[..bytes.len().min(VALUE_MAX)]));

        let long = a.repeat(3);
        let custom = Custom { level: Level::Info, name: &long, attributes: Fields::NONE };
        let p = same(&custom);
        let Ok(Decoded::Custom(x)) = event::decode(Kind::CUSTOM, Level::Info, &p) else {
            return Err(TestCaseError::fail("not a custom event"));
        };
        check_bounded(&long, x.name, NAME_MAX)?;
    }

    /// No bytes make `decode` (or iterating decoded fields, or printing them) panic.
    #[test]
    fn decode_never_panics(kind in any::<u8>(), level in 0u8..5, bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let level = Level::from_u8(level).unwrap();
        exercise(Kind(kind), level, &bytes);
    }

    /// Nor do valid payloads cut short or with one byte changed.
    #[test]
    fn decode_never_panics_on_damaged_payloads(
        kind in 0u8..8,
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        xor in any::<u8>(),
    ) {
        let fields = all_values();
        let p = match kind {
            0 => ours(&Log { level: Level::Info, target: "t", message: "m", fields: Fields::Slice(&fields) }),
            2 => ours(&AuthFailure { user: "u", host: "h", peer: Some(V6), mechanism: "m", reason: "r" }),
            3 => ours(&AuthSuccess { user: "u", host: "h", peer: Some(V4), mechanism: "m" }),
            4 => ours(&Logout { user: "u", host: "h", peer: Some(V4) }),
            5 => ours(&SessionForbidden { user: "u", host: "h", resource: "r" }),
            6 => ours(&Connect { protocol: "p", peer: Some(V6) }),
            _ => ours(&Custom { level: Level::Info, name: "c", attributes: Fields::Slice(&fields) }),
        };
        let mut damaged = p.clone();
        let i = flip.index(damaged.len());
        damaged[i] ^= xor;
        exercise(Kind(kind), Level::Info, &damaged);
        exercise(Kind(kind), Level::Info, &p[..cut.index(p.len() + 1)]);
    }
}

fn exercise(kind: Kind, level: Level, bytes: &[u8]) {
    match event::decode(kind, level, bytes) {
        Ok(Decoded::Log(Log { fields, .. }))
        | Ok(Decoded::Custom(Custom {
            attributes: fields, ..
        })) => {
            // A malformed field ends the iteration with an error item.
            for f in fields.iter().take(10_000).flatten() {
                let _ = format!("{}={}", f.name, f.value);
            }
            // Re-encoding decoded fields never panics either (it may fail).
            let _ = ours(&fields);
        }
        Ok(Decoded::Unknown { kind: k, len }) => {
            assert_eq!((k, len), (kind, bytes.len()));
            assert!(kind.0 > 7);
        }
        Ok(d) => {
            let _ = format!("{d:?}");
        }
        Err(e) => {
            assert_eq!(e.kind, kind);
            let _ = e.to_string();
        }
    }
}

#[test]
fn addresses_convert_both_ways() {
    use std::net::{IpAddr, SocketAddr};
    for s in ["192.0.2.1:21", "[2001:db8::1]:5222"] {
        let sa: SocketAddr = s.parse().unwrap();
        let peer = Peer::from(sa);
        assert_eq!(IpAddr::from(peer.addr), sa.ip());
        assert_eq!(peer.port, sa.port());
        assert_eq!(peer.addr.to_string(), sa.ip().to_string());
    }
    assert_eq!(
        V4,
        Peer::from("192.0.2.1:21".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(
        V6,
        Peer::from("[2001:db8::1]:5222".parse::<SocketAddr>().unwrap())
    );
}

/// Every known kind has a name that finds it again, and a payload decoded as a kind says
/// that kind; unknown names and kinds are not taken for known ones.
#[test]
fn kinds_names_and_decoded_payloads_agree() {
    for kind in Kind::KNOWN {
        let name = kind.name().expect("a known kind has a name");
        assert_eq!(Kind::from_name(name), Some(kind));
        // Empty bytes decode as some kinds (a frame, an unknown kind); whatever decodes
        // says the kind it was decoded as.
        if let Ok(d) = event::decode(kind, Level::Info, &[]) {
            assert_eq!(d.kind(), kind);
        }
    }
    let failed = AuthFailure {
        user: "u",
        host: "h",
        peer: None,
        mechanism: "pin",
        reason: "r",
    };
    let mut buf = [0u8; 64];
    let n = flightrec_core::encode::to_slice(&failed, &mut buf).unwrap();
    let d = event::decode(Kind::AUTH_FAILURE, Level::Warn, &buf[..n]).unwrap();
    assert_eq!(d.kind(), Kind::AUTH_FAILURE);
    assert_eq!(
        event::decode(Kind(200), Level::Warn, b"x").unwrap().kind(),
        Kind(200)
    );
    assert_eq!(Kind::from_name("LOG"), None);
    assert_eq!(Kind::from_name(""), None);
    assert!(
        (8..=255).all(|k| Kind(k).name().is_none()),
        "KNOWN lists every named kind"
    );
}
