//! Dumps written by the core decode to exactly the expected text, JSON and forensic output.

mod common;
use common::*;
use flightrec_core::{Kind, SessionId};
use flightrec_decode::{Filter, Format, Options, TimeBound};

const BOOT_TEXT: &str = r#"== dump at offset 0: failed login at +2.000s by record 2; build "demo" "1.0" id abcdef01; records 0..5; lost 0; suppressed 0
+1.000s INFO  connect s=7 protocol="ftp" peer=203.0.113.9:40112
+1.500s DEBUG log s=7 target=ftpd msg="USER admin" attempt=1 tls=false
+2.000s WARN  auth-failure s=7 user="admin\x0a2026-01-01 fake line\x1b[2J" host="dev1" peer=203.0.113.9:40112 mechanism="PASS" reason="bad \x22password\x22"
+2.100s INFO  custom - name="lockout" secs=-5 who="a\x22b c"
+2.200s WARN  frame s=7 len=2 hex=6869
== end of dump at offset 263: yes; 5 records written, 5 decoded, 0 lost during read-out, 0 outside scope
"#;

const UNIX_JSON: &str = r#"{"type":"dump","offset":0,"reason":"failed login","marker":"FAILED LOGIN","reason_code":1,"reason_arg":0,"detail":"","trigger_time":"2026-11-23T18:00:02.000Z","trigger_ticks":1795456802000,"trigger_seq":2,"clock_hz":1000,"clock_base":"unix","first_seq":0,"next_seq":5,"lost":0,"suppressed":0,"scope":null,"index":0,"capacity":4096,"build":{"name":"demo","version":"1.0","id":"abcdef01"}}
{"type":"record","offset":53,"seq":0,"time":"2026-11-23T18:00:01.000Z","ticks":1795456801000,"level":"INFO","kind":"connect","session":7,"protocol":"ftp","peer":"203.0.113.9:40112"}
{"type":"record","offset":85,"seq":1,"time":"2026-11-23T18:00:01.500Z","ticks":1795456801500,"level":"DEBUG","kind":"log","session":7,"target":"ftpd","message":"USER admin","fields":{"attempt":1,"tls":false}}
{"type":"record","offset":137,"seq":2,"time":"2026-11-23T18:00:02.000Z","ticks":1795456802000,"level":"WARN","kind":"auth-failure","session":7,"user":"admin\n2026-01-01 fake line\u001b[2J","host":"dev1","peer":"203.0.113.9:40112","mechanism":"PASS","reason":"bad \"password\""}
{"type":"record","offset":221,"seq":3,"time":"2026-11-23T18:00:02.100Z","ticks":1795456802100,"level":"INFO","kind":"custom","session":null,"name":"lockout","attributes":{"secs":-5,"who":"a\"b c"}}
{"type":"record","offset":266,"seq":4,"time":"2026-11-23T18:00:02.200Z","ticks":1795456802200,"level":"WARN","kind":"frame","session":7,"len":2,"hex":"6869"}
{"type":"end","offset":287,"records":5,"lost":0,"out_of_scope":0,"decoded":5}
"#;

const BOOT_FORENSIC: &str = r#"-----BEGIN FAILED LOGIN FORENSICS-----
Client-Address: 203.0.113.9
Client-Port: 40112
Server-Address: dev1
Elapsed: 1.000s
Protocol: ftp
User: admin\x0a2026-01-01 fake line\x1b[2J
Session: 7
Reason: failed login
Trigger-Time: +2.000s
Trigger-Record: 2
Build: demo 1.0
Build-Id: abcdef01
Dump-Index: 0
Records: 5 decoded of seq 0..5
Lost-Before-Ring: 0
Suppressed: 0
Dump-Offset: 0
Complete: yes; 5 records written, 5 decoded, 0 lost during read-out, 0 outside scope

+1.000s INFO  connect s=7 protocol="ftp" peer=203.0.113.9:40112
+1.500s DEBUG log s=7 target=ftpd msg="USER admin" attempt=1 tls=false
+2.000s WARN  auth-failure s=7 user="admin\x0a2026-01-01 fake line\x1b[2J" host="dev1" peer=203.0.113.9:40112 mechanism="PASS" reason="bad \x22password\x22"
+2.100s INFO  custom - name="lockout" secs=-5 who="a\x22b c"
+2.200s WARN  frame s=7 len=2 hex=6869
-----END FAILED LOGIN FORENSICS-----
"#;

#[test]
fn boot_clock_text() {
    let (t, stats, sum) = text(&boot_dump());
    assert_eq!(t, BOOT_TEXT);
    assert!(!stats.damaged() && !sum.damaged());
    assert_eq!((stats.dumps, stats.records, sum.shown), (1, 5, 5));
}

#[test]
fn unix_clock_json() {
    let (t, stats, _) = json(&unix_dump());
    assert_eq!(t, UNIX_JSON);
    assert!(!stats.damaged());
    // Every line is a JSON object whose strings round-trip to what the device recorded.
    let lines: Vec<serde_json::Value> = t
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[3]["user"], "admin\n2026-01-01 fake line\x1b[2J");
    assert_eq!(lines[4]["attributes"]["who"], "a\"b c");
}

