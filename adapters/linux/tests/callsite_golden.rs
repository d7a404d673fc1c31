//! The callsite form decodes to the very text, JSON and forensic output of the full form.
//!
//! The same events go through two layers of one subscriber, one recording the full form
//! (target, message, names in every record: the encoding before callsite tables) and one the
//! callsite form. Two dumps are then built with the same dump header and the same record
//! heads (sequence numbers, times, levels, sessions), each with its own payloads (and the
//! callsite form's table frames), and decoded. The outputs are compared byte for byte after
//! masking the byte offsets, the one thing that must differ (the callsite form's records
//! are shorter, so they sit at other offsets).

use std::sync::Arc;

use flightrec_core::frame::{
    parse, FrameWriter, Parsed, FRAME_END, FRAME_HEADER, FRAME_RECORD, MAGIC,
};
use flightrec_core::{Kind, RecordHead};
use flightrec_decode::{Format, Options, Renderer};
use flightrec_linux::{FlightLayer, FlightLogger, FlightRecorder, RecorderOptions};
use tracing_subscriber::prelude::*;

/// A dump's frames: (type, body).
fn frames(dump: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&dump[..8], &MAGIC);
    let mut at = 9;
    let mut out = Vec::new();
    while at < dump.len() {
        match parse(&dump[at..]) {
            Parsed::Whole { ty, body, len } => {
                out.push((ty, dump[at..][body].to_vec()));
                at += len;
            }
            other => panic!("dump frame at {at}: {other:?}"),
        }
    }
    out
}

fn head_and_payload(body: &[u8]) -> (RecordHead, &[u8]) {
    postcard::take_from_bytes::<RecordHead>(body).expect("record head")
}

/// `frames` as a dump, each record's head replaced by `heads`' (kind kept).
fn rebuild(frames: &[(u8, Vec<u8>)], heads: &[RecordHead], header: &[u8], end: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = FrameWriter::new(&mut out);
    w.preamble().unwrap();
    w.frame_bytes(FRAME_HEADER, header, &[]).unwrap();
    let mut i = 0;
    for (ty, body) in frames {
        match *ty {
            FRAME_RECORD => {
                let (head, payload) = head_and_payload(body);
                let head = RecordHead {
                    kind: head.kind,
                    ..heads[i]
                };
                i += 1;
                let mut hb = [0u8; 32];
                let n = flightrec_core::encode::to_slice(&head, &mut hb).unwrap();
                w.frame_bytes(FRAME_RECORD, &hb[..n], payload).unwrap();
            }
            FRAME_HEADER | FRAME_END => {}
            other => w.frame_bytes(other, body, &[]).unwrap(),
        }
    }
    assert_eq!(i, heads.len());
    w.frame_bytes(FRAME_END, end, &[]).unwrap();
    out
}

fn render(dump: &[u8], format: Format) -> (String, flightrec_decode::Stats) {
    let mut r = Renderer::new(Options {
        format,
        ..Options::default()
    });
    let mut out = Vec::new();
    let (stats, _) = flightrec_decode::decode_to(dump, &mut r, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

/// Byte offsets masked: `offset 123`, `"offset":123`, `Dump-Offset: 123`.
fn mask_offsets(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        let next = ["offset\":", "offset ", "Offset: "]
            .iter()
            .filter_map(|k| rest.find(k).map(|i| (i, k.len())))
            .min();
        let Some((i, klen)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..i + klen]);
        rest = &rest[i + klen..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('N');
        }
        rest = &rest[digits..];
    }
    out
}

#[derive(Debug)]
struct Oops;
impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk \"full\"\n\x1b[2J")
    }
}
impl std::error::Error for Oops {}

