//! Typed events and their payload encoding.
//!
//! Each event type is a record [`Kind`]; its payload is the event's postcard encoding (see
//! `WIRE-FORMAT.md`), except [`Kind::FRAME`], whose payload is opaque bytes (defmt frames).
//! Payloads are written by one encoder, [`crate::encode`] (the [`Encode`] impls here), on
//! every platform: into the ring, and through [`crate::encode::Writer`] into any buffer (the
//! Linux adapter's per-thread one). Decoding goes through postcard's deserializer.
//! Strings are bounded on the way in: a longer one is cut at a character boundary and marked
//! visibly, `prefix…[+N]` with `N` the bytes cut, so a log never silently loses the fact
//! that something was cut. Decoding borrows from the payload and never allocates; a kind this
//! version does not know decodes as [`Decoded::Unknown`].

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::encode::{Encode, Writer};
use crate::{Kind, Level};

/// Longest user name kept (bytes).
pub const USER_MAX: usize = 64;
/// Longest host (virtual host, domain) kept.
pub const HOST_MAX: usize = 64;
/// Longest mechanism or protocol name kept.
pub const NAME_MAX: usize = 32;
/// Longest reason or resource kept.
pub const TEXT_MAX: usize = 128;
/// Longest log target kept.
pub const TARGET_MAX: usize = 64;
/// Longest log message kept.
pub const MESSAGE_MAX: usize = 256;
/// Longest field or attribute value kept (strings and bytes).
pub const VALUE_MAX: usize = 128;
/// Most fields or attributes kept on one record; further ones are dropped and counted in a
/// final field named `…dropped`.
pub const FIELDS_MAX: usize = 16;

/// A peer's IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Addr {
    /// IPv4, network byte order.
    V4([u8; 4]),
    /// IPv6, network byte order.
    V6([u8; 16]),
}

impl From<core::net::IpAddr> for Addr {
    fn from(ip: core::net::IpAddr) -> Self {
        match ip {
            core::net::IpAddr::V4(v4) => Addr::V4(v4.octets()),
            core::net::IpAddr::V6(v6) => Addr::V6(v6.octets()),
        }
    }
}

impl From<Addr> for core::net::IpAddr {
    fn from(a: Addr) -> Self {
        match a {
            Addr::V4(b) => core::net::IpAddr::V4(b.into()),
            Addr::V6(b) => core::net::IpAddr::V6(b.into()),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        core::net::IpAddr::from(*self).fmt(f)
    }
}

/// A remote peer: address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Peer {
    /// Its address.
    pub addr: Addr,
    /// Its port.
    pub port: u16,
}

impl From<core::net::SocketAddr> for Peer {
    fn from(sa: core::net::SocketAddr) -> Self {
        Peer {
            addr: sa.ip().into(),
            port: sa.port(),
        }
    }
}

impl Encode for Addr {
    fn encode(&self, w: &mut Writer<'_>) {
        match self {
            Addr::V4(b) => {
                w.u8(0);
                w.bytes(b);
            }
            Addr::V6(b) => {
                w.u8(1);
                w.bytes(b);
            }
        }
    }
}

impl Encode for Peer {
    fn encode(&self, w: &mut Writer<'_>) {
        self.addr.encode(w);
        w.varint(u64::from(self.port));
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.option(self.as_ref(), |w, v| v.encode(w));
    }
}

/// A typed event that can be recorded: its [`Encode`] impl writes the payload.
pub trait Event: Encode {
    /// Its record kind.
    const KIND: Kind;
    /// The level it is recorded at.
    fn level(&self) -> Level;
    /// The remote peer it concerns, for per-peer thresholds.
    fn peer(&self) -> Option<&Addr> {
        None
    }
    /// Its name, for named-event triggers.
    fn name(&self) -> Option<&str> {
        None
    }
}

/// A payload could not be decoded as its kind says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecodeError {
    /// The kind it claimed to be.
    pub kind: Kind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed payload for kind {}", self.kind.0)
    }
}

/// Writes one field of a security event: a `str` cut to its bound, or any other value.
macro_rules! encode_field {
    ($w:ident, $v:expr, $max:expr) => {
        $w.str_bounded($v, $max)
    };
    ($w:ident, $v:expr) => {
        $v.encode($w)
    };
}

