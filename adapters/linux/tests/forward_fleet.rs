//! A fleet-wide ban: three gateway processes forward over RELP to one rsyslogd running
//! the shipped collector config (adapters/linux/collector/flightrec-collector.conf); one
//! address fails twice on each; the shipped fail2ban filter, on the collector's rendered
//! fleet file, gives that address 6 matches.

#[path = "../examples/support/client.rs"]
mod client;
mod collector;
mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use collector::{Collector, Input};

fn gateway_config(host: &str, port: u16, spool: &Path) -> String {
    format!(
        r#"
host = "{host}"
[trigger]
failed_login = false
[dump]
path = "dumps/d-{{pid}}.flr"
[audit]
path = "audit/@HOST@/audit.log"
format = {{ style = "ejabberd" }}
[forward]
collector = "relp://127.0.0.1:{port}"
spool = "{}"
reconnect_max_ms = 500
"#,
        spool.display()
    )
}

/// The shipped collector config with its paths under `dir` and its inputs on 127.0.0.1.
fn collector_config(dir: &Path, relp: u16, tcp: u16) -> String {
    let shipped = include_str!("../collector/flightrec-collector.conf");
    let text = shipped
        .replace(
            "/var/log/flightrec",
            &dir.join("logs").display().to_string(),
        )
        .replace(
            "input(type=\"imrelp\" port=\"2514\"",
            &format!("input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{relp}\""),
        )
        .replace(
            "input(type=\"imtcp\" port=\"1514\"",
            &format!("input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\""),
        );
    assert!(text.contains(&relp.to_string()) && text.contains(&tcp.to_string()));
    format!(
        "global(workDirectory=\"{}\" maxMessageSize=\"64k\")\n{text}",
        dir.join("work").display()
    )
}

#[test]
fn three_gateways_one_address_six_matches() {
    if !collector::available(&Input::Relp) || !common::have_tool("fail2ban-regex") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("collector");
    let port = collector::free_port();
    let fleet = cdir.join("logs/fleet-audit.log");
    let c = Collector::with_config(
        &cdir,
        port,
        &collector_config(&cdir, port, collector::free_port()),
        &fleet,
    );
    let attacker: IpAddr = "127.0.0.9".parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut gateways = Vec::new();
    for host in ["gw1", "gw2", "gw3"] {
        let gdir = dir.path().join(host);
        std::fs::create_dir_all(&gdir).unwrap();
        let config = gateway_config(host, port, &gdir.join("spool"));
        let gw = common::GatewayProcess::spawn(&gdir, &config, "alice@example.org:right\n");
        rt.block_on(async {
            for _ in 0..2 {
                let mut cl = client::Client::connect_from(gw.addr, attacker)
                    .await
                    .unwrap();
                assert!(!cl.login(b"alice", b"example.org", b"wrong").await.unwrap());
            }
            // A success from elsewhere: forwarded, never a match.
            let mut ok = client::Client::connect_from(gw.addr, "127.0.0.2".parse().unwrap())
                .await
                .unwrap();
            assert!(ok.login(b"alice", b"example.org", b"right").await.unwrap());
            ok.logout().await.unwrap();
        });
        gateways.push(gw);
    }
    // Wait for the six failures at the collector.
    let end = Instant::now() + Duration::from_secs(30);
    while collector::lines_of(&fleet)
        .iter()
        .filter(|l| l.contains(" Failed "))
        .count()
        < 6
    {
        assert!(
            Instant::now() < end,
            "collector has {:?}",
            collector::lines_of(&fleet)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for gw in gateways {
        gw.stop();
    }
    // Per gateway: raw RFC 5424 and rendered files.
    for host in ["gw1", "gw2", "gw3"] {
        let raw = collector::lines_of(&cdir.join(format!("logs/raw/{host}.log")));
        let msgs = collector::messages(&raw);
        assert!(msgs.iter().all(|m| m.hostname.as_deref() == Some(host)));
        let rendered = collector::lines_of(&cdir.join(format!("logs/audit/{host}.log")));
        assert_eq!(
            rendered.iter().filter(|l| l.contains(" Failed ")).count(),
            2,
            "{rendered:?}"
        );
        // The rendered lines are the gateway's own audit lines.
        // (connections have no virtual host: they are in the gateway's own host's file)
        let own: String = ["example.org", host]
            .iter()
            .map(|h| {
                let path = dir.path().join(host).join(format!("audit/{h}/audit.log"));
                std::fs::read_to_string(path).unwrap()
            })
            .collect();
        for line in &rendered {
            assert!(own.lines().any(|l| l == line), "{line:?} not in {own}");
        }
    }
    let filter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/fail2ban/flightrec-ejabberd.conf");
    let out = std::process::Command::new("fail2ban-regex")
        .args(["-o", "<ip>"])
        .arg(&fleet)
        .arg(&filter)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ips: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(ips, ["127.0.0.9"; 6], "{stdout}");
    drop(c);
}
