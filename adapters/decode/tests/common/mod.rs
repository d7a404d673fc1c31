#![allow(dead_code)]
//! Dumps written by the core, for the decoder's tests.

use flightrec_core::event::{AuthFailure, Connect, Custom, Field, Fields, Peer, Value};
use flightrec_core::Level;
use flightrec_core::{
    Action, Build, ClockInfo, Recorder, RecorderConfig, SessionId, TimeBase, TriggerConfig,
};
use flightrec_decode::{Decoder, Format, Options, Renderer, Stats, Summary};

/// A `RecorderSettings` type `$name` for the configuration `$config`.
macro_rules! settings {
    ($name:ident = $config:expr) => {
        struct $name;
        impl flightrec_core::RecorderSettings for $name {
            const CONFIG: flightrec_core::RecorderConfig = $config;
        }
    };
}

pub const BUILD: Build<'static> = Build {
    name: "demo",
    version: "1.0",
    id: &[0xab, 0xcd, 0xef, 0x01],
};

fn peer() -> Option<Peer> {
    Some(
        "203.0.113.9:40112"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
}

/// A failed-login dump of five records, one of each common kind, with hostile strings.
pub fn failed_login_dump(clock: ClockInfo, base: u64) -> Vec<u8> {
    settings!(
        Settings1 = RecorderConfig {
            trigger: TriggerConfig {
                post_records: 2,
                ..TriggerConfig::DEFAULT
            },
            ..RecorderConfig::DEFAULT
        }
    );
    let rec: Recorder<4096, Settings1> = Recorder::new();
    let s = Some(SessionId(7));
    let fields = [
        Field {
            name: "attempt",
            value: Value::U64(1),
        },
        Field {
            name: "tls",
            value: Value::Bool(false),
        },
    ];
    rec.record(
        base + 1000,
        s,
        &Connect {
            protocol: "ftp",
            peer: peer(),
        },
    )
    .unwrap();
    rec.log(base + 1500, Level::Debug, s, "ftpd", "USER admin", &fields)
        .unwrap();
    let failed = AuthFailure {
        user: "admin\n2026-01-01 fake line\x1b[2J",
        host: "dev1",
        peer: peer(),
        mechanism: "PASS",
        reason: "bad \"password\"",
    };
    assert!(matches!(
        rec.record(base + 2000, s, &failed).unwrap(),
        Action::Start(_)
    ));
    let attrs = [
        Field {
            name: "secs",
            value: Value::I64(-5),
        },
        Field {
            name: "who",
            value: Value::Str("a\"b c"),
        },
    ];
    rec.record(
        base + 2100,
        None,
        &Custom {
            level: Level::Info,
            name: "lockout",
            attributes: Fields::Slice(&attrs),
        },
    )
    .unwrap();
    let Action::Dump(_) = rec.frame(base + 2200, Level::Warn, s, b"hi").unwrap() else {
        panic!("post-trigger window is two records")
    };
    let order = rec.take_order().unwrap();
    let mut out = Vec::new();
    let mut scratch = [0u8; 512];
    rec.dump(&order, clock, &BUILD, &mut out, &mut scratch)
        .unwrap();
    out
}

pub fn boot_dump() -> Vec<u8> {
    failed_login_dump(ClockInfo::BOOT_MILLIS, 0)
}

pub fn unix_dump() -> Vec<u8> {
    failed_login_dump(
        ClockInfo {
            rate_hz: 1000,
            base: TimeBase::Unix,
        },
        1_795_456_800_000,
    )
}

/// Decodes and renders `bytes`, checking the decoder's invariants on the way.
pub fn render(bytes: &[u8], opts: Options) -> (String, Stats, Summary) {
    let mut decoder = Decoder::new(bytes);
    let mut renderer = Renderer::new(opts);
    let mut out = Vec::new();
    let mut last_offset = 0u64;
    let mut items = 0usize;
    while let Some(item) = decoder.next().unwrap() {
        items += 1;
        assert!(
            items <= bytes.len() * 4 + 8,
            "too many items for {} bytes",
            bytes.len()
        );
        let offset = item_offset(&item);
        assert!(offset <= bytes.len() as u64, "offset {offset} beyond input");
        assert!(
            offset + 4 * 65_543 >= last_offset,
            "offsets go far backwards"
        );
        last_offset = last_offset.max(offset);
        renderer.render(&item, &mut out).unwrap();
    }
    renderer.finish(&mut out).unwrap();
    assert_eq!(
        decoder.stats().bytes,
        bytes.len() as u64,
        "all input consumed"
    );
    (
        String::from_utf8(out).expect("output is UTF-8"),
        decoder.stats(),
        renderer.summary(),
    )
}

pub fn text(bytes: &[u8]) -> (String, Stats, Summary) {
    render(bytes, Options::default())
}

pub fn json(bytes: &[u8]) -> (String, Stats, Summary) {
    render(
        bytes,
        Options {
            format: Format::Json,
            ..Options::default()
        },
    )
}

pub fn item_offset(item: &flightrec_decode::Item<'_>) -> u64 {
    item.offset()
}

/// One frame: sync, type, length, body, CRC.
pub fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap().to_le_bytes();
    let mut v = vec![0xFE, ty, len[0], len[1]];
    v.extend_from_slice(body);
    let crc = flightrec_core::crc::crc32(&v[1..]);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}
