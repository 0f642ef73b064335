//! Client benchmark: five workloads against one ZooKeeper server, for our client and, in the
//! same run, the `zookeeper-client` crate. Prints one JSON line per (client, workload):
//!
//! `{"client","server","workload","ops","secs","ops_per_sec","p50_us","p99_us","client_cpu_s"}`
//!
//! ```sh
//! cargo run --release -p zk-examples --example bench_client                    # boots Apache ZooKeeper
//! cargo run --release -p zk-examples --example bench_client -- 127.0.0.1:2181  # any server
//! cargo run --release -p zk-examples --example bench_client -- 127.0.0.1:2181 --label zk-server-lite --only zk-rs
//! cargo run --release -p zk-examples --example bench_client -- --multi-thread   # 2-worker runtime
//! ```
//!
//! Each workload runs twice per client, in ABBA order (ours, theirs, theirs, ours), so a
//! server that is still warming up favours neither. Workloads: (a) 2 000 sequential getData of a 100-byte node; (b) 100 000 pipelined getData,
//! at most 1 000 in flight; (c) 20 000 pipelined setData of 100 bytes; (d) 10 000 create
//! ephemeral-sequential then delete them, pipelined (20 000 ops); (e) 200 sessions connected
//! concurrently, then released (handles dropped: `zookeeper-client` has no close that waits
//! for the server, so both clients close in the background here; our `close().await`, which
//! waits for the server to end the session, costs one logged transaction more). Latency is
//! measured per operation from call to reply (for (e), per connect).
//! `client_cpu_s` is this process's user+system CPU time during the workload (from
//! `/proc/self/stat`), i.e. the client's cost alone: the server runs in another process.
//!
//! Our client runs with its defaults; `ZK_BENCH_NO_COALESCE=1` turns its reply coalescing
//! off (see `ClientBuilder::coalesce_replies`).
//!
//! Both clients run on a current-thread tokio runtime by default; `--multi-thread` uses two
//! workers instead. On a 2-core machine that also hosts the server, the multi-threaded
//! runtime spends its extra CPU waking threads: measured here, 2.6-2.9 s of client CPU per
//! 100 000 pipelined reads for `zookeeper-client` (1.6-1.9 s current-thread), 0.65-0.75 s for
//! ours (0.54-0.72 s), whose reply coalescing wakes it far less often.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

type Error = Box<dyn std::error::Error + Send + Sync>;
type BoxFut<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'static>>;

const PAYLOAD: [u8; 100] = [b'x'; 100];
const IN_FLIGHT: usize = 1_000;

/// The operations the workloads need, implemented for each client under test. Each call
/// must issue its request when called (or when first polled), so that keeping many of these
/// futures alive pipelines them on one connection.
trait Bench: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    fn connect(addr: String) -> BoxFut<Self>;
    fn get(&self, path: &str) -> BoxFut<()>;
    fn set(&self, path: &str) -> BoxFut<()>;
    fn create_seq(&self, prefix: &str) -> BoxFut<String>;
    fn create_persistent(&self, path: &str) -> BoxFut<()>;
    fn delete(&self, path: &str) -> BoxFut<()>;
    /// Closes the session, waiting for the server where the client can.
    fn close(self) -> BoxFut<()>;
    /// Drops the handle: the client closes the session in the background.
    fn release(self) -> BoxFut<()>;
}

#[derive(Clone)]
struct Ours(zk_client::Client);

