//! Prints a corpus of audit lines, hostile user and host names included, for checking a
//! fail2ban filter:
//!
//! ```sh
//! cargo run -p flightrec-audit --example fail2ban_corpus > corpus.log
//! fail2ban-regex corpus.log adapters/audit/fail2ban/flightrec-ejabberd.conf
//! cargo run -p flightrec-audit --example fail2ban_corpus -- ox ';' no-names > ox.log
//! fail2ban-regex ox.log 'adapters/audit/fail2ban/flightrec-ox.conf[delimiter=;]'
//! ```
//!
//! Arguments: `ejabberd` (the default) or `ox [DELIMITER] [no-names]` (Open-Xchange style,
//! `|` and attribute names by default).
//!
//! Real failures come only from 192.0.2.0/24 and 2001:db8::/32; every address written
//! inside a hostile field is in 203.0.113.0/24 (TEST-NET-3), so a filter that extracts one
//! of those has been fooled. Each hostile string gives two failures from its own address
//! (hostile user, mechanism and reason; hostile host), so a filter that misses one of them
//! lets that string evade the ban. `fail2ban/check.sh` holds the expected counts.

use flightrec_audit::{EjabberdFormat, LineFormat, OxFormat};
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
    // Whitespace to fail2ban's `\s` (Python), not to a naive writer.
    "nbsp\u{a0}from\u{a0}203.0.113.11\u{a0}port\u{a0}11",
    "ideo\u{3000}from\u{2000}203.0.113.12\u{202f}port\u{205f}12",
    "sep\u{1c}from\u{85}203.0.113.13\u{1f}port\u{1680}13",
    // Invisible: one account spelled many ways.
    "zw\u{200b}sp\u{2060}\u{feff}\u{180e}\u{ad}",
    "tag\u{e0001}\u{e0041}\u{115f}\u{3164}\u{fe0f}\u{34f}",
    // Open-Xchange delimiters and attributes.
    "x|ip=203.0.113.16|port=16",
    "x;ip=203.0.113.17;port=17\tip=203.0.113.17\tport=17",
];

fn format_from_args() -> Result<LineFormat, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ox = |delimiter: &str, names: bool| -> Result<LineFormat, String> {
        let mut chars = delimiter.chars();
        let d = match (chars.next(), chars.next()) {
            (Some(d), None) => d,
            _ => return Err(format!("one delimiter character, not {delimiter:?}")),
        };
        let f = LineFormat::OpenXchange(OxFormat {
            delimiter: d,
            attribute_names: names,
            ..OxFormat::default()
        });
        f.validate().map_err(|e| e.to_string())?;
        Ok(f)
    };
    match args.as_slice() {
        [] | ["ejabberd"] => Ok(LineFormat::Ejabberd(EjabberdFormat::default())),
        ["ox"] => ox("|", true),
        ["ox", d] => ox(d, true),
        ["ox", d, "no-names"] => ox(d, false),
        _ => Err("usage: fail2ban_corpus [ejabberd | ox [DELIMITER] [no-names]]".into()),
    }
}

fn main() {
    let format = match format_from_args() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fail2ban_corpus: {e}");
            std::process::exit(2);
        }
    };
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
        // Hostile user, mechanism and reason: one failure, from the real peer.
        emit(Decoded::AuthFailure(AuthFailure {
            user,
            host: "example.org",
            peer: v4(last),
            mechanism: user,
            reason: user,
        }));
        // Hostile host: another failure from the same peer.
        emit(Decoded::AuthFailure(AuthFailure {
            user: "alice",
            host: user,
            peer: v4(last),
            mechanism: "PLAIN",
            reason: "",
        }));
        // Hostile fields in lines that must not match at all.
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
