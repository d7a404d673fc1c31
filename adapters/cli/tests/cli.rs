//! The `flightrec` binary, run as an operator would.

use std::path::PathBuf;
use std::process::{Command, Output};

use flightrec_core::event::AuthFailure;
use flightrec_core::{
    Action, Build, ClockInfo, Level, Recorder, RecorderConfig, SessionId, TriggerConfig,
};

/// A `RecorderSettings` type `$name` for the configuration `$config`.
macro_rules! settings {
    ($name:ident = $config:expr) => {
        struct $name;
        impl flightrec_core::RecorderSettings for $name {
            const CONFIG: flightrec_core::RecorderConfig = $config;
        }
    };
}

fn dump() -> Vec<u8> {
    settings!(
        Settings1 = RecorderConfig {
            trigger: TriggerConfig {
                post_records: 1,
                ..TriggerConfig::DEFAULT
            },
            ..RecorderConfig::DEFAULT
        }
    );
    let rec: Recorder<4096, Settings1> = Recorder::new();
    let s = Some(SessionId(3));
    rec.log(
        10,
        Level::Info,
        s,
        "sshd",
        "connection from 198.51.100.7",
        &[],
    )
    .unwrap();
    let failed = AuthFailure {
        user: "root",
        host: "gw",
        peer: None,
        mechanism: "password",
        reason: "bad",
    };
    assert!(matches!(
        rec.record(20, s, &failed).unwrap(),
        Action::Start(_)
    ));
    let Action::Dump(_) = rec.frame(30, Level::Debug, None, &[1, 2]).unwrap() else {
        panic!()
    };
    let order = rec.take_order().unwrap();
    let mut out = Vec::new();
    let build = Build {
        name: "gw",
        version: "2.1",
        id: &[1, 2, 3, 4],
    };
    rec.dump(
        &order,
        ClockInfo::BOOT_MILLIS,
        &build,
        &mut out,
        &mut [0u8; 512],
    )
    .unwrap();
    out
}

fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("flightrec-cli-{name}"));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flightrec"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn decode_text_ok() {
    let p = file("ok.bin", &dump());
    let o = run(&["decode", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "== dump at offset 0: failed login at +0.020s by record 1; build \"gw\" \"2.1\" id 01020304; records 0..3; lost 0; suppressed 0\n\
         +0.010s INFO  log s=3 target=sshd msg=\"connection from 198.51.100.7\"\n\
         +0.020s WARN  auth-failure s=3 user=\"root\" host=\"gw\" peer=- mechanism=\"password\" reason=\"bad\"\n\
         +0.030s DEBUG frame - len=2 hex=0102\n\
         == end of dump at offset 146: yes; 3 records written, 3 decoded, 0 lost during read-out, 0 outside scope\n"
    );
    // Not a terminal: no colour.
    assert!(!stdout(&o).contains('\x1b'));
}

#[test]
fn decode_json_and_filters() {
    let p = file("json.bin", &dump());
    let o = run(&[
        "decode",
        "--format",
        "json",
        "--level",
        "warn",
        "--session",
        "3",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let objs: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records: Vec<_> = objs.iter().filter(|o| o["type"] == "record").collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["user"], "root");
    let o = run(&[
        "decode",
        "--kind",
        "frame,log",
        "--since",
        "0.015s",
        p.to_str().unwrap(),
    ]);
    let lines: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with('+'))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        vec!["+0.030s DEBUG frame - len=2 hex=0102".to_owned()]
    );
}