impl Bench for Ours {
    const NAME: &'static str = "zk-rs";
    fn connect(addr: String) -> BoxFut<Self> {
        Box::pin(async move {
            let mut builder = zk_client::Client::builder(addr);
            if std::env::var_os("ZK_BENCH_NO_COALESCE").is_some() {
                builder = builder.coalesce_replies(None);
            }
            Ok(Ours(builder.connect().await?))
        })
    }
    fn get(&self, path: &str) -> BoxFut<()> {
        let f = self.0.get_data(path);
        Box::pin(async move { f.await.map(drop).map_err(Into::into) })
    }
    fn set(&self, path: &str) -> BoxFut<()> {
        let f = self.0.set_data(path, &PAYLOAD, None);
        Box::pin(async move { f.await.map(drop).map_err(Into::into) })
    }
    fn create_seq(&self, prefix: &str) -> BoxFut<String> {
        let opts = zk_client::CreateOptions::new(zk_client::CreateMode::EphemeralSequential);
        let f = self.0.create(prefix, &PAYLOAD, &opts);
        Box::pin(async move { Ok(f.await?.0) })
    }
    fn create_persistent(&self, path: &str) -> BoxFut<()> {
        let opts = zk_client::CreateOptions::new(zk_client::CreateMode::Persistent);
        let f = self.0.create(path, &PAYLOAD, &opts);
        Box::pin(async move {
            match f.await {
                Ok(_) | Err(zk_client::Error::NodeExists) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
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
    fn release(self) -> BoxFut<()> {
        Box::pin(async move {
            drop(self.0);
            Ok(())
        })
    }
}

/// kezhuw's `zookeeper-client`, the best-known async Rust client.
#[derive(Clone)]
struct Theirs(zookeeper_client::Client);

impl Bench for Theirs {
    const NAME: &'static str = "zookeeper-client-0.11";
    fn connect(addr: String) -> BoxFut<Self> {
        Box::pin(async move { Ok(Theirs(zookeeper_client::Client::connect(&addr).await?)) })
    }
    fn get(&self, path: &str) -> BoxFut<()> {
        let f = self.0.get_data(path);
        Box::pin(async move { f.await.map(drop).map_err(Into::into) })
    }
    fn set(&self, path: &str) -> BoxFut<()> {
        let f = self.0.set_data(path, &PAYLOAD, None);
        Box::pin(async move { f.await.map(drop).map_err(Into::into) })
    }
    fn create_seq(&self, prefix: &str) -> BoxFut<String> {
        let (client, prefix) = (self.0.clone(), prefix.to_owned());
        Box::pin(async move {
            let mode = zookeeper_client::CreateMode::EphemeralSequential;
            let opts = mode.with_acls(zookeeper_client::Acls::anyone_all());
            let (_, seq) = client.create(&prefix, &PAYLOAD, &opts).await?;
            Ok(format!("{prefix}{seq}"))
        })
    }
    fn create_persistent(&self, path: &str) -> BoxFut<()> {
        let (client, path) = (self.0.clone(), path.to_owned());
        Box::pin(async move {
            let mode = zookeeper_client::CreateMode::Persistent;
            let opts = mode.with_acls(zookeeper_client::Acls::anyone_all());
            match client.create(&path, &PAYLOAD, &opts).await {
                Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
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
    fn release(self) -> BoxFut<()> {
        self.close()
    }
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        // Linux reports in USER_HZ, which is 100 on every mainstream configuration.
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

struct Report {
    ops: usize,
    secs: f64,
    cpu: f64,
    latencies_us: Vec<u64>,
}

fn print(client: &str, server: &str, workload: &str, mut r: Report) {
    r.latencies_us.sort_unstable();
    let pct = |p: f64| -> u64 {
        if r.latencies_us.is_empty() {
            return 0;
        }
        let i = ((r.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        r.latencies_us[i]
    };
    println!(
        "{{\"client\":\"{client}\",\"server\":\"{server}\",\"workload\":\"{workload}\",\"ops\":{},\"secs\":{:.3},\"ops_per_sec\":{:.0},\"p50_us\":{},\"p99_us\":{},\"client_cpu_s\":{:.2}}}",
        r.ops,
        r.secs,
        r.ops as f64 / r.secs,
        pct(0.50),
        pct(0.99),
        r.cpu
    );
}

/// Runs `ops` operations made by `make(i)`, at most `window` in flight, timing each.
async fn pipelined<T, F>(ops: usize, window: usize, mut make: F) -> Result<(Report, Vec<T>), Error>
where
    F: FnMut(usize) -> BoxFut<T>,
    T: Send + 'static,
{
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(ops);
    let mut outputs = Vec::with_capacity(ops);
    let mut running = FuturesUnordered::new();
    let mut issued = 0;
    while issued < ops || !running.is_empty() {
        while issued < ops && running.len() < window {
            let t0 = Instant::now();
            let fut = make(issued);
            running.push(async move { (fut.await, t0.elapsed()) });
            issued += 1;
        }
        if let Some((result, took)) = running.next().await {
            outputs.push(result?);
            latencies.push(took.as_micros() as u64);
        }
    }
    let report = Report {
        ops,
        secs: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu0,
        latencies_us: latencies,
    };
    Ok((report, outputs))
}

/// The workloads, in the order they run.
const WORKLOADS: [&str; 5] = [
    "a_sequential_get_2000",
    "b_pipelined_get_100000",
    "c_pipelined_set_20000",
    "d_create_delete_ephemeral_seq_10000",
    "e_connect_close_200_sessions",
];

/// One client's session and its node, ready for the workloads.
struct Prepared<C> {
    client: C,
    root: String,
    node: String,
}

async fn prepare<C: Bench>(addr: &str) -> Result<Prepared<C>, Error> {
    let client = C::connect(addr.to_owned()).await?;
    let root = format!("/bench-{}-{}", C::NAME, std::process::id());
    client.create_persistent(&root).await?;
    let node = format!("{root}/node");
    client.create_persistent(&node).await?;
    // Warm-up, unmeasured: the server's JIT, its write path (log file creation and
    // pre-allocation) and both sides' buffers.
    pipelined(20_000, IN_FLIGHT, |_| client.get(&node)).await?;
    pipelined(5_000, IN_FLIGHT, |_| client.set(&node)).await?;
    pipelined(1_000, 1, |_| client.get(&node)).await?;
    Ok(Prepared { client, root, node })
}

async fn finish<C: Bench>(p: Prepared<C>) -> Result<(), Error> {
    p.client.delete(&p.node).await?;
    p.client.delete(&p.root).await?;
    p.client.close().await
}

async fn workload<C: Bench>(p: &Prepared<C>, addr: &str, name: &str) -> Result<Report, Error> {
    let (client, node) = (&p.client, &p.node);
    Ok(match name {
        // (a) sequential reads: latency.
        "a_sequential_get_2000" => pipelined(2_000, 1, |_| client.get(node)).await?.0,
        // (b) pipelined reads.
        "b_pipelined_get_100000" => pipelined(100_000, IN_FLIGHT, |_| client.get(node)).await?.0,
        // (c) pipelined writes.
        "c_pipelined_set_20000" => pipelined(20_000, IN_FLIGHT, |_| client.set(node)).await?.0,
        // (d) create ephemeral-sequential, then delete them: both phases count.
        "d_create_delete_ephemeral_seq_10000" => {
            let prefix = format!("{}/seq-", p.root);
            let (created, paths) =
                pipelined(10_000, IN_FLIGHT, |_| client.create_seq(&prefix)).await?;
            let (deleted, _) =
                pipelined(paths.len(), IN_FLIGHT, |i| client.delete(&paths[i])).await?;
            let mut latencies = created.latencies_us;
            latencies.extend(deleted.latencies_us);
            Report {
                ops: created.ops + deleted.ops,
                secs: created.secs + deleted.secs,
                cpu: created.cpu + deleted.cpu,
                latencies_us: latencies,
            }
        }
        // (e) 200 sessions connected concurrently, then released; latency is per connect.
        _ => {
            let (connected, sessions) =
                pipelined(200, 200, |_| C::connect(addr.to_owned())).await?;
            let cpu0 = cpu_seconds();
            let start = Instant::now();
            futures::future::try_join_all(sessions.into_iter().map(C::release)).await?;
            Report {
                ops: 200,
                secs: connected.secs + start.elapsed().as_secs_f64(),
                cpu: connected.cpu + (cpu_seconds() - cpu0),
                latencies_us: connected.latencies_us,
            }
        }
    })
}

fn main() -> Result<(), Error> {
    // `--multi-thread`: a two-worker runtime instead (what `#[tokio::main]` gives by default).
    let runtime = if std::env::args().any(|a| a == "--multi-thread") {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(run())
}

async fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let only = flag("--only");
    let mut label = flag("--label");
    let positional = args
        .iter()
        .enumerate()
        .find(|(i, a)| {
            !a.starts_with("--")
                && (*i == 0 || !matches!(args[i - 1].as_str(), "--only" | "--label"))
        })
        .map(|(_, a)| a.clone());

    let _server;
    let addr = match positional {
        Some(addr) => addr,
        None => {
            eprintln!("booting Apache ZooKeeper 3.8 (Debian's jars) on a free loopback port ...");
            // maxClientCnxns=0: Apache allows 60 connections per client IP by default, fewer than (e) opens.
            // A production-like server: full JIT (the testkit's fast-start C1-only flag off),
            // fsync on (the testkit turns it off for tests).
            let mut config = zk_testkit::ApacheConfig::new()
                .tick_time(Duration::from_millis(2000))
                .config_line("maxClientCnxns=0")
                .java_property("zookeeper.forceSync", "yes")
                .java_property("zookeeper.preAllocSize", "65536");
            config
                .jvm_options
                .retain(|option| !option.starts_with("-XX:TieredStopAtLevel"));
            let server = zk_testkit::ApacheServer::start_with(config).await?;
            let addr = server.connect_string();
            label.get_or_insert_with(|| "apache-zookeeper-3.8".to_owned());
            _server = server;
            addr
        }
    };
    let server = label.unwrap_or_else(|| addr.clone());

    let ours = match only.as_deref().is_none_or(|o| o == Ours::NAME) {
        true => Some(prepare::<Ours>(&addr).await?),
        false => None,
    };
    let theirs = match only.as_deref().is_none_or(|o| o == Theirs::NAME) {
        true => Some(prepare::<Theirs>(&addr).await?),
        false => None,
    };
    // Each workload twice per client in ABBA order (ours, theirs, theirs, ours), so that a
    // server still warming up favours neither client.
    for name in WORKLOADS {
        for ours_first in [true, false] {
            for turn in 0..2 {
                if (turn == 0) == ours_first {
                    if let Some(p) = &ours {
                        print(Ours::NAME, &server, name, workload(p, &addr, name).await?);
                    }
                } else if let Some(p) = &theirs {
                    print(Theirs::NAME, &server, name, workload(p, &addr, name).await?);
                }
            }
        }
    }
    if let Some(p) = ours {
        finish(p).await?;
    }
    if let Some(p) = theirs {
        finish(p).await?;
    }
    Ok(())
}