#[inline(never)]
fn events(i: u64, name: &str) {
    let long = "é".repeat(100 + i as usize);
    tracing::debug!(user = "alice", attempt = i, "login attempt");
    tracing::info!(user = name, "login ok");
    tracing::warn!(reason = "bad password", "login failed");
    tracing::debug!(i, "noise");
    tracing::debug!("connection accepted");
    tracing::trace!(peer = %"10.0.0.1:5", ok = true, ratio = 0.25f64, "formatted {} {}", i, "args");
    // Only arguments: the first value is learnt as the "literal".
    tracing::info!("{}", if i % 2 == 0 { "even" } else { name });
    tracing::error!(
        error = &Oops as &(dyn std::error::Error + 'static),
        big = u128::MAX,
        neg = i128::MIN,
        small = -5i128,
        "failed: {}",
        Oops
    );
    tracing::info!(long = long.as_str(), dbg = ?long, "{long}");
    tracing::info!(target: "a::very::long::target::name::that::goes::on::and::on::past::sixty::four::bytes", "x");
    tracing::debug!(
        a = 1,
        b = 2,
        c = 3,
        d = 4,
        e = 5,
        f = 6,
        g = 7,
        h = 8,
        i2 = 9,
        j = 10,
        k = 11,
        l = 12,
        m = 13,
        n = 14,
        o = 15,
        p = 16,
        q = 17,
        r = 18,
        "many"
    );
    tracing::debug!(user = "bob", message = "message after a field", n = 3);
    tracing::debug!(message = 5u64, other = -1);
    tracing::debug!(only = "fields");
    tracing::info!(ctl = "tab\there \x1b[31m", "control \u{7} chars");
    let span = tracing::info_span!("conn", session = 7 + i);
    let _g = span.enter();
    tracing::info!(user = name, "in a session");
}

fn log_events(logger: &dyn log::Log, i: u64) {
    logger.log(
        &log::Record::builder()
            .level(log::Level::Info)
            .target("gw::log")
            .file_static(Some("src/gw.rs"))
            .line(Some(10))
            .args(format_args!("a literal log line"))
            .build(),
    );
    logger.log(
        &log::Record::builder()
            .level(log::Level::Warn)
            .target("gw::log")
            .file_static(Some("src/gw.rs"))
            .line(Some(11))
            .args(format_args!("formatted {i}"))
            .build(),
    );
    logger.log(
        &log::Record::builder()
            .level(log::Level::Debug)
            .target("gw::nofile")
            .args(format_args!("no static file"))
            .build(),
    );
}

fn recorder() -> Arc<FlightRecorder> {
    FlightRecorder::new(RecorderOptions {
        shards: 1,
        ..RecorderOptions::default()
    })
    .unwrap()
}

#[test]
fn callsite_form_decodes_like_the_full_form() {
    let (full, site) = (recorder(), recorder());
    let subscriber = tracing_subscriber::registry()
        .with(FlightLayer::new(full.clone()).with_callsites(false))
        .with(FlightLayer::new(site.clone()));
    let full_log = FlightLogger::new(full.clone(), None).with_callsites(false);
    let site_log = FlightLogger::new(site.clone(), None);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..4 {
            events(i, if i == 3 { "mallory\n" } else { "carol" });
            log_events(&full_log, i);
            log_events(&site_log, i);
        }
    });
    let full_dump = frames(&full.dump_bytes(&full.manual_order()));
    let site_dump = frames(&site.dump_bytes(&site.manual_order()));
    let heads: Vec<RecordHead> = full_dump
        .iter()
        .filter(|(ty, _)| *ty == FRAME_RECORD)
        .map(|(_, b)| head_and_payload(b).0)
        .collect();
    let site_kinds: Vec<Kind> = site_dump
        .iter()
        .filter(|(ty, _)| *ty == FRAME_RECORD)
        .map(|(_, b)| head_and_payload(b).0.kind)
        .collect();
    assert_eq!(heads.len(), site_kinds.len());
    // Most records took the callsite form (a callsite's first record is in the full form).
    let compact = site_kinds.iter().filter(|k| **k == Kind::CALLSITE).count();
    assert!(
        compact * 4 >= heads.len() * 2,
        "{compact} of {}",
        heads.len()
    );
    assert!(site_dump.iter().any(|(ty, _)| *ty == b'C'));
    let header = &full_dump[0].1;
    let end = &full_dump.last().unwrap().1;
    let old = rebuild(&full_dump, &heads, header, end);
    let new = rebuild(&site_dump, &heads, header, end);
    assert!(new.len() < old.len());
    for format in [Format::Text, Format::Json, Format::Forensic] {
        let (a, sa) = render(&old, format);
        let (b, sb) = render(&new, format);
        assert!(
            !sa.damaged() && !sb.damaged(),
            "{format:?}: {sa:?} {sb:?}\n{b}"
        );
        assert_eq!((sa.records, sa.dumps), (sb.records, sb.dumps));
        let (a, b) = (mask_offsets(&a), mask_offsets(&b));
        if a != b {
            for (x, y) in a.lines().zip(b.lines()) {
                assert_eq!(x, y, "{format:?}");
            }
        }
        assert_eq!(a, b, "{format:?}");
        assert!(a.contains("login attempt"), "{a}");
    }
}

/// A dump whose callsite table is gone: its callsite records degrade to `callsite N` with
/// their raw values, and the decoder reports damage.
#[test]
fn without_the_table_records_show_their_callsite_number() {
    let site = recorder();
    let subscriber = tracing_subscriber::registry().with(FlightLayer::new(site.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..3 {
            tracing::debug!(user = "alice", attempt = i, "login attempt");
        }
    });
    let dump = frames(&site.dump_bytes(&site.manual_order()));
    let heads: Vec<RecordHead> = dump
        .iter()
        .filter(|(ty, _)| *ty == FRAME_RECORD)
        .map(|(_, b)| head_and_payload(b).0)
        .collect();
    let no_table: Vec<(u8, Vec<u8>)> = dump.iter().filter(|(ty, _)| *ty != b'C').cloned().collect();
    let bytes = rebuild(&no_table, &heads, &dump[0].1, &dump.last().unwrap().1);
    let (text, stats) = render(&bytes, Format::Text);
    assert!(stats.damaged());
    assert!(text.contains("msg=\"callsite "), "{text}");
    assert!(text.contains("=\"alice\""), "{text}");
    assert!(text.contains("not in its dump's callsite table"), "{text}");
    // A damaged table frame: reported, and the records degrade the same way.
    let mut bad = dump.clone();
    for (ty, body) in bad.iter_mut() {
        if *ty == b'C' {
            body.truncate(body.len() / 2);
        }
    }
    let bytes = rebuild(&bad, &heads, &dump[0].1, &dump.last().unwrap().1);
    let (text, stats) = render(&bytes, Format::Json);
    assert!(stats.damaged());
    assert!(
        text.contains("callsite table frame checks but does not decode"),
        "{text}"
    );
}
