//! Audit records as parsed back from lines: owned copies of the security events.

use flightrec_core::event::{
    AuthFailure, AuthSuccess, Connect, Decoded, Logout, Peer, SessionForbidden,
};
use flightrec_core::Kind;

/// One parsed audit line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// When it happened, in whole seconds since the Unix epoch (UTC).
    pub unix_secs: i64,
    /// What happened.
    pub event: AuditEvent,
}

/// A security event with owned text: what an audit line holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A failed login.
    AuthFailure {
        /// The user name the peer sent.
        user: String,
        /// The (virtual) host.
        host: String,
        /// Where it came from.
        peer: Option<Peer>,
        /// Authentication mechanism.
        mechanism: String,
        /// Why it failed (empty: not given).
        reason: String,
    },
    /// A successful login.
    AuthSuccess {
        /// The user.
        user: String,
        /// The (virtual) host.
        host: String,
        /// Where it came from.
        peer: Option<Peer>,
        /// Authentication mechanism.
        mechanism: String,
    },
    /// A logout or closed session.
    Logout {
        /// The user.
        user: String,
        /// The (virtual) host.
        host: String,
        /// Where it came from.
        peer: Option<Peer>,
    },
    /// A session refused by policy.
    SessionForbidden {
        /// The user.
        user: String,
        /// The (virtual) host.
        host: String,
        /// The resource it asked for.
        resource: String,
    },
    /// A new connection.
    Connect {
        /// Protocol.
        protocol: String,
        /// Where it came from.
        peer: Option<Peer>,
    },
}

impl AuditEvent {
    /// An owned copy of a security event; `None` for kinds with no audit line.
    pub fn from_decoded(event: &Decoded<'_>) -> Option<AuditEvent> {
        Some(match *event {
            Decoded::AuthFailure(e) => AuditEvent::AuthFailure {
                user: e.user.to_owned(),
                host: e.host.to_owned(),
                peer: e.peer,
                mechanism: e.mechanism.to_owned(),
                reason: e.reason.to_owned(),
            },
            Decoded::AuthSuccess(e) => AuditEvent::AuthSuccess {
                user: e.user.to_owned(),
                host: e.host.to_owned(),
                peer: e.peer,
                mechanism: e.mechanism.to_owned(),
            },
            Decoded::Logout(e) => AuditEvent::Logout {
                user: e.user.to_owned(),
                host: e.host.to_owned(),
                peer: e.peer,
            },
            Decoded::SessionForbidden(e) => AuditEvent::SessionForbidden {
                user: e.user.to_owned(),
                host: e.host.to_owned(),
                resource: e.resource.to_owned(),
            },
            Decoded::Connect(e) => AuditEvent::Connect {
                protocol: e.protocol.to_owned(),
                peer: e.peer,
            },
            Decoded::Log(_) | Decoded::Frame(_) | Decoded::Custom(_) | Decoded::Unknown { .. } => {
                return None
            }
        })
    }

    /// Borrows it as a core event, e.g. to render it again.
    pub fn as_decoded(&self) -> Decoded<'_> {
        match self {
            AuditEvent::AuthFailure {
                user,
                host,
                peer,
                mechanism,
                reason,
            } => Decoded::AuthFailure(AuthFailure {
                user,
                host,
                peer: *peer,
                mechanism,
                reason,
            }),
            AuditEvent::AuthSuccess {
                user,
                host,
                peer,
                mechanism,
            } => Decoded::AuthSuccess(AuthSuccess {
                user,
                host,
                peer: *peer,
                mechanism,
            }),
            AuditEvent::Logout { user, host, peer } => Decoded::Logout(Logout {
                user,
                host,
                peer: *peer,
            }),
            AuditEvent::SessionForbidden {
                user,
                host,
                resource,
            } => Decoded::SessionForbidden(SessionForbidden {
                user,
                host,
                resource,
            }),
            AuditEvent::Connect { protocol, peer } => Decoded::Connect(Connect {
                protocol,
                peer: *peer,
            }),
        }
    }

    /// Its record kind.
    pub fn kind(&self) -> Kind {
        match self {
            AuditEvent::AuthFailure { .. } => Kind::AUTH_FAILURE,
            AuditEvent::AuthSuccess { .. } => Kind::AUTH_SUCCESS,
            AuditEvent::Logout { .. } => Kind::LOGOUT,
            AuditEvent::SessionForbidden { .. } => Kind::SESSION_FORBIDDEN,
            AuditEvent::Connect { .. } => Kind::CONNECT,
        }
    }

    /// The user and host it concerns; `None` for a global event (one tied to no account,
    /// such as a connection before any login).
    pub fn account(&self) -> Option<(&str, &str)> {
        match self {
            AuditEvent::AuthFailure { user, host, .. }
            | AuditEvent::AuthSuccess { user, host, .. }
            | AuditEvent::Logout { user, host, .. }
            | AuditEvent::SessionForbidden { user, host, .. } => Some((user, host)),
            AuditEvent::Connect { .. } => None,
        }
    }

    /// Whether it is global: tied to no user or host (like Prosody's host-wide events).
    pub fn is_global(&self) -> bool {
        self.account().is_none()
    }

    /// The remote peer, if known.
    pub fn peer(&self) -> Option<Peer> {
        match self {
            AuditEvent::AuthFailure { peer, .. }
            | AuditEvent::AuthSuccess { peer, .. }
            | AuditEvent::Logout { peer, .. }
            | AuditEvent::Connect { peer, .. } => *peer,
            AuditEvent::SessionForbidden { .. } => None,
        }
    }
}