macro_rules! security_event {
    ($(#[$doc:meta])* $ty:ident, $kind:ident, $level:ident, peer: $peer:expr,
     { $($(#[$fdoc:meta])* $field:ident : $fty:ty $(=> $max:expr)?,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
        pub struct $ty<'a> {
            $(
                $(#[$fdoc])*
                pub $field: $fty,
            )*
        }

        impl Encode for $ty<'_> {
            fn encode(&self, w: &mut Writer<'_>) {
                $( encode_field!(w, self.$field $(, $max)?); )*
            }
        }

        impl Event for $ty<'_> {
            const KIND: Kind = Kind::$kind;
            fn level(&self) -> Level {
                Level::$level
            }
            fn peer(&self) -> Option<&Addr> {
                let f: fn(&Self) -> Option<&Peer> = $peer;
                f(self).map(|p| &p.addr)
            }
        }
    };
}

security_event! {
    /// A failed login (ProFTPD's `FailedLogin`, ejabberd's "Failed ... authentication").
    AuthFailure, AUTH_FAILURE, Warn, peer: |e| e.peer.as_ref(), {
        /// The user name the peer sent.
        user: &'a str => USER_MAX,
        /// The (virtual) host it tried to log in to.
        host: &'a str => HOST_MAX,
        /// Where it came from.
        peer: Option<Peer>,
        /// Authentication mechanism (`PLAIN`, `SCRAM-SHA-1`, `pin`, ...).
        mechanism: &'a str => NAME_MAX,
        /// Why it failed.
        reason: &'a str => TEXT_MAX,
    }
}

security_event! {
    /// A successful login.
    AuthSuccess, AUTH_SUCCESS, Info, peer: |e| e.peer.as_ref(), {
        /// The user.
        user: &'a str => USER_MAX,
        /// The (virtual) host.
        host: &'a str => HOST_MAX,
        /// Where it came from.
        peer: Option<Peer>,
        /// Authentication mechanism.
        mechanism: &'a str => NAME_MAX,
    }
}

security_event! {
    /// A logout or closed session.
    Logout, LOGOUT, Info, peer: |e| e.peer.as_ref(), {
        /// The user.
        user: &'a str => USER_MAX,
        /// The (virtual) host.
        host: &'a str => HOST_MAX,
        /// Where it came from.
        peer: Option<Peer>,
    }
}

security_event! {
    /// A session refused by policy (ejabberd's "Forbidden session for user@host/resource").
    SessionForbidden, SESSION_FORBIDDEN, Warn, peer: |_| None, {
        /// The user.
        user: &'a str => USER_MAX,
        /// The (virtual) host.
        host: &'a str => HOST_MAX,
        /// The resource it asked for.
        resource: &'a str => TEXT_MAX,
    }
}

security_event! {
    /// A new connection.
    Connect, CONNECT, Info, peer: |e| e.peer.as_ref(), {
        /// Protocol (`ftp`, `xmpp-c2s`, `console`, ...).
        protocol: &'a str => NAME_MAX,
        /// Where it came from.
        peer: Option<Peer>,
    }
}

/// A field's value.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
pub enum Value<'a> {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// Text (cut to [`VALUE_MAX`] when recorded).
    Str(&'a str),
    /// Bytes (cut to [`VALUE_MAX`] when recorded).
    Bytes(&'a [u8]),
}

impl Value<'_> {
    /// Its tag on the wire: the variant's index (`WIRE-FORMAT.md` section 1), which comes
    /// first in its encoding. (An encoder writing a text value as it formats it writes
    /// `Value::Str("").tag()`, then the text.)
    #[inline]
    pub const fn tag(&self) -> u8 {
        match self {
            Value::Bool(_) => 0,
            Value::I64(_) => 1,
            Value::U64(_) => 2,
            Value::F64(_) => 3,
            Value::Str(_) => 4,
            Value::Bytes(_) => 5,
        }
    }
}

impl Value<'_> {
    /// Its encoding after the tag: what follows the tag in a field, and the body of a
    /// callsite record's item ([`crate::callsite`]).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn encode_body(&self, w: &mut Writer<'_>) {
        match *self {
            // A `bool` is a one-byte varint (0 or 1).
            Value::Bool(v) => w.varint(u64::from(v)),
            Value::I64(v) => w.varint(((v << 1) ^ (v >> 63)) as u64),
            Value::U64(v) => w.varint(v),
            // Its bits as an integer: no floating-point registers to save on a Cortex-M.
            Value::F64(v) => w.bytes(&v.to_bits().to_le_bytes()),
            Value::Str(v) => w.str_bounded(v, VALUE_MAX),
            Value::Bytes(v) => w.prefixed(v.get(..VALUE_MAX).unwrap_or(v)),
        }
    }
}

