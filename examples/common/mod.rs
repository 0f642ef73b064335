//! What the recipe examples share: where the ZooKeeper comes from (an embedded zk-server-lite,
//! or the connect string given as the first argument), a bounded run that exits non-zero when
//! the demonstration failed, and unique node names so runs against a shared ensemble do not
//! collide.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Any failure of an example.
pub(crate) type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Runs `example` for at most 10 s; prints `FAILED: ...` and exits 1 if it fails or hangs.
pub(crate) async fn run_bounded(example: impl Future<Output = Result<(), Failure>>) {
    match tokio::time::timeout(Duration::from_secs(10), example).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("FAILED: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("FAILED: timed out after 10 s");
            std::process::exit(1);
        }
    }
}

/// The ZooKeeper to use: the connect string from the command line, or an embedded
/// zk-server-lite that lives as long as this value.
pub(crate) struct Target {
    /// The connect string to give clients.
    pub(crate) connect_string: String,
    _server: Option<zk_server_lite::Server>,
}

/// See [`Target`].
pub(crate) async fn target() -> Result<Target, Failure> {
    if let Some(hosts) = std::env::args().nth(1) {
        return Ok(Target {
            connect_string: hosts,
            _server: None,
        });
    }
    let server = zk_server_lite::Server::builder().start().await?;
    println!("started an embedded zk-server-lite on {}", server.addr());
    Ok(Target {
        connect_string: server.connect_string(),
        _server: Some(server),
    })
}

/// A suffix unique to this run.
pub(crate) fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}
