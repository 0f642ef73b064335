//! `zk-server-lite [--repair] [--log-format text|json] <zoo.cfg>`: a standalone
//! ZooKeeper-compatible server configured by a standard `zoo.cfg` (see
//! `zk_server_lite::config`). Stops on Ctrl-C / SIGTERM.
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`), as text or as one JSON
//! object per line (`--log-format json` or `zklite.logFormat=json`). At start it logs its
//! configuration and what recovery found (snapshot, zxids replayed, anything cut off),
//! and every refusal or repair. `--repair` (or `zklite.repair=true`) starts over a damaged
//! log by setting aside what follows the damage; see `zk_server_lite::recovery`.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use zk_server_lite::Server;
use zk_server_lite::config::{Config, LogFormat};
use zk_server_lite::recovery::RecoveryError;

const USAGE: &str = "usage: zk-server-lite [--repair] [--log-format text|json] <zoo.cfg>";

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

struct Args {
    cfg: PathBuf,
    repair: bool,
    log_format: Option<LogFormat>,
}

fn parse_args() -> Option<Args> {
    let mut cfg = None;
    let mut repair = false;
    let mut log_format = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return None,
            "--repair" => repair = true,
            "--log-format" => log_format = Some(LogFormat::parse(&args.next()?)?),
            _ if arg.starts_with("--log-format=") => {
                log_format = Some(LogFormat::parse(&arg["--log-format=".len()..])?);
            }
            _ if arg.starts_with('-') => return None,
            _ if cfg.is_none() => cfg = Some(PathBuf::from(arg)),
            _ => return None,
        }
    }
    Some(Args {
        cfg: cfg?,
        repair,
        log_format,
    })
}

fn install_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    let mut cfg = match Config::load(&args.cfg) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("zk-server-lite: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.repair {
        cfg.repair = true;
    }
    if let Some(format) = args.log_format {
        cfg.log_format = format;
    }
    install_logging(cfg.log_format);
    let settings: Vec<String> = cfg
        .conf_lines()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tracing::info!(
        config = %args.cfg.display(),
        settings = %settings.join(" "),
        snap_count = cfg.snap_count,
        four_letter_words = ?cfg.four_letter_whitelist,
        repair = cfg.repair,
        "zk-server-lite starting"
    );
    if cfg.servers.len() > 1 {
        tracing::warn!(
            servers = cfg.servers.len(),
            "server.N lines found; quorum mode is not implemented yet, running standalone"
        );
    }
    let server = match Server::builder().config(&cfg).start().await {
        Ok(server) => server,
        Err(e) => {
            let refused = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<RecoveryError>())
                .is_some();
            if refused {
                // Recovery logged the details; this is the one-line verdict.
                tracing::error!("zk-server-lite not started: {e}");
            } else {
                tracing::error!("zk-server-lite cannot start: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Some(summary) = server.recovery_summary()
        && summary.repaired.is_some()
    {
        tracing::error!(%summary, "started after a REPAIR: data was dropped");
    }
    tracing::info!(addr = %server.addr(), "serving clients");
    wait_for_signal().await;
    tracing::info!("stopping");
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
