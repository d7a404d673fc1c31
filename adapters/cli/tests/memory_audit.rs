//! `flightrec audit` holds memory that does not grow with the logs it reads: lines are
//! read in fixed-size blocks, and the records to show beyond a bound go to a temporary
//! file. A counting allocator measures the peak of heap bytes held while it runs in this
//! process (the only test of this binary, so nothing else allocates meanwhile).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Parser;
use flightrec_audit::{EjabberdFormat, LineFormat};
use flightrec_cli::{run, Cli, Env};
use flightrec_core::event::{Addr, AuthFailure, Decoded, Peer};

mod counting;

/// Heap bytes `flightrec ARGS` holds at its peak, beyond what was held before, and the
/// count it said it displayed.
fn peak_of(args: &[&str]) -> (usize, u8, String, String) {
    let mut argv = vec!["flightrec"];
    argv.extend(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut err = Vec::with_capacity(4096);
    let mut out = Tail::default();
    let (peak, code) = counting::peak_during(|| run(&cli, &Env::default(), &mut out, &mut err));
    let last = String::from_utf8_lossy(&out.last).into_owned();
    (peak, code, last, String::from_utf8_lossy(&err).into_owned())
}

/// Output thrown away but for its last line (fixed memory).
#[derive(Default)]
struct Tail {
    last: Vec<u8>,
    ended: bool,
}

impl Write for Tail {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if self.ended {
                self.last.clear();
                self.ended = false;
            }
            if b == b'\n' {
                self.ended = true;
            } else if self.last.len() < 256 {
                self.last.push(b);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn memory_does_not_grow_with_the_logs() {
    const LINES: u64 = 120_000;
    const BOUND: usize = 6 << 20;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flightrec-memory-audit.log");
    let format = LineFormat::Ejabberd(EjabberdFormat::default());
    let mut size = 0;
    {
        let mut f = BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut line = String::new();
        for i in 0..LINES {
            let user = format!("user{}", i % 1000);
            let event = Decoded::AuthFailure(AuthFailure {
                user: &user,
                host: "example.org",
                peer: Some(Peer {
                    addr: Addr::V4([192, 0, 2, i as u8]),
                    port: 1024 + (i % 60000) as u16,
                }),
                mechanism: "PLAIN",
                reason: "bad password",
            });
            line.clear();
            format
                .render(
                    i128::from(1_795_392_000 + i as i64 / 4) * 1_000_000_000,
                    "gw",
                    &event,
                    &mut line,
                )
                .unwrap();
            writeln!(f, "{line}").unwrap();
            size += line.len() + 1;
        }
    }
    assert!(
        size > 2 * BOUND,
        "the log ({size} bytes) must dwarf the bound"
    );
    let p = path.to_str().unwrap();
    let every = format!("{LINES} records displayed");
    let one_user = format!("{} records displayed", LINES / 1000);
    for (args, shown) in [
        // One account: the prefilter's path.
        (&["audit", "user7@example.org", p][..], &one_user),
        // Every record shown: held up to a bound, then spilled and merged.
        (&["audit", p], &every),
        (&["audit", "--output", "lines", p], &every),
    ] {
        let (peak, code, last, err) = peak_of(args);
        assert_eq!((code, &last), (0, shown), "{args:?}: {err}");
        assert!(
            peak < BOUND,
            "{args:?}: {peak} bytes held at the peak for a {size}-byte log (bound {BOUND})"
        );
        eprintln!("{args:?}: peak {peak} bytes for a {size}-byte log");
    }
    std::fs::remove_file(&path).unwrap();
}