#[test]
fn forensic_block() {
    let (t, _, _) = render(
        &boot_dump(),
        Options {
            format: Format::Forensic,
            ..Options::default()
        },
    );
    assert_eq!(t, BOOT_FORENSIC);
}

#[test]
fn spec_example_decodes() {
    // The worked example of WIRE-FORMAT.md, byte for byte.
    let bytes: Vec<u8> = [
        "89 46 4C 52 0D 0A 1A 0A 01",
        "FE 48 1D 00 01 00 00 0B 01 00 E8 07 00 00 01 00 00 00 00 80 20 04 64 65 6D 6F 03 31 2E 30 02 AB AB B7 04 C1 C3",
        "FE 52 08 00 00 0B 01 03 01 07 68 69 C1 21 C0 F2",
        "FE 45 03 00 01 00 00 9B 2A 35 A8",
    ]
    .join(" ")
    .split(' ')
    .map(|b| u8::from_str_radix(b, 16).unwrap())
    .collect();
    let (t, stats, _) = text(&bytes);
    assert_eq!(
        t,
        "== dump at offset 0: failed login at +0.011s by record 0; build \"demo\" \"1.0\" id abab; records 0..1; lost 0; suppressed 0\n\
         +0.011s WARN  frame s=7 len=2 hex=6869\n\
         == end of dump at offset 62: yes; 1 records written, 1 decoded, 0 lost during read-out, 0 outside scope\n"
    );
    assert!(!stats.damaged());
}

#[test]
fn filters() {
    let only = |filter: Filter| {
        let (t, _, sum) = render(
            &boot_dump(),
            Options {
                filter,
                ..Options::default()
            },
        );
        let kinds: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with('+'))
            .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
            .collect();
        (kinds, sum.filtered)
    };
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        only(Filter {
            min_level: Some(3),
            ..Filter::default()
        })
        .0,
        v(&["auth-failure", "frame"])
    );
    assert_eq!(
        only(Filter {
            session: Some(7),
            ..Filter::default()
        }),
        (v(&["connect", "log", "auth-failure", "frame"]), 1)
    );
    assert_eq!(
        only(Filter {
            kinds: vec![Kind::CUSTOM, Kind::LOG],
            ..Filter::default()
        })
        .0,
        v(&["log", "custom"])
    );
    let since = TimeBound::parse("1.5s").unwrap();
    let until = TimeBound::parse("2.1").unwrap();
    assert_eq!(
        only(Filter {
            since: Some(since),
            until: Some(until),
            ..Filter::default()
        })
        .0,
        v(&["log", "auth-failure", "custom"])
    );
    // A Unix time cannot be compared with a boot clock: nothing passes.
    let unix = TimeBound::parse("2026-11-23T18:00:00Z").unwrap();
    assert_eq!(
        only(Filter {
            since: Some(unix),
            ..Filter::default()
        })
        .0,
        v(&[])
    );
    // ... but it works on a Unix-clock dump.
    let (t, _, sum) = render(
        &unix_dump(),
        Options {
            format: Format::Json,
            filter: Filter {
                since: TimeBound::parse("2026-11-23T18:00:02Z").ok(),
                ..Filter::default()
            },
            ..Options::default()
        },
    );
    assert_eq!((sum.shown, sum.filtered), (3, 2));
    assert_eq!(t.lines().filter(|l| l.contains("\"record\"")).count(), 3);
    let _ = SessionId(0);
}

#[test]
fn colour_only_when_asked() {
    let (plain, _, _) = text(&boot_dump());
    assert!(!plain.contains('\x1b'));
    let (coloured, _, _) = render(
        &boot_dump(),
        Options {
            color: true,
            ..Options::default()
        },
    );
    assert!(coloured.contains("\x1b[33mWARN \x1b[0m"));
    // Colour never un-escapes peer text: the peer's ESC stays escaped.
    assert!(coloured.contains("\\x1b[2J"));
}

#[test]
fn several_dumps_back_to_back_with_erased_flash() {
    let mut image = vec![0xFF; 100];
    image.extend(boot_dump());
    image.extend(vec![0xFF; 4096]);
    image.extend(unix_dump());
    image.extend(vec![0xFF; 50]);
    let (t, stats, _) = text(&image);
    assert_eq!(stats.dumps, 2);
    assert_eq!(stats.records, 10);
    assert!(!stats.damaged());
    assert!(t.starts_with(
        "-- skipped 100 bytes at offset 0 outside dumps (erased flash)\n== dump at offset 100:"
    ));
    assert!(t.contains("-- skipped 4096 bytes at offset 374 outside dumps (erased flash)\n"));
    let tail = format!(
        "-- skipped 50 bytes at offset {} outside dumps (erased flash)\n",
        image.len() - 50
    );
    assert!(t.ends_with(&tail), "{t}");
}
