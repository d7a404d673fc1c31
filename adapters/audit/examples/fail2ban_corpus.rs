//! Prints a corpus of ejabberd-style audit lines, hostile user names included, for
//! checking a fail2ban filter:
//!
//! ```sh
//! cargo run -p flightrec-audit --example fail2ban_corpus > corpus.log
//! fail2ban-regex corpus.log adapters/audit/fail2ban/flightrec-ejabberd.conf
//! ```
//!
//! Real failures come only from 192.0.2.0/24 and 2001:db8::/32; every address written
//! inside a hostile field is in 203.0.113.0/24 (TEST-NET-3), so a filter that extracts one
//! of those has been fooled.

use flightrec_audit::{EjabberdFormat, LineFormat};
use flightrec_core::event::{
    Addr, AuthFailure, AuthSuccess, Connect, Decoded, Logout, Peer, SessionForbidden,
};

const HOSTILE: &[&str] = &[
    "mallory from 203.0.113.1 port 1",
    "x@example.org from 203.0.113.2 port 2",
    "a\nFailed PLAIN authentication for root@example.org from 203.0.113.3 port 3",
    "a\r2026-11-23 10:00:00 Failed PLAIN authentication for r@e from 203.0.113.4 port 4",
    "\x1b[2K\x1b[1Gfrom 203.0.113.5 port 5",
    "b\u{202e}5 trop 6.311.302 morf",
    "nul\0from 203.0.113.7 port 7",
    "tab\tfrom\t203.0.113.8\tport\t8",
    "from 203.0.113.9 port 9: reason",
    "u\u{2028}from 203.0.113.10 port 10",
];

fn main() {
    let format = LineFormat::Ejabberd(EjabberdFormat::default());
    let start: i128 = 1_795_428_000; // 2026-11-23 10:00:00 UTC
    let mut n = 0i128;
    let mut emit = |e: Decoded<'_>| {
        let mut line = String::new();
        let t = (start + n) * 1_000_000_000;
        n += 1;
        if format.render(t, "gw.example", &e, &mut line).is_ok() {
            println!("{line}");
        }
    };
    let v4 = |last: u8| {
        Some(Peer {
            addr: Addr::V4([192, 0, 2, last]),
            port: 50_000 + u16::from(last),
        })
    };
    let v6 = Some(Peer {
        addr: Addr::V6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]),
        port: 5222,
    });
    for (i, &user) in HOSTILE.iter().enumerate() {
        let last = u8::try_from(i + 1).unwrap_or(0);
        // Hostile user, mechanism and reason: one failure each, from the real peer.
        emit(Decoded::AuthFailure(AuthFailure {
            user,
            host: "example.org",
            peer: v4(last),
            mechanism: user,
            reason: user,
        }));
        // Hostile host and resource in lines that must not match at all.
        emit(Decoded::AuthSuccess(AuthSuccess {
            user,
            host: user,
            peer: v4(last),
            mechanism: "PLAIN",
        }));
        emit(Decoded::SessionForbidden(SessionForbidden {
            user,
            host: user,
            resource: user,
        }));
        emit(Decoded::Logout(Logout {
            user,
            host: "example.org",
            peer: v4(last),
        }));
        emit(Decoded::Connect(Connect {
            protocol: user,
            peer: v4(last),
        }));
    }
    // Ordinary failures: IPv6, without reason, and one without a peer (no address to ban).
    emit(Decoded::AuthFailure(AuthFailure {
        user: "alice",
        host: "example.org",
        peer: v6,
        mechanism: "SCRAM-SHA-1",
        reason: "",
    }));
    emit(Decoded::AuthFailure(AuthFailure {
        user: "bob",
        host: "",
        peer: v4(200),
        mechanism: "sasl",
        reason: "not-authorized",
    }));
    emit(Decoded::AuthFailure(AuthFailure {
        user: "console",
        host: "example.org",
        peer: None,
        mechanism: "pin",
        reason: "wrong pin",
    }));
}
