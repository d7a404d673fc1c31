//! The demo gateway as a process (tests kill it, rotate its logs, send it signals).
//!
//! `flightrec-gateway --config FILE --users FILE [--listen ADDR] [--dir DIR] [--allow-panic] [--quiet]`
//! prints `listening on ADDR` on stdout once it accepts connections.

#[path = "../../examples/support/gateway.rs"]
mod gateway;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: flightrec-gateway --config FILE --users FILE [--listen ADDR] [--dir DIR] [--allow-panic] [--quiet]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = None;
    let mut users = None;
    let mut listen = "127.0.0.1:0".to_owned();
    let mut dir = None;
    let mut allow_panic = false;
    let mut console = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = args.next().map(PathBuf::from),
            "--users" => users = args.next().map(PathBuf::from),
            "--listen" => listen = args.next().unwrap_or_default(),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--allow-panic" => allow_panic = true,
            "--quiet" => console = false,
            _ => return usage(),
        }
    }
    let (Some(config), Some(users)) = (config, users) else {
        return usage();
    };
    if let Some(dir) = dir {
        if let Err(e) = std::env::set_current_dir(&dir) {
            eprintln!("flightrec-gateway: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let Ok(listen) = listen.parse() else {
        eprintln!("flightrec-gateway: --listen {listen:?} is not an address");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flightrec-gateway: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let opts = gateway::GatewayOptions {
            config,
            users,
            listen,
            allow_panic,
            console,
        };
        let running = match gateway::start(opts).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("flightrec-gateway: {e}");
                return ExitCode::FAILURE;
            }
        };
        // The handler before the line that says the gateway is up: a SIGTERM sent as soon
        // as it is read must stop the gateway cleanly, not kill it.
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("flightrec-gateway: {e}");
                    return ExitCode::FAILURE;
                }
            };
        println!("listening on {}", running.addr);
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        running.task.abort();
        // Exit status 1 when an audit line or a dump was lost (it was said on stderr).
        match running.service.shutdown().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(lost) => {
                eprintln!("flightrec-gateway: {lost}");
                ExitCode::FAILURE
            }
        }
    })
}
