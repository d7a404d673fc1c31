//! The demo gateway: a small TCP login service using flightrec-linux. Shared by the
//! `flightrec-gateway` binary, the `gateway-demo` example and the tests.
//!
//! Protocol, one command per line (fields hex-encoded so that any bytes, newlines included,
//! can be sent as a user name, as a hostile peer would):
//!
//! ```text
//! S: HELLO flightrec-gateway
//! C: LOGIN <hex user> <hex host> <hex password>   S: OK | FAIL
//! C: NOISE <n>                                      (n debug lines, for load tests)
//! C: PANIC                                          (with --allow-panic: the handler panics)
//! C: LOGOUT                                         S: BYE
//! ```
//!
//! Users file: one `user@host:password` per line (plain text: this is a demo).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use flightrec_core::event::{AuthFailure, AuthSuccess, Connect, Logout, Peer};
use flightrec_core::SessionId;
use flightrec_linux::{install_panic_hook, Config, FlightLayer, FlightRecorder, Service};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// How to run the gateway.
pub struct GatewayOptions {
    /// TOML configuration.
    pub config: PathBuf,
    /// Users file.
    pub users: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Accept `PANIC`.
    pub allow_panic: bool,
    /// Show INFO and above on stderr.
    pub console: bool,
}

/// A started gateway.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The writer task.
    pub service: Service,
    /// The recorder.
    pub rec: Arc<FlightRecorder>,
    /// The accept loop.
    pub task: tokio::task::JoinHandle<()>,
}

type Users = Arc<HashMap<(String, String), String>>;

fn load_users(path: &Path) -> Result<Users, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (who, pass) = line
            .split_once(':')
            .ok_or_else(|| format!("{}:{}: expected user@host:password", path.display(), n + 1))?;
        let (user, host) = who
            .split_once('@')
            .ok_or_else(|| format!("{}:{}: expected user@host:password", path.display(), n + 1))?;
        users.insert((user.to_owned(), host.to_owned()), pass.to_owned());
    }
    Ok(Arc::new(users))
}

/// Starts the gateway on the current runtime: recorder, writer task, panic hook, tracing,
/// listener.
pub async fn start(opts: GatewayOptions) -> Result<Running, String> {
    let config = Config::load(&opts.config).map_err(|e| e.to_string())?;
    let users = load_users(&opts.users)?;
    let rec = config.recorder().map_err(|e| e.to_string())?;
    let forwarder = config.forwarder(&rec).map_err(|e| e.to_string())?;
    let service = Service::start_with(
        rec.clone(),
        config.service_options().map_err(|e| e.to_string())?,
        forwarder,
    )
    .map_err(|e| format!("writer task: {e}"))?;
    install_panic_hook(rec.clone());
    let console = opts.console.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(console)
        .with(FlightLayer::new(rec.clone()).with_filter(config.capture_filter()))
        .try_init()
        .map_err(|e| format!("tracing: {e}"))?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "gateway listening");
    let task = tokio::spawn(accept_loop(listener, rec.clone(), users, opts.allow_panic));
    Ok(Running {
        addr,
        service,
        rec,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    rec: Arc<FlightRecorder>,
    users: Users,
    allow_panic: bool,
) {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let session = NEXT.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("conn", session, %peer);
        let rec = rec.clone();
        let users = users.clone();
        tokio::spawn(
            async move {
                if let Err(e) =
                    handle(stream, peer, SessionId(session), &rec, &users, allow_panic).await
                {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            .instrument(span),
        );
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Hex encoding of `b` (for the client).
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const MAX_LINE: u64 = 64 * 1024;

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    session: SessionId,
    rec: &FlightRecorder,
    users: &Users,
    allow_panic: bool,
) -> std::io::Result<()> {
    let s = Some(session);
    let peer_addr = Some(Peer::from(peer));
    rec.record(
        s,
        &Connect {
            protocol: "gw-login",
            peer: peer_addr,
        },
    );
    tracing::debug!("connection accepted");
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"HELLO flightrec-gateway\n").await?;
    let mut user = String::new();
    let mut host = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut read)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let mut words = text.split_whitespace();
        let reply: &[u8] = match words.next() {
            Some("LOGIN") => {
                let fields: Option<Vec<Vec<u8>>> =
                    (0..3).map(|_| words.next().and_then(unhex)).collect();
                let Some([u, h, p]) = fields.and_then(|f| <[Vec<u8>; 3]>::try_from(f).ok()) else {
                    write.write_all(b"ERR\n").await?;
                    continue;
                };
                user = String::from_utf8_lossy(&u).into_owned();
                host = String::from_utf8_lossy(&h).into_owned();
                let pass = String::from_utf8_lossy(&p);
                tracing::debug!(user = user.as_str(), host = host.as_str(), "login attempt");
                match users.get(&(user.clone(), host.clone())) {
                    Some(good) if *good == pass => {
                        tracing::info!(user = user.as_str(), "login ok");
                        rec.record(
                            s,
                            &AuthSuccess {
                                user: &user,
                                host: &host,
                                peer: peer_addr,
                                mechanism: "PLAIN",
                            },
                        );
                        b"OK\n"
                    }
                    known => {
                        let reason = if known.is_some() {
                            "bad password"
                        } else {
                            "unknown user"
                        };
                        tracing::warn!(reason, "login failed");
                        rec.record(
                            s,
                            &AuthFailure {
                                user: &user,
                                host: &host,
                                peer: peer_addr,
                                mechanism: "PLAIN",
                                reason,
                            },
                        );
                        b"FAIL\n"
                    }
                }
            }
            Some("NOISE") => {
                let n: u32 = words
                    .next()
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(0)
                    .min(100_000);
                for i in 0..n {
                    tracing::debug!(i, "noise");
                }
                b"OK\n"
            }
            Some("PANIC") if allow_panic => {
                tracing::debug!("about to fail an invariant");
                let table: Vec<u32> = Vec::new();
                let index = user.len() + 7;
                // The demo's crash: an out-of-bounds index in a session handler.
                let _ = table[index];
                b"UNREACHABLE\n"
            }
            Some("LOGOUT") => {
                rec.record(
                    s,
                    &Logout {
                        user: &user,
                        host: &host,
                        peer: peer_addr,
                    },
                );
                write.write_all(b"BYE\n").await?;
                break;
            }
            _ => b"ERR\n",
        };
        write.write_all(reply).await?;
    }
    tracing::debug!("connection closed");
    Ok(())
}
