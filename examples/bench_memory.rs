//! Client memory benchmark: resident memory per session, per one-shot watch and per
//! persistent watch, for our client and the `zookeeper-client` crate. Prints one JSON line per
//! (client, workload):
//!
//! `{"client","workload","count","rss_delta_kib","bytes_per_item"}`
//!
//! ```sh
//! cargo run --release -p zk-examples --example bench_memory                   # boots Apache ZooKeeper
//! cargo run --release -p zk-examples --example bench_memory -- 127.0.0.1:2181 # any server (3.6+)
//! ```
//!
//! Each client runs in a child process of its own (this binary with `--child NAME ADDR`), so
//! that one client's allocations never count for the other; the figures are growth of the
//! child's resident set (`VmRSS` in `/proc/self/status`) over a baseline taken after one
//! session connected and the nodes were created. Workloads, in order, each keeping what the
//! previous ones made alive: (1) 200 more sessions, idle; (2) 10 000 one-shot data watches on
//! 10 000 distinct nodes (the watcher objects held by the caller); (3) 10 000 persistent
//! watches on the same nodes.

use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SESSIONS: usize = 200;
const NODES: usize = 10_000;
const IN_FLIGHT: usize = 500;

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn report(client: &str, workload: &str, count: usize, before_kib: u64) -> u64 {
    let now = rss_kib();
    let delta = now.saturating_sub(before_kib);
    println!(
        "{{\"client\":\"{client}\",\"workload\":\"{workload}\",\"count\":{count},\"rss_delta_kib\":{delta},\"bytes_per_item\":{}}}",
        delta * 1024 / count.max(1) as u64
    );
    now
}

async fn ours(addr: String) -> Result<(), Error> {
    const NAME: &str = "zk-rs";
    use zk_client::{AddWatchMode, Client, CreateMode, CreateOptions};
    let client = Client::connect(&addr).await?;
    let root = format!("/bench-mem-{}", std::process::id());
    let persistent = CreateOptions::new(CreateMode::Persistent);
    client.create(&root, b"", &persistent).await?;
    let paths: Vec<String> = (0..NODES).map(|i| format!("{root}/n{i}")).collect();
    stream::iter(paths.iter().map(|p| client.create(p, b"x", &persistent)))
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;

    let base = rss_kib();
    let sessions = stream::iter((0..SESSIONS).map(|_| Client::connect(&addr)))
        .buffer_unordered(50)
        .try_collect::<Vec<_>>()
        .await?;
    let after_sessions = report(NAME, "sessions_idle", SESSIONS, base);

    let oneshot = stream::iter(paths.iter().map(|p| client.get_data_watch(p)))
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    let after_oneshot = report(NAME, "oneshot_data_watches", NODES, after_sessions);

    let streams = stream::iter(
        paths
            .iter()
            .map(|p| client.add_watch(p, AddWatchMode::Persistent)),
    )
    .buffer_unordered(IN_FLIGHT)
    .try_collect::<Vec<_>>()
    .await?;
    report(NAME, "persistent_watches", NODES, after_oneshot);

    drop((oneshot, streams, sessions));
    stream::iter(paths.iter().map(|p| client.delete(p, None)))
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    client.delete(&root, None).await?;
    client.close().await;
    Ok(())
}

async fn theirs(addr: String) -> Result<(), Error> {
    const NAME: &str = "zookeeper-client-0.11";
    use zookeeper_client::{Acls, AddWatchMode, Client, CreateMode};
    let client = Client::connect(&addr).await?;
    let root = format!("/bench-mem-{}", std::process::id());
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.create(&root, b"", &persistent).await?;
    let paths: Vec<String> = (0..NODES).map(|i| format!("{root}/n{i}")).collect();
    stream::iter(paths.iter().map(|p| client.create(p, b"x", &persistent)))
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;

    let base = rss_kib();
    let sessions = stream::iter((0..SESSIONS).map(|_| Client::connect(&addr)))
        .buffer_unordered(50)
        .try_collect::<Vec<_>>()
        .await?;
    let after_sessions = report(NAME, "sessions_idle", SESSIONS, base);

    let oneshot = stream::iter(paths.iter().map(|p| client.get_and_watch_data(p)))
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    let after_oneshot = report(NAME, "oneshot_data_watches", NODES, after_sessions);

    let streams = stream::iter(
        paths
            .iter()
            .map(|p| client.watch(p, AddWatchMode::Persistent)),
    )
    .buffer_unordered(IN_FLIGHT)
    .try_collect::<Vec<_>>()
    .await?;
    report(NAME, "persistent_watches", NODES, after_oneshot);

    drop((oneshot, streams, sessions));
    stream::iter(paths.iter().map(|p| client.delete(p, None)))
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await?;
    client.delete(&root, None).await?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let [flag, name, addr] = args.as_slice() {
        if flag == "--child" {
            return runtime.block_on(async {
                match name.as_str() {
                    "zk-rs" => ours(addr.clone()).await,
                    _ => theirs(addr.clone()).await,
                }
            });
        }
    }
    runtime.block_on(driver(args.first().cloned()))
}

async fn driver(addr: Option<String>) -> Result<(), Error> {
    let _server;
    let addr = match addr {
        Some(addr) => addr,
        None => {
            eprintln!("booting Apache ZooKeeper 3.8 (Debian's jars) on a free loopback port ...");
            // maxClientCnxns=0: the sessions workload opens more than Apache's 60 per IP.
            let config = zk_testkit::ApacheConfig::new()
                .tick_time(Duration::from_millis(2000))
                .config_line("maxClientCnxns=0");
            let server = zk_testkit::ApacheServer::start_with(config).await?;
            let addr = server.connect_string();
            _server = server;
            addr
        }
    };
    let me = std::env::current_exe()?;
    for client in ["zk-rs", "zookeeper-client-0.11"] {
        let status = tokio::process::Command::new(&me)
            .args(["--child", client, &addr])
            .status()
            .await?;
        if !status.success() {
            return Err(format!("{client}: child exited with {status}").into());
        }
    }
    Ok(())
}
