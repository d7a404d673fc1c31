//! The README's first command: `cargo run -p flightrec-linux --example gateway-demo`.
//!
//! Starts the demo gateway (a TCP login service on 127.0.0.1 using flightrec-linux) in a
//! temporary directory, drives it with a scripted client (good logins, bad passwords, a
//! brute-force burst from one address, a hostile user name, a panic in one session
//! handler), then prints the decoded forensic dumps and the audit lines, and exits.
//! `--keep DIR` works in DIR and leaves the files there. `--forward HOST:PORT` (plain TCP,
//! octet-counted) or `--forward relp://HOST:PORT` also sends the audit events, trigger
//! firings and dump notices to a syslog collector (see the README's "Forwarding to a
//! collector").

#[path = "support/client.rs"]
mod client;
#[path = "support/gateway.rs"]
mod gateway;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use client::{login_once, Client};
use flightrec_decode::{Format, Options, Renderer};

const USERS: &str = "\
# user@host:password (plain text: a demo)
alice@example.org:wonderland
bob@example.org:builder
carol@chat.example:s3cret
";

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

async fn script(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let say = |s: &str| println!("client: {s}");
    let ok = login_once(addr, b"alice", b"example.org", b"wonderland").await?;
    say(&format!(
        "alice@example.org, right password      -> {}",
        if ok { "OK" } else { "FAIL" }
    ));
    let ok = login_once(addr, b"carol", b"chat.example", b"s3cret").await?;
    say(&format!(
        "carol@chat.example, right password     -> {}",
        if ok { "OK" } else { "FAIL" }
    ));
    let ok = login_once(addr, b"bob", b"example.org", b"bulider").await?;
    say(&format!(
        "bob@example.org, wrong password        -> {}",
        if ok { "OK" } else { "FAIL" }
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fails = 0;
    let mut c = Client::connect(addr).await?;
    for guess in [
        "admin", "123456", "password", "root", "letmein", "qwerty", "dragon", "master",
    ] {
        if !c.login(b"admin", b"example.org", guess.as_bytes()).await? {
            fails += 1;
        }
    }
    c.logout().await?;
    say(&format!(
        "brute force: 8 guesses for admin@example.org in one burst from 127.0.0.1 -> {fails} FAIL"
    ));
    let hostile =
        b"mallory\nFailed PLAIN authentication for root@example.org from 1.2.3.4 port 22\x1b[2J";
    let ok = login_once(addr, hostile, b"example.org", b"x").await?;
    say(&format!(
        "hostile user name with a forged line   -> {}",
        if ok { "OK" } else { "FAIL" }
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = Client::connect(addr).await?;
    c.login(b"alice", b"example.org", b"wonderland").await?;
    let reply = c.send("PANIC").await.unwrap_or_default();
    say(&format!(
        "alice sends PANIC: the session handler panics -> connection {}",
        if reply.is_empty() {
            "closed"
        } else {
            "still open?"
        }
    ));
    Ok(())
}

/// The sealing keys (`seal.key` for dumps, `audit-seal.key` for the audit log: the
/// gateway's) and the auditor's keys (`verify.key`,
/// `verify.pub`), as `flightrec keygen` makes them; kept if `seal.key` exists (a kept
/// directory run again continues its chain of epochs).
fn keys(dir: &Path) -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    if dir.join("seal.key").exists() {
        return Ok(());
    }
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    let key = flightrec_core::seal::SealKey::new(secret, 0);
    let text = flightrec_decode::verify::key_file_text(&key);
    let public = flightrec_decode::sign::pub_file_text(&key);
    let audit =
        flightrec_decode::verify::key_file_text(&flightrec_decode::auditseal::audit_key(&key));
    for (name, text) in [
        ("seal.key", &text),
        ("audit-seal.key", &audit),
        ("verify.key", &text),
        ("verify.pub", &public),
    ] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))?
            .write_all(text.as_bytes())?;
    }
    println!(
        "== sealing key made: {0}/verify.key and {0}/verify.pub are the auditor's (`flightrec verify --key {0}/verify.key {0}`)",
        dir.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut keep = None;
    let mut forward = None;
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--keep", Some(dir)) => keep = Some(PathBuf::from(dir)),
            ("--forward", Some(url)) => forward = Some(url),
            _ => {
                eprintln!(
                    "usage: gateway-demo [--keep DIR] [--forward HOST:PORT|relp://HOST:PORT]"
                );
                return ExitCode::from(2);
            }
        }
    }
    // The collector URL goes into the TOML as a string: refuse what would break out of it.
    if forward
        .as_ref()
        .is_some_and(|u| u.contains(['"', '\\', '\n']))
    {
        eprintln!("gateway-demo: bad --forward URL");
        return ExitCode::from(2);
    }
    let temp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gateway-demo: temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = keep.unwrap_or_else(|| temp.path().to_path_buf());
    let setup = std::fs::create_dir_all(&dir)
        .and_then(|()| keys(&dir))
        .and_then(|()| std::fs::write(dir.join("users.txt"), USERS))
        .and_then(|()| {
            let mut config = format!("host = \"gw-demo\"\n{}", include_str!("gateway.toml"));
            if let Some(url) = &forward {
                config.push_str(&format!(
                    "\n[forward]\ncollector = \"{url}\"\nspool = \"forward-spool\"\n\
                     reconnect_max_ms = 1000\n"
                ));
            }
            std::fs::write(dir.join("gateway.toml"), config)
        })
        .and_then(|()| std::env::set_current_dir(&dir));
    if let Err(e) = setup {
        eprintln!("gateway-demo: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    println!("== flightrec gateway demo, working in {}", dir.display());
    // A one-line message instead of the default panic report (and backtrace), after
    // flightrec's hook has dumped.
    std::panic::set_hook(Box::new(|info| {
        println!(
            "gateway: a session handler panicked: {}",
            info.payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("?")
        );
    }));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let running = gateway::start(gateway::GatewayOptions {
            config: "gateway.toml".into(),
            users: "users.txt".into(),
            listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
            allow_panic: true,
            console: false,
        })
        .await?;
        println!("gateway listening on {}\n", running.addr);
        script(running.addr)
            .await
            .map_err(|e| format!("client: {e}"))?;
        // Let the post-trigger windows close, then let the writer finish.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Err(lost) = running.service.flush().await {
            eprintln!("gateway-demo: {lost}");
        }
        let stats = running.rec.stats();
        println!(
            "\ngateway: {} records captured, {} dumps written, {} audit lines, {} queue drops",
            stats.stored,
            running.service.dumps().written(),
            running.service.audit_lines(),
            stats.queue_dropped
        );
        if let Some(url) = &forward {
            // Give the collector a few seconds to take what was spooled.
            for _ in 0..50 {
                match running.service.forward_stats() {
                    Some(f) if f.spool.pending > 0 => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    _ => break,
                }
            }
            if let Some(f) = running.service.forward_stats() {
                println!(
                    "gateway: forwarded to {url}: {} spooled, {} sent, {} acknowledged, {} still \
                     spooled, {} dropped, {} reconnects{}",
                    f.spool.spooled,
                    f.sent,
                    f.acked,
                    f.spool.pending,
                    f.spool.dropped,
                    f.reconnects,
                    f.last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
        running.task.abort();
        running
            .service
            .shutdown()
            .await
            .map_err(|lost| lost.to_string())?;
        Ok::<(), String>(())
    });
    if let Err(e) = result {
        eprintln!("gateway-demo: {e}");
        return ExitCode::FAILURE;
    }
    for path in files_under(Path::new("dumps")) {
        println!(
            "\n== dump file {} (decoded by flightrec-decode)\n",
            path.display()
        );
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("gateway-demo: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let mut renderer = Renderer::new(Options {
            format: Format::Forensic,
            ..Options::default()
        });
        let mut out = std::io::stdout().lock();
        if let Err(e) = flightrec_decode::decode_to(&bytes[..], &mut renderer, &mut out) {
            eprintln!("gateway-demo: decoding {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    for path in files_under(Path::new("audit")) {
        println!("\n== audit file {}\n", path.display());
        match std::fs::read_to_string(&path) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("gateway-demo: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
