//! Prints zk-testkit's start-up figures, measured in one run on this machine:
//! * the embedded zk-server-lite (`TestServer::embedded`): start until it serves;
//! * containers: `docker create`+`start` until the first answered client request (a session
//!   handshake and a `get_data`), and the image size, for the zk-server-lite image and the
//!   local Apache ZooKeeper image (both built by `.ci/setup`).
//!
//! ```sh
//! cargo run --release -p zk-examples --example testkit_figures [runs]
//! ```

use std::time::{Duration, Instant};

use zk_client::Client;
use zk_testkit::TestServer;
use zk_testkit::containers::{ServerImage, ZkContainer, ZkServerLite, ZooKeeper, docker};
use zk_testkit::testcontainers::Image;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Start a container, connect, read `/`: the time until that first answer.
async fn container_start<I: ServerImage + Clone>(image: &I) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let zk = ZkContainer::start(image.clone()).await?;
    let client = Client::connect(&zk.connect_string()).await?;
    client.get_data("/").await?;
    let elapsed = started.elapsed();
    client.close().await;
    drop(zk);
    Ok(elapsed)
}

async fn image_size(name: &str, tag: &str) -> Result<u64, BoxError> {
    let image = docker()
        .await?
        .inspect_image(&format!("{name}:{tag}"))
        .await?;
    Ok(u64::try_from(image.size.unwrap_or_default()).unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);

    let mut embedded = Vec::new();
    for _ in 0..runs.max(20) {
        let started = Instant::now();
        let server = TestServer::embedded().await?;
        embedded.push(started.elapsed());
        server.stop().await?;
    }
    println!(
        "embedded zk-server-lite: start until serving, median of {}: {:?}",
        embedded.len(),
        median(embedded)
    );

    let lite = ZkServerLite::default();
    let apache = ZooKeeper::local_build();
    // One warm-up each (page cache), not counted.
    container_start(&lite).await?;
    container_start(&apache).await?;
    let mut lite_runs = Vec::new();
    let mut apache_runs = Vec::new();
    for _ in 0..runs {
        lite_runs.push(container_start(&lite).await?);
        apache_runs.push(container_start(&apache).await?);
    }
    let lite_size = image_size(lite.name(), lite.tag()).await?;
    let apache_size = image_size(apache.name(), apache.tag()).await?;
    println!("container start to first answered request (median of {runs}), image size:");
    println!(
        "  zk-server-lite ({}:{}): {:?}, {:.1} MB",
        lite.name(),
        lite.tag(),
        median(lite_runs),
        lite_size as f64 / 1e6
    );
    println!(
        "  Apache ZooKeeper ({}:{}): {:?}, {:.1} MB",
        apache.name(),
        apache.tag(),
        median(apache_runs),
        apache_size as f64 / 1e6
    );
    Ok(())
}
