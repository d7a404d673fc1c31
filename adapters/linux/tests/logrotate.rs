//! logrotate (create + postrotate kill -HUP) rotates the audit log 20 times while the
//! gateway writes thousands of lines per second: no line lost, none duplicated, none torn.

#[path = "../examples/support/client.rs"]
mod client;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const CONFIG: &str = r#"
host = "gw"
queue = 65536
[trigger]
failed_login = false
[dump]
path = "dumps/d-{pid}.flr"
[audit]
path = "audit/@HOST@/audit.log"
max_bytes = 0
max_age_days = 0
"#;

#[test]
fn logrotate_with_hup_loses_nothing() {
    if !common::have_tool("logrotate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = common::GatewayProcess::spawn(dir.path(), CONFIG, "alice@example.org:right\n");
    let addr = gw.addr;
    let audit = dir.path().join("audit/example.org/audit.log");
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n  rotate 100\n  create 0600\n  missingok\n  nocompress\n  postrotate\n    kill -HUP {}\n  endscript\n}}\n",
            audit.display(),
            gw.pid()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, next) = (stop.clone(), next.clone());
            rt.spawn(async move {
                let mut c = client::Client::connect(addr).await.unwrap();
                // The first line exists before logrotate's first run.
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let user = format!("u{n:07}");
                    assert!(!c
                        .login(user.as_bytes(), b"example.org", b"x")
                        .await
                        .unwrap());
                }
                c.logout().await.unwrap();
            })
        })
        .collect();
    while next.load(Ordering::Relaxed) < 100 || !audit.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let state = dir.path().join("logrotate.state");
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let out = std::process::Command::new("logrotate")
            .arg("-s")
            .arg(&state)
            .arg("-f")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "logrotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        rt.block_on(c).unwrap();
    }
    gw.stop(); // flushes the queue, then exits
    let sent = next.load(Ordering::Relaxed);

    let mut seen = vec![0u32; sent as usize];
    let mut files = 0;
    for n in 0..=100 {
        let p = if n == 0 {
            audit.clone()
        } else {
            audit.with_extension(format!("log.{n}"))
        };
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        files += 1;
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in a torn line",
            p.display()
        );
        for line in text.lines() {
            if line.contains(" Closed session for ") {
                continue;
            }
            // Whole lines only: date, fixed words, our user, the peer, the reason.
            let rest = line.get(19..).unwrap_or("");
            let user = rest
                .strip_prefix(" Failed PLAIN authentication for u")
                .and_then(|r| r.split_once("@example.org from 127.0.0.1 port "))
                .filter(|(_, tail)| tail.ends_with(": unknown\\x20user"))
                .map(|(u, _)| u)
                .unwrap_or_else(|| panic!("torn or foreign line in {}: {line:?}", p.display()));
            let n: usize = user.parse().unwrap();
            seen[n] += 1;
        }
    }
    assert_eq!(files, 21, "20 rotations and the live file");
    let missing: Vec<_> = seen
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == 0)
        .map(|(i, _)| i)
        .collect();
    let doubled: Vec<_> = seen
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 1)
        .map(|(i, _)| i)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {sent} lines lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(doubled.is_empty(), "duplicated: {doubled:?}");
    eprintln!("logrotate: {sent} lines over 20 rotations, none lost");
}