impl Encode for Value<'_> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn encode(&self, w: &mut Writer<'_>) {
        // The tag is written once (the compiler reads it as it is).
        w.u8(self.tag());
        self.encode_body(w);
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => v.fmt(f),
            Value::I64(v) => v.fmt(f),
            Value::U64(v) => v.fmt(f),
            Value::F64(v) => v.fmt(f),
            Value::Str(v) => v.fmt(f),
            Value::Bytes(v) => {
                for b in v.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A named value attached to a log line or custom event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field<'a> {
    /// Its name (cut to [`NAME_MAX`] when recorded).
    pub name: &'a str,
    /// Its value.
    pub value: Value<'a>,
}

impl Field<'_> {
    /// The field that ends a list of fields or attributes of which `dropped` were not kept
    /// (beyond [`FIELDS_MAX`], or too large for an adapter's buffer): named `…dropped`,
    /// holding the count (`WIRE-FORMAT.md` section 6).
    pub const fn dropped(dropped: u64) -> Field<'static> {
        Field {
            name: "…dropped",
            value: Value::U64(dropped),
        }
    }
}

impl Encode for Field<'_> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn encode(&self, w: &mut Writer<'_>) {
        w.str_bounded(self.name, NAME_MAX);
        self.value.encode(w);
    }
}

/// Fields of a [`Log`] or attributes of a [`Custom`] event: a slice when recording, the
/// still-encoded bytes when decoding (iterate them with [`Fields::iter`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fields<'a> {
    /// Fields given by the caller.
    Slice(&'a [Field<'a>]),
    /// Fields as recorded: a count and their postcard encoding.
    Encoded {
        /// How many the writer recorded.
        count: u64,
        /// Their bytes.
        bytes: &'a [u8],
    },
}

impl<'a> Fields<'a> {
    /// No fields.
    pub const NONE: Fields<'static> = Fields::Slice(&[]);

    /// Iterates the fields. For decoded fields, a malformed one ends the iteration with an
    /// error item.
    pub fn iter(&self) -> FieldIter<'a> {
        match *self {
            Fields::Slice(s) => FieldIter::Slice(s.iter()),
            Fields::Encoded { count, bytes } => FieldIter::Encoded { left: count, bytes },
        }
    }

    fn decode(bytes: &'a [u8]) -> Result<Self, postcard::Error> {
        let (count, bytes) = postcard::take_from_bytes::<u64>(bytes)?;
        Ok(Fields::Encoded { count, bytes })
    }
}

impl Encode for Fields<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        match *self {
            Fields::Slice(fields) => {
                let kept = fields.get(..FIELDS_MAX).unwrap_or(fields);
                let dropped = fields.len() - kept.len();
                w.varint((kept.len() + usize::from(dropped > 0)) as u64);
                for f in kept {
                    f.encode(w);
                }
                if dropped > 0 {
                    Field::dropped(dropped as u64).encode(w);
                }
            }
            // Already encoded: copied as they are.
            Fields::Encoded { count, bytes } => {
                w.varint(count);
                w.bytes(bytes);
            }
        }
    }
}

/// Iterator over [`Fields`].
#[derive(Clone, Debug)]
pub enum FieldIter<'a> {
    /// Over a slice.
    Slice(core::slice::Iter<'a, Field<'a>>),
    /// Over encoded bytes.
    Encoded {
        /// Fields still to read.
        left: u64,
        /// Their bytes.
        bytes: &'a [u8],
    },
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = Result<Field<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            FieldIter::Slice(it) => it.next().copied().map(Ok),
            FieldIter::Encoded { left, bytes } => {
                if *left == 0 {
                    return None;
                }
                match postcard::take_from_bytes::<(&str, Value<'a>)>(bytes) {
                    Ok(((name, value), rest)) => {
                        *left -= 1;
                        *bytes = rest;
                        Some(Ok(Field { name, value }))
                    }
                    Err(_) => {
                        *left = 0;
                        Some(Err(DecodeError { kind: Kind::LOG }))
                    }
                }
            }
        }
    }
}

/// A log line: where it came from, its message, and structured fields. Its level is the
/// record's level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Log<'a> {
    /// Level it is recorded at.
    pub level: Level,
    /// Module or component (`tracing`'s target).
    pub target: &'a str,
    /// The message.
    pub message: &'a str,
    /// Structured fields.
    pub fields: Fields<'a>,
}

