//! Writes a deterministic ejabberd-style audit log for timing `flightrec audit`
//! (`benches/audit/run.sh`):
//!
//! ```sh
//! cargo run --release -p flightrec-audit --example audit_log -- 1000000 audit.log
//! ```
//!
//! Arguments: the number of lines (default one million) and the output path (default
//! standard output). The accounts are `user0@example.org` .. `user4999@...` on three hosts
//! spelled in several cases; `user42@example.org` (the timed account) has about one line
//! in three thousand, and names that hold `user42` (`user420`, `user4299`, ...) about one
//! in sixty, so a substring prefilter has candidates to throw away. One line in seven
//! carries escaped peer-controlled text. Times increase by one second every four lines.

use std::io::{BufWriter, Write};

use flightrec_audit::{EjabberdFormat, LineFormat};
use flightrec_core::event::{Addr, AuthFailure, AuthSuccess, Connect, Decoded, Logout, Peer};

/// 2026-11-23 00:00:00 UTC.
const START: i64 = 1_795_392_000;

/// A small deterministic generator (xorshift64*): the same file on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let lines: u64 = args
        .next()
        .map(|n| n.parse().expect("number of lines"))
        .unwrap_or(1_000_000);
    let out: Box<dyn Write> = match args.next() {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let format = LineFormat::Ejabberd(EjabberdFormat::default());
    let hosts = ["example.org", "EXAMPLE.ORG", "chat.example.net"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut line = String::new();
    for i in 0..lines {
        let r = rng.next();
        let user = if i % 5000 == 7 {
            "user42".to_owned()
        } else if r % 7 == 0 {
            // Peer-controlled text that the renderer escapes.
            format!("mallory {}\u{202e}", r % 1000)
        } else {
            format!("user{}", (r >> 8) % 5000)
        };
        let host = hosts[((r >> 24) % 3) as usize];
        let host = if user == "user42" {
            "example.org"
        } else {
            host
        };
        let peer = Some(Peer {
            addr: Addr::V4([192, 0, 2, (r >> 32) as u8]),
            port: 1024 + ((r >> 40) % 60000) as u16,
        });
        // The timed account's lines are never connections (those name no account).
        let kinds = if user == "user42" { 7 } else { 8 };
        let event = match (r >> 56) % kinds {
            0..=3 => Decoded::AuthFailure(AuthFailure {
                user: &user,
                host,
                peer,
                mechanism: "PLAIN",
                reason: "bad password",
            }),
            4 | 5 => Decoded::AuthSuccess(AuthSuccess {
                user: &user,
                host,
                peer,
                mechanism: "SCRAM-SHA-1",
            }),
            6 => Decoded::Logout(Logout {
                user: &user,
                host,
                peer,
            }),
            _ => Decoded::Connect(Connect {
                protocol: "xmpp-c2s",
                peer,
            }),
        };
        line.clear();
        let secs = START + (i / 4) as i64;
        format
            .render(i128::from(secs) * 1_000_000_000, "gw", &event, &mut line)
            .expect("renders");
        writeln!(out, "{line}")?;
    }
    out.flush()
}
