//! fail2ban-regex with the shipped filter on audit lines the gateway wrote: every real
//! failure matches with its peer's address, nothing a hostile user name holds does.

#[path = "../examples/support/client.rs"]
mod client;
mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

const CONFIG: &str = r#"
host = "gw"
[trigger]
failed_login = false
[dump]
path = "dumps/d-{pid}.flr"
[audit]
path = "audit/@HOST@/audit.log"
format = { style = "ejabberd" }
"#;

#[test]
fn fail2ban_matches_real_failures_only() {
    if !common::have_tool("fail2ban-regex") {
        return;
    }
    // FLIGHTREC_F2B_FILTER: try another filter file (while developing one).
    let filter = std::env::var_os("FLIGHTREC_F2B_FILTER").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../audit/fail2ban/flightrec-ejabberd.conf")
        },
        std::path::PathBuf::from,
    );
    assert!(
        filter.exists(),
        "the filter {} is missing",
        filter.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let gw = common::GatewayProcess::spawn(dir.path(), CONFIG, "alice@example.org:right\n");
    let addr = gw.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    rt.block_on(async {
        // Real failures from five peers, 1..=5 each; a success from each (never a match).
        for p in 2..=6u8 {
            let ip: IpAddr = format!("127.0.0.{p}").parse().unwrap();
            let mut c = client::Client::connect_from(addr, ip).await.unwrap();
            for _ in 0..(p - 1) {
                assert!(!c.login(b"alice", b"example.org", b"wrong").await.unwrap());
                *expected.entry(ip.to_string()).or_default() += 1;
            }
            assert!(c.login(b"alice", b"example.org", b"right").await.unwrap());
            c.logout().await.unwrap();
        }
        // Hostile names from 127.0.0.9: each is a real failure (of 127.0.0.9) and must not
        // match anything else (1.2.3.4, forged lines).
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for name in client::hostile_names() {
            for host in [&b"example.org"[..], &name[..]] {
                let mut c = client::Client::connect_from(addr, ip).await.unwrap();
                assert!(!c.login(&name, host, b"x").await.unwrap());
                *expected.entry(ip.to_string()).or_default() += 1;
                c.logout().await.unwrap();
            }
        }
    });
    gw.stop();
    // All audit files together (hostile hosts go to the fallback host's file).
    let mut all = String::new();
    for entry in walk(&dir.path().join("audit")) {
        all.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    let log = dir.path().join("all.log");
    std::fs::write(&log, &all).unwrap();
    assert!(!all.contains('\x1b') && !all.contains('\r') && !all.contains('\0'));
    let out = std::process::Command::new("fail2ban-regex")
        .args(["-o", "<ip>"])
        .arg(&log)
        .arg(&filter)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fail2ban-regex failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut matched: BTreeMap<String, usize> = BTreeMap::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        *matched.entry(line.to_owned()).or_default() += 1;
    }
    assert_eq!(
        matched, expected,
        "fail2ban-regex output:\n{stdout}\nlog:\n{all}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