impl Encode for Log<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.str_bounded(self.target, TARGET_MAX);
        w.str_bounded(self.message, MESSAGE_MAX);
        self.fields.encode(w);
    }
}

impl Event for Log<'_> {
    const KIND: Kind = Kind::LOG;
    fn level(&self) -> Level {
        self.level
    }
}

/// An application-defined event: a name and attributes. A configured name fires the
/// named-event trigger.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Custom<'a> {
    /// Level it is recorded at.
    pub level: Level,
    /// Its name (cut to [`NAME_MAX`]).
    pub name: &'a str,
    /// Its attributes.
    pub attributes: Fields<'a>,
}

impl Encode for Custom<'_> {
    fn encode(&self, w: &mut Writer<'_>) {
        w.str_bounded(self.name, NAME_MAX);
        self.attributes.encode(w);
    }
}

impl Event for Custom<'_> {
    const KIND: Kind = Kind::CUSTOM;
    fn level(&self) -> Level {
        self.level
    }
    fn name(&self) -> Option<&str> {
        Some(self.name)
    }
}

/// A decoded payload, borrowing from the bytes it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoded<'a> {
    /// [`Kind::LOG`].
    Log(Log<'a>),
    /// [`Kind::FRAME`].
    Frame(&'a [u8]),
    /// [`Kind::AUTH_FAILURE`].
    AuthFailure(AuthFailure<'a>),
    /// [`Kind::AUTH_SUCCESS`].
    AuthSuccess(AuthSuccess<'a>),
    /// [`Kind::LOGOUT`].
    Logout(Logout<'a>),
    /// [`Kind::SESSION_FORBIDDEN`].
    SessionForbidden(SessionForbidden<'a>),
    /// [`Kind::CONNECT`].
    Connect(Connect<'a>),
    /// [`Kind::CUSTOM`].
    Custom(Custom<'a>),
    /// A kind this version does not know (written by a newer writer).
    Unknown {
        /// Its kind.
        kind: Kind,
        /// Its payload length.
        len: usize,
    },
}

impl Decoded<'_> {
    /// The kind of record it was decoded from.
    pub const fn kind(&self) -> Kind {
        match self {
            Decoded::Log(_) => Kind::LOG,
            Decoded::Frame(_) => Kind::FRAME,
            Decoded::AuthFailure(_) => Kind::AUTH_FAILURE,
            Decoded::AuthSuccess(_) => Kind::AUTH_SUCCESS,
            Decoded::Logout(_) => Kind::LOGOUT,
            Decoded::SessionForbidden(_) => Kind::SESSION_FORBIDDEN,
            Decoded::Connect(_) => Kind::CONNECT,
            Decoded::Custom(_) => Kind::CUSTOM,
            Decoded::Unknown { kind, .. } => *kind,
        }
    }
}

/// Decodes a record's payload according to its kind and level. Bytes after the fields this
/// version knows are ignored, so a newer writer may append fields.
pub fn decode(kind: Kind, level: Level, payload: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    fn take<'a, T: Deserialize<'a>>(kind: Kind, b: &'a [u8]) -> Result<T, DecodeError> {
        postcard::take_from_bytes(b)
            .map(|(v, _)| v)
            .map_err(|_| DecodeError { kind })
    }
    let err = |_| DecodeError { kind };
    Ok(match kind {
        Kind::LOG => {
            let ((target, message), rest) = postcard::take_from_bytes(payload).map_err(err)?;
            let fields = Fields::decode(rest).map_err(err)?;
            Decoded::Log(Log {
                level,
                target,
                message,
                fields,
            })
        }
        Kind::FRAME => Decoded::Frame(payload),
        Kind::AUTH_FAILURE => Decoded::AuthFailure(take(kind, payload)?),
        Kind::AUTH_SUCCESS => Decoded::AuthSuccess(take(kind, payload)?),
        Kind::LOGOUT => Decoded::Logout(take(kind, payload)?),
        Kind::SESSION_FORBIDDEN => Decoded::SessionForbidden(take(kind, payload)?),
        Kind::CONNECT => Decoded::Connect(take(kind, payload)?),
        Kind::CUSTOM => {
            let (name, rest) = postcard::take_from_bytes(payload).map_err(err)?;
            let attributes = Fields::decode(rest).map_err(err)?;
            Decoded::Custom(Custom {
                level,
                name,
                attributes,
            })
        }
        kind => Decoded::Unknown {
            kind,
            len: payload.len(),
        },
    })
}
