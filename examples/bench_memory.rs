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

type BoxFut<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// What the measurement needs from a client; each call issues its request when called, so
/// many of these futures in flight pipeline on one connection. Watchers come back as the
/// client's own types, to be held alive.
trait MemClient: Sized + Send + Sync + 'static {
    const NAME: &'static str;
    /// What a one-shot data watch returns.
    type Watch: Send;
    /// A persistent watcher.
    type Stream: Send;
    fn connect(addr: &str) -> BoxFut<Self>;
    fn create(&self, path: &str) -> BoxFut<()>;
    fn data_watch(&self, path: &str) -> BoxFut<Self::Watch>;
    fn persistent_watch(&self, path: &str) -> BoxFut<Self::Stream>;
    fn delete(&self, path: &str) -> BoxFut<()>;
    fn close(self) -> BoxFut<()>;
}

struct Ours(zk_client::Client);

impl MemClient for Ours {
    const NAME: &'static str = "zk-rs";
    type Watch = (bytes::Bytes, zk_client::Stat, zk_client::OneshotWatcher);
    type Stream = zk_client::PersistentWatcher;
    fn connect(addr: &str) -> BoxFut<Self> {
        let addr = addr.to_owned();
        Box::pin(async move { Ok(Ours(zk_client::Client::connect(&addr).await?)) })
    }
    fn create(&self, path: &str) -> BoxFut<()> {
        let opts = zk_client::CreateOptions::new(zk_client::CreateMode::Persistent);
        let f = self.0.create(path, b"x", &opts);
        Box::pin(async move { f.await.map(drop).map_err(Into::into) })
    }
    fn data_watch(&self, path: &str) -> BoxFut<Self::Watch> {
        let f = self.0.get_data_watch(path);
        Box::pin(async move { Ok(f.await?) })
    }
    fn persistent_watch(&self, path: &str) -> BoxFut<Self::Stream> {
        let f = self.0.add_watch(path, zk_client::AddWatchMode::Persistent);
        Box::pin(async move { Ok(f.await?) })
    }
    fn delete(&self, path: &str) -> BoxFut<()> {
        let f = self.0.delete(path, None);
        Box::pin(async move { f.await.map_err(Into::into) })
    }
    fn close(self) -> BoxFut<()> {
        Box::pin(async move {
            self.0.close().await;
            Ok(())
        })
    }
}

/// kezhuw's `zookeeper-client`. Its futures borrow the client, so each call works on a clone.
struct Theirs(zookeeper_client::Client);

impl MemClient for Theirs {
    const NAME: &'static str = "zookeeper-client-0.11";
    type Watch = (
        Vec<u8>,
        zookeeper_client::Stat,
        zookeeper_client::OneshotWatcher,
    );
    type Stream = zookeeper_client::PersistentWatcher;
    fn connect(addr: &str) -> BoxFut<Self> {
        let addr = addr.to_owned();
        Box::pin(async move { Ok(Theirs(zookeeper_client::Client::connect(&addr).await?)) })
    }
    fn create(&self, path: &str) -> BoxFut<()> {
        let (client, path) = (self.0.clone(), path.to_owned());
        Box::pin(async move {
            let mode = zookeeper_client::CreateMode::Persistent;
            let opts = mode.with_acls(zookeeper_client::Acls::anyone_all());
            client.create(&path, b"x", &opts).await?;
            Ok(())
        })
    }
    fn data_watch(&self, path: &str) -> BoxFut<Self::Watch> {
        let (client, path) = (self.0.clone(), path.to_owned());
        Box::pin(async move { Ok(client.get_and_watch_data(&path).await?) })
    }
    fn persistent_watch(&self, path: &str) -> BoxFut<Self::Stream> {
        let (client, path) = (self.0.clone(), path.to_owned());
        let mode = zookeeper_client::AddWatchMode::Persistent;
        Box::pin(async move { Ok(client.watch(&path, mode).await?) })
    }
    fn delete(&self, path: &str) -> BoxFut<()> {
        let f = self.0.delete(path, None);
        Box::pin(async move { f.await.map_err(Into::into) })
    }
    fn close(self) -> BoxFut<()> {
        Box::pin(async move {
            drop(self.0);
            Ok(())
        })
    }
}

/// Awaits every future, at most [`IN_FLIGHT`] at a time, keeping the outputs.
async fn all<T>(futures: impl Iterator<Item = BoxFut<T>>) -> Result<Vec<T>, Error> {
    stream::iter(futures)
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await
}

async fn measure<C: MemClient>(addr: String) -> Result<(), Error> {
    let client = C::connect(&addr).await?;
    let root = format!("/bench-mem-{}", std::process::id());
    client.create(&root).await?;
    let paths: Vec<String> = (0..NODES).map(|i| format!("{root}/n{i}")).collect();
    all(paths.iter().map(|p| client.create(p))).await?;

    let base = rss_kib();
    let sessions = stream::iter((0..SESSIONS).map(|_| C::connect(&addr)))
        .buffer_unordered(50)
        .try_collect::<Vec<_>>()
        .await?;
    let after_sessions = report(C::NAME, "sessions_idle", SESSIONS, base);
    let oneshot = all(paths.iter().map(|p| client.data_watch(p))).await?;
    let after_oneshot = report(C::NAME, "oneshot_data_watches", NODES, after_sessions);
    let streams = all(paths.iter().map(|p| client.persistent_watch(p))).await?;
    report(C::NAME, "persistent_watches", NODES, after_oneshot);

    drop((oneshot, streams, sessions));
    all(paths.iter().map(|p| client.delete(p))).await?;
    client.delete(&root).await?;
    client.close().await
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
                    "zk-rs" => measure::<Ours>(addr.clone()).await,
                    _ => measure::<Theirs>(addr.clone()).await,
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
