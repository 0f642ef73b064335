//! `zk-server-lite <zoo.cfg>`: a standalone ZooKeeper-compatible server configured by a
//! standard `zoo.cfg` (see `zk_server_lite::config`). Stops on Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use zk_server_lite::Server;
use zk_server_lite::config::Config;

fn usage() -> ExitCode {
    eprintln!("usage: zk-server-lite <zoo.cfg>");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        return usage();
    };
    if path == "-h" || path == "--help" {
        return usage();
    }
    let path = PathBuf::from(path);
    let cfg = match Config::load(&path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("zk-server-lite: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cfg.servers.len() > 1 {
        eprintln!(
            "zk-server-lite: {} server.N lines found; quorum mode is not implemented yet, running standalone",
            cfg.servers.len()
        );
    }
    let server = match Server::builder().config(&cfg).start().await {
        Ok(server) => server,
        Err(e) => {
            eprintln!(
                "zk-server-lite: cannot listen on {}: {e}",
                cfg.client_addr()
            );
            return ExitCode::FAILURE;
        }
    };
    eprintln!("zk-server-lite: serving clients on {}", server.addr());
    wait_for_signal().await;
    server.stop().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
