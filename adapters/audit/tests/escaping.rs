//! The done-criterion of "one account, one spelling": over hostile strings in every
//! peer-controlled field, no renderer and no output of `flightrec audit` (table, lines,
//! stderr) ever holds a raw control, Unicode whitespace other than the ASCII space, bidi,
//! format or invisible character, judged by the independent model in `common`.

use clap::Parser;
use flightrec_audit::viewer::{self, AuditArgs};
use flightrec_audit::{AuditEvent, EjabberdFormat, LineFormat, OxFormat};
use flightrec_core::event::{Addr, Peer};
use proptest::prelude::*;

mod common;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    audit: AuditArgs,
}

fn run(list: &[&str]) -> (u8, String, String) {
    let mut all = vec!["flightrec-audit"];
    all.extend_from_slice(list);
    let args = Cli::try_parse_from(all).unwrap().audit;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = viewer::run(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// Every character of `text` outside line breaks, and `allowed`, passes the model.
fn assert_no_raw(what: &str, text: &str, allowed: &[char]) {
    for line in text.lines() {
        let raw: Vec<String> = line
            .chars()
            .filter(|&c| !allowed.contains(&c) && common::must_be_escaped(c))
            .map(|c| format!("U+{:04X}", u32::from(c)))
            .collect();
        assert!(raw.is_empty(), "{what}: raw {raw:?} in {line:?}");
    }
}

/// Hostile text: pieces of the model's characters, layout characters, faked fields.
fn hostile() -> impl Strategy<Value = String> {
    let chars = common::model_chars();
    let piece = prop_oneof![
        3 => (0..chars.len()).prop_map(move |i| chars[i].to_string()),
        1 => any::<char>().prop_map(String::from),
        1 => prop_oneof![
            Just(" "),
            Just("@"),
            Just("/"),
            Just("|"),
            Just(";"),
            Just("="),
            Just(":"),
            Just("\\"),
            Just("\\x20"),
            Just(" from 203.0.113.1 port 1"),
            Just("|ip=203.0.113.1"),
            Just("alice"),
        ]
        .prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

fn peer() -> impl Strategy<Value = Option<Peer>> {
    proptest::option::of(any::<([u8; 4], u16)>().prop_map(|(a, port)| Peer {
        addr: Addr::V4(a),
        port,
    }))
}

fn event() -> impl Strategy<Value = AuditEvent> {
    prop_oneof![
        (hostile(), hostile(), peer(), hostile(), hostile()).prop_map(
            |(user, host, peer, mechanism, reason)| AuditEvent::AuthFailure {
                user,
                host,
                peer,
                mechanism,
                reason,
            }
        ),
        (hostile(), hostile(), peer(), hostile()).prop_map(|(user, host, peer, mechanism)| {
            AuditEvent::AuthSuccess {
                user,
                host,
                peer,
                mechanism,
            }
        }),
        (hostile(), hostile(), peer()).prop_map(|(user, host, peer)| AuditEvent::Logout {
            user,
            host,
            peer
        }),
        (hostile(), hostile(), hostile()).prop_map(|(user, host, resource)| {
            AuditEvent::SessionForbidden {
                user,
                host,
                resource,
            }
        }),
        (hostile(), peer()).prop_map(|(protocol, peer)| AuditEvent::Connect { protocol, peer }),
    ]
}

/// Each layout with the viewer arguments that read it.
fn layouts() -> Vec<(LineFormat, Vec<&'static str>)> {
    let ox = |delimiter, attribute_names| {
        LineFormat::OpenXchange(OxFormat {
            delimiter,
            attribute_names,
            ..OxFormat::default()
        })
    };
    vec![
        (LineFormat::Ejabberd(EjabberdFormat::default()), vec![]),
        (ox('|', true), vec![]),
        (ox(';', false), vec!["--delimiter", ";"]),
        (ox(' ', true), vec!["--delimiter", " "]),
        (ox('\t', false), vec!["--delimiter", "\t"]),
    ]
}

/// 2026-11-23 00:00:00 UTC.
const DAY: i64 = 1_795_392_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Renderers, then the viewer's table, lines and stderr (with the first event's
    /// account as target, so that "none for" and "hosts seen" messages are exercised).
    #[test]
    fn no_output_holds_a_raw_dangerous_character(
        events in proptest::collection::vec(event(), 1..6),
        other_target in hostile(),
    ) {
        for (format, settings) in layouts() {
            // The configured delimiter is layout: tab is the one control allowed, in lines.
            let delimiter_tab: &[char] = match &format {
                LineFormat::OpenXchange(ox) if ox.delimiter == '\t' => &['\t'],
                _ => &[],
            };
            let mut log = String::new();
            for (i, e) in events.iter().enumerate() {
                let start = log.len();
                format.render(i128::from(DAY + i as i64) * 1_000_000_000, "gw", &e.as_decoded(), &mut log).unwrap();
                assert_no_raw("rendered line", &log[start..], delimiter_tab);
                log.push('\n');
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.log");
            std::fs::write(&path, &log).unwrap();
            let p = path.to_str().unwrap();
            let target = match events[0].account() {
                Some((user, host)) => format!("{user}@{}", if host.is_empty() { "gw" } else { host }),
                None => other_target.clone(),
            };
            for output in ["table", "lines"] {
                let allowed = if output == "lines" { delimiter_tab } else { &[] };
                let mut list = settings.clone();
                list.extend(["--output", output, p]);
                let (code, out, err) = run(&list);
                prop_assert_eq!(code, 0, "{}", err);
                assert_no_raw(output, &out, allowed);
                assert_no_raw("stderr", &err, &[]);
                prop_assert_eq!(out.lines().last().unwrap(), format!("{} records displayed", events.len()));
                if output == "lines" {
                    // The lines as written, newest first.
                    let mut written: Vec<&str> = log.lines().collect();
                    written.reverse();
                    let shown: Vec<&str> = out.lines().take(events.len()).collect();
                    prop_assert_eq!(shown, written);
                }
                for t in [&target, &other_target] {
                    if t.is_empty() || t.ends_with('@') {
                        continue;
                    }
                    // `--target=VALUE`: a generated name may start with '-', which
                    // clap would read as another option after a bare `--target`.
                    let target_arg = format!("--target={t}");
                    let mut list = settings.clone();
                    list.extend(["--output", output, &target_arg, p]);
                    let (_, out, err) = run(&list);
                    assert_no_raw(output, &out, allowed);
                    assert_no_raw("stderr", &err, &[]);
                }
            }
        }
    }
}

/// The operator's own arguments are escaped in error messages too.
#[test]
fn argument_errors_are_escaped() {
    let hostile = "x\u{3164}\u{a0}\u{202e}\u{fe0f}\u{1b}[2J\"";
    let time = viewer::parse_time_arg(hostile).unwrap_err();
    assert_no_raw("--since error", &time, &[]);
    assert!(
        time.contains("\\u{3164}\\u{00a0}\\u{202e}\\u{fe0f}\\x1b[2J\\x22"),
        "{time}"
    );
    let zone = hostile
        .parse::<flightrec_audit::UtcOffset>()
        .unwrap_err()
        .to_string();
    assert_no_raw("--tz error", &zone, &[]);
    assert!(zone.contains("\\u{3164}"), "{zone}");
}

/// The model itself: what the issue names is in it.
#[test]
fn the_model_covers_the_named_classes() {
    for c in [
        '\n',
        '\u{1c}',
        '\u{85}',
        '\u{a0}',
        '\u{1680}',
        '\u{2000}',
        '\u{200a}',
        '\u{2028}',
        '\u{202f}',
        '\u{205f}',
        '\u{3000}',
        '\u{202e}',
        '\u{2066}',
        '\u{200b}',
        '\u{2060}',
        '\u{feff}',
        '\u{3164}',
        '\u{fe0f}',
        '\u{e0100}',
        '\u{34f}',
    ] {
        assert!(common::must_be_escaped(c), "U+{:04X}", u32::from(c));
    }
    if common::python_flagged().is_some() {
        for c in ['\u{ad}', '\u{180e}', '\u{e0001}', '\u{e0041}', '\u{110bd}'] {
            assert!(common::must_be_escaped(c), "U+{:04X}", u32::from(c));
        }
    }
    for c in [' ', 'a', '\\', '東', 'é'] {
        assert!(!common::must_be_escaped(c));
    }
}
