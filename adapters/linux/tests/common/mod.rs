//! A minimal reader of the wire format for tests (core types + postcard), so these tests do
//! not depend on the host decoder.
#![allow(dead_code)]

use flightrec_core::callsite::{self, Callsite, Item};
use flightrec_core::dump::{DumpEnd, DumpHeader, RecordHead, MAGIC};
use flightrec_core::encode::Writer;
use flightrec_core::event::{decode, Decoded, Fields, Value};
use flightrec_core::trigger::Reason;
use flightrec_core::{Kind, Level, SessionId};

#[derive(Debug, Clone)]
pub struct Record {
    pub head: RecordHead,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn decoded(&self) -> Decoded<'_> {
        decode(
            self.head.kind,
            Level::from_u8(self.head.level).unwrap(),
            &self.payload,
        )
        .unwrap()
    }
    /// Log message, if a log record.
    pub fn message(&self) -> Option<String> {
        match self.decoded() {
            Decoded::Log(l) => Some(l.message.to_owned()),
            _ => None,
        }
    }
    pub fn target(&self) -> Option<String> {
        match self.decoded() {
            Decoded::Log(l) => Some(l.target.to_owned()),
            _ => None,
        }
    }
    /// Log fields as (name, displayed value).
    pub fn fields(&self) -> Vec<(String, String)> {
        let f = match self.decoded() {
            Decoded::Log(l) => l.fields,
            Decoded::Custom(c) => c.attributes,
            _ => Fields::NONE,
        };
        f.iter()
            .map(|f| f.unwrap())
            .map(|f| {
                let v = match f.value {
                    Value::Str(s) => s.to_owned(),
                    v => v.to_string(),
                };
                (f.name.to_owned(), v)
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Dump {
    pub reason: Reason,
    pub trigger_seq: Option<u64>,
    pub scope: Option<SessionId>,
    pub suppressed: u32,
    pub lost: u64,
    pub first_seq: u64,
    pub next_seq: u64,
    pub records: Vec<Record>,
    pub end: Option<DumpEnd>,
    /// Frames whose CRC failed.
    pub bad_frames: usize,
}

/// Reads every dump in `bytes` (several may be back to back). Panics on a malformed file:
/// these tests check that what we write is whole.
pub fn parse(bytes: &[u8]) -> Vec<Dump> {
    let mut dumps = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let mut table = Table::new();
        assert_eq!(&bytes[at..at + 8], &MAGIC, "magic at {at}");
        assert_eq!(bytes[at + 8], 1, "version");
        at += 9;
        let mut dump: Option<Dump> = None;
        loop {
            assert_eq!(bytes[at], 0xFE, "sync at {at}");
            let ty = bytes[at + 1];
            let len = u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
            let body = &bytes[at + 4..at + 4 + len];
            let crc = u32::from_le_bytes(bytes[at + 4 + len..at + 8 + len].try_into().unwrap());
            assert_eq!(
                flightrec_core::crc::crc32(&bytes[at + 1..at + 4 + len]),
                crc,
                "crc at {at}"
            );
            at += 8 + len;
            match ty {
                b'H' => {
                    let h: DumpHeader<'_> = postcard::take_from_bytes(body).unwrap().0;
                    dump = Some(Dump {
                        reason: h.reason,
                        trigger_seq: h.trigger_seq,
                        scope: h.scope,
                        suppressed: h.suppressed,
                        lost: h.lost,
                        first_seq: h.first_seq,
                        next_seq: h.next_seq,
                        records: Vec::new(),
                        end: None,
                        bad_frames: 0,
                    });
                }
                b'C' => {
                    let mut rest = body;
                    while !rest.is_empty() {
                        let (site, r) = Callsite::decode(rest).unwrap();
                        rest = r;
                        let names = site.names.iter().map(|n| n.unwrap().to_owned()).collect();
                        let entry = (
                            site.target.to_owned(),
                            site.message.map(str::to_owned),
                            names,
                        );
                        table.insert(site.id, entry);
                    }
                }
                b'R' => {
                    let (mut head, payload): (RecordHead, &[u8]) =
                        postcard::take_from_bytes(body).unwrap();
                    let payload = if head.kind == Kind::CALLSITE {
                        head.kind = Kind::LOG;
                        resolve(&table, payload)
                    } else {
                        payload.to_vec()
                    };
                    dump.as_mut()
                        .unwrap()
                        .records
                        .push(Record { head, payload });
                }
                b'E' => {
                    let e: DumpEnd = postcard::take_from_bytes(body).unwrap().0;
                    dump.as_mut().unwrap().end = Some(e);
                    break;
                }
                t => panic!("unknown frame type {t}"),
            }
        }
        dumps.push(dump.unwrap());
    }
    dumps
}

/// A dump's callsite table: id to target, literal message, names.
type Table = std::collections::HashMap<u32, (String, Option<String>, Vec<String>)>;

/// A callsite record as the log record's payload it stands for (`WIRE-FORMAT.md` section
/// 9), texts as recorded. Panics on a callsite missing from the table.
fn resolve(table: &Table, payload: &[u8]) -> Vec<u8> {
    let (id, items) = callsite::record(payload).unwrap();
    let (target, literal, names) = table.get(&id).expect("callsite in the dump's table");
    let items: Vec<Item<'_>> = items.map(Result::unwrap).collect();
    let mut message = literal.as_deref().unwrap_or("");
    let mut fields = Vec::new();
    let mut dropped = 0;
    for item in &items {
        match *item {
            Item::Message(m) => message = m,
            Item::Field { index, value } => fields.push((names[index as usize].as_str(), value)),
            Item::Dropped(n) => dropped += n,
        }
    }
    if dropped > 0 {
        let f = flightrec_core::event::Field::dropped(dropped);
        fields.push((f.name, f.value));
    }
    let mut out = vec![0u8; 4 * payload.len() + 1024 + target.len() + message.len()];
    let mut w = Writer::new(&mut out, &mut []);
    w.str(target);
    w.str(message);
    w.varint(fields.len() as u64);
    for (name, value) in fields {
        w.str(name);
        w.u8(value.tag());
        match value {
            Value::Str(s) => w.str(s),
            Value::Bytes(b) => w.prefixed(b),
            v => v.encode_body(&mut w),
        }
    }
    assert!(!w.overflowed());
    let n = w.len();
    out.truncate(n);
    out
}

pub fn kinds(d: &Dump) -> Vec<Kind> {
    d.records.iter().map(|r| r.head.kind).collect()
}

/// A gateway process (the `flightrec-gateway` binary) in `dir`.
pub struct GatewayProcess {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl GatewayProcess {
    pub fn spawn(dir: &std::path::Path, config: &str, users: &str) -> GatewayProcess {
        use std::io::BufRead;
        std::fs::write(dir.join("gateway.toml"), config).unwrap();
        std::fs::write(dir.join("users.txt"), users).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flightrec-gateway"))
            .args([
                "--config",
                "gateway.toml",
                "--users",
                "users.txt",
                "--quiet",
                "--allow-panic",
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("gateway said {line:?}"))
            .parse()
            .unwrap();
        GatewayProcess { child, addr }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM (the gateway flushes and exits), then waits.
    pub fn stop(mut self) {
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "gateway exited with {status}");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a real tool is installed. Missing under CI (`CI` set) is a failure; elsewhere
/// the test is skipped with a note.
pub fn have_tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (CI must run: apt-get install -y logrotate fail2ban)"
        );
        eprintln!("SKIPPED: {name} is not installed (apt-get install -y logrotate fail2ban)");
    }
    found
}