#[test]
fn decode_forensic() {
    let p = file("forensic.bin", &dump());
    let o = run(&["decode", "--format", "forensic", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let s = stdout(&o);
    assert!(s.starts_with("-----BEGIN FAILED LOGIN FORENSICS-----\nClient-Address: -\nServer-Address: gw\nElapsed: 0.010s\nProtocol: -\nUser: root\nSession: 3\n"), "{s}");
    assert!(s.ends_with("-----END FAILED LOGIN FORENSICS-----\n"));
}

#[test]
fn damaged_input_exits_1_and_io_errors_exit_2() {
    let mut d = dump();
    let n = d.len();
    d[n - 20] ^= 0xff;
    let damaged = file("damaged.bin", &d);
    let o = run(&["decode", damaged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("!! damaged at offset"));
    let o = run(&["info", damaged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));

    let o = run(&["decode", "/nonexistent/dump.bin"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot open /nonexistent/dump.bin"),
        "{}",
        stderr(&o)
    );
    let o = run(&["decode"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["decode", "--level", "loud", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown level"));
    let o = run(&["decode", "--since", "yesterday", "x"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn info_shows_headers() {
    let mut two = dump();
    two.extend(vec![0xff; 64]);
    two.extend(dump());
    let p = file("info.bin", &two);
    let o = run(&["info", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    assert_eq!(s.matches("dump at offset").count(), 2);
    assert!(
        s.contains("  trigger:    failed login (FAILED LOGIN)\n  time:       +0.020s (record 1)\n"),
        "{s}"
    );
    assert!(s.contains("  build:      gw 2.1 id 01020304\n"));
    assert!(
        s.contains("  records:    3 decoded, 3 written, 0 lost during read-out, 0 outside scope\n")
    );
    let o = run(&["info", "--format", "json", p.to_str().unwrap()]);
    for l in stdout(&o).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["complete"], true);
        assert_eq!(v["build"]["id"], "01020304");
    }
}

#[test]
fn help_on_every_subcommand() {
    for sub in [
        &["--help"][..],
        &["decode", "--help"],
        &["info", "--help"],
        &["audit", "--help"],
    ] {
        let o = run(sub);
        assert_eq!(o.status.code(), Some(0), "{sub:?}");
        assert!(stdout(&o).contains("Usage: flightrec"), "{sub:?}");
    }
}

#[cfg(feature = "defmt")]
#[test]
fn elf_without_defmt_table_is_refused() {
    let p = file("elf.bin", &dump());
    // This test binary is an ELF, but has no .defmt section.
    let me = std::env::current_exe().unwrap();
    let o = run(&["decode", "--elf", me.to_str().unwrap(), p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("has no .defmt section"),
        "{}",
        stderr(&o)
    );
    let o = run(&["decode", "--force-elf", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "--force-elf needs --elf");
}

#[cfg(feature = "defmt")]
#[test]
fn elf_identity_and_check() {
    // A GNU build-id note where there is one (rustc's Linux binaries have one) ...
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let id = flightrec_cli::elf::identity(&me);
    assert!(!id.is_empty());
    // ... else SHA-256 of the file.
    assert_eq!(flightrec_cli::elf::identity(b"not an elf").len(), 32);

    let bytes = dump();
    let mut dec = flightrec_decode::Decoder::new(&bytes[..]);
    let Some(flightrec_decode::Item::DumpStart { header, .. }) = dec.next().unwrap() else {
        panic!()
    };
    assert!(flightrec_cli::check_elf(&header, 0, &[1, 2, 3, 4], false).is_ok());
    let refused = flightrec_cli::check_elf(&header, 0, &[9, 9], false).unwrap_err();
    assert!(
        refused.contains("build identity 0909 differs from the dump's 01020304"),
        "{refused}"
    );
    assert!(refused.contains("--force-elf"));
    assert!(flightrec_cli::check_elf(&header, 0, &[9, 9], true).is_ok());
    let mut no_id = header.clone();
    no_id.build_id.clear();
    assert!(flightrec_cli::check_elf(&no_id, 0, &[9, 9], false)
        .unwrap_err()
        .contains("no build identity"));
}

#[cfg(feature = "defmt")]
fn frame_dump(build_id: &[u8], frames: &[&[u8]]) -> Vec<u8> {
    let rec: Recorder<4096> = Recorder::new();
    for (i, f) in frames.iter().enumerate() {
        rec.frame(i as u64, Level::Warn, None, f).unwrap();
    }
    let Action::Dump(_) = rec.fire(flightrec_core::Reason::UntimelyDeath, 99) else {
        panic!("a death dumps at once")
    };
    let order = rec.take_order().unwrap();
    let build = Build {
        name: "defmt-fw",
        version: "0.0.0",
        id: build_id,
    };
    let mut out = Vec::new();
    rec.dump(
        &order,
        ClockInfo::BOOT_MILLIS,
        &build,
        &mut out,
        &mut [0u8; 512],
    )
    .unwrap();
    out
}

#[cfg(feature = "defmt")]
#[test]
fn defmt_frames_decode_with_the_matching_elf_only() {
    let elf_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/defmt-fw.elf");
    let elf = std::fs::read(elf_path).unwrap();
    // The firmware logs one line: warn!("door {=u8} opened by {=str}", 3, "alice").
    let table = defmt_decoder::Table::parse(&elf).unwrap().unwrap();
    let index: Vec<usize> = table.indices().collect();
    assert_eq!(index.len(), 1);
    let mut frame = u16::try_from(index[0]).unwrap().to_le_bytes().to_vec();
    frame.push(3);
    frame.extend(5u32.to_le_bytes());
    frame.extend(b"alice");
    let id = flightrec_cli::elf::identity(&elf);

    let good = file("defmt-good.bin", &frame_dump(&id, &[&frame]));
    let o = run(&["decode", "--elf", elf_path, good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("+0.000s WARN  frame - msg=\"door 3 opened by alice\"\n"),
        "{}",
        stdout(&o)
    );

    // A dump written by another build: refused with a clear message, unless forced.
    let other = file("defmt-other.bin", &frame_dump(&[0xde, 0xad], &[&frame]));
    let o = run(&["decode", "--elf", elf_path, other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("differs from the dump's dead"),
        "{}",
        stderr(&o)
    );
    assert!(!stdout(&o).contains("door"));
    let o = run(&[
        "decode",
        "--elf",
        elf_path,
        "--force-elf",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("msg=\"door 3 opened by alice\""));

    // A frame cut short: shown as bytes with the reason, exit 1.
    let cut = file("defmt-cut.bin", &frame_dump(&id, &[&frame[..5]]));
    let o = run(&[
        "decode",
        "--elf",
        elf_path,
        "--format",
        "json",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("\"undecodable\":\"defmt frame cut short\""),
        "{}",
        stdout(&o)
    );
}

#[test]
fn no_dump_found_says_so() {
    let p = file("nodump.bin", &[0xff; 1000]);
    for cmd in ["decode", "info"] {
        let o = run(&[cmd, p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert!(stderr(&o).contains("no dump found"), "{cmd}");
    }
}

#[test]
fn decodes_a_flash_store_image_with_a_dump_across_pages() {
    use flightrec_core::{DumpHeader, Reason};
    use flightrec_flash::{FlashStore, RamFlash};

    let rec: Recorder<8192> = Recorder::new();
    for i in 0..40u64 {
        let msg = format!("step {i} of the pairing handshake");
        rec.log(i, Level::Debug, None, "pair", &msg, &[]).unwrap();
    }
    let header = DumpHeader {
        reason: Reason::Manual,
        detail: "",
        trigger_time: 40,
        trigger_seq: None,
        clock: ClockInfo::BOOT_MILLIS,
        first_seq: 0,
        next_seq: 0,
        lost: 0,
        suppressed: 0,
        scope: None,
        index: 0,
        capacity: 0,
        build: Build {
            name: "fw",
            version: "1",
            id: &[],
        },
    };
    // 256-byte pages: the dump (about 2 KiB) spans several, each with its own page header,
    // so the wire bytes are not contiguous in the image.
    let mut mem = vec![0xFF; 16 * 256];
    let mut store = FlashStore::mount(RamFlash::<256, 4>::new(&mut mem), 0..16 * 256).unwrap();
    let info = store.store(&rec, header, &mut [0u8; 256]).unwrap();
    assert!(info.pages > 2, "the dump must span pages: {info:?}");
    let image = file("flash.img", &mem);

    let o = run(&["decode", image.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    for i in 0..40 {
        assert!(
            text.contains(&format!("msg=\"step {i} of the pairing handshake\"")),
            "{text}"
        );
    }
}
