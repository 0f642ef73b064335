//! A work queue: producers put jobs on a `DistributedQueue` in lease mode (Curator's
//! `lockPath`), consumers take them with `take_leased` and `complete` each when done. One
//! consumer crashes in the middle of a job (its client is closed before it completes):
//! its ephemeral lock vanishes with its session and another consumer processes the job.
//! Every job is processed exactly once.
//!
//! ```sh
//! cargo run -p zk-examples --example work_queue                     # embedded zk-server-lite
//! cargo run -p zk-examples --example work_queue -- 127.0.0.1:2181   # a real ensemble
//! ```
//!
//! Exits non-zero if a job was lost or processed twice (the whole run is bounded to 10 s).

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use zk_client::Client;
use zk_recipes::DistributedQueue;

const PRODUCERS: usize = 2;
const JOBS_EACH: usize = 6;
const CONSUMERS: usize = 3;

use common::Failure;

#[tokio::main]
async fn main() {
    common::run_bounded(run()).await;
}

async fn run() -> Result<(), Failure> {
    let target = common::target().await?;
    let connect_string = target.connect_string.clone();
    let base = format!("/zk-examples/queue-{}", common::unique());
    let (path, locks) = (format!("{base}/jobs"), format!("{base}/locks"));
    let total = PRODUCERS * JOBS_EACH;

    // The first producer queues its jobs.
    produce(&connect_string, &path, &locks, 0).await?;

    // A consumer leases the first job and, while working on it, crashes (below).
    let crashing = Client::connect(&connect_string).await?;
    let job = DistributedQueue::with_lock_path(&crashing, &path, &locks)?
        .take_leased()
        .await?;
    let crashed_job = String::from_utf8_lossy(job.data()).into_owned();
    println!("consumer-crash: working on {crashed_job} ...");

    // The healthy consumers: record each job they process, complete it.
    let processed: Arc<Mutex<BTreeMap<String, Vec<usize>>>> = Arc::default();
    let (done_tx, done) = watch::channel(false);
    let mut consumers = Vec::new();
    for c in 0..CONSUMERS {
        let client = Client::connect(&connect_string).await?;
        let queue = DistributedQueue::with_lock_path(&client, &path, &locks)?;
        let (processed, done_tx, mut done) = (processed.clone(), done_tx.clone(), done.clone());
        consumers.push(tokio::spawn(async move {
            loop {
                let job = tokio::select! {
                    job = queue.take_leased() => job?,
                    _ = done.wait_for(|d| *d) => break,
                };
                let name = String::from_utf8_lossy(job.data()).into_owned();
                let count = {
                    let mut processed = processed.lock().map_err(|_| "poisoned")?;
                    processed.entry(name.clone()).or_default().push(c);
                    processed.len()
                };
                job.complete().await?;
                println!("consumer-{c}: processed {name}");
                if count == total {
                    done_tx.send_replace(true);
                }
            }
            client.close().await;
            Ok::<(), Failure>(())
        }));
    }

    // The crash: the session ends, and our lock on the job goes with it.
    crashing.close().await;
    println!("consumer-crash: crashed while holding {crashed_job}");
    if job.complete().await.is_ok() {
        return Err("a dead consumer completed a job".into());
    }
    println!("consumer-crash: (its late complete is refused)");

    // The other producers, while the consumers work.
    for p in 1..PRODUCERS {
        produce(&connect_string, &path, &locks, p).await?;
    }

    for consumer in consumers {
        consumer.await??;
    }
    let processed = processed.lock().map_err(|_| "poisoned")?.clone();
    if processed.len() != total {
        return Err(format!("{} of {total} jobs processed", processed.len()).into());
    }
    if let Some((job, by)) = processed.iter().find(|(_, by)| by.len() != 1) {
        return Err(format!("{job} processed {} times", by.len()).into());
    }
    let by = processed
        .get(&crashed_job)
        .ok_or("the crashed consumer's job was lost")?;
    println!(
        "the crashed consumer's {crashed_job} was processed by consumer-{}",
        by[0]
    );
    println!("OK: all {total} jobs processed exactly once despite the crash");
    Ok(())
}

/// Producer `p` queues its jobs.
async fn produce(connect_string: &str, path: &str, locks: &str, p: usize) -> Result<(), Failure> {
    let client = Client::connect(connect_string).await?;
    let queue = DistributedQueue::with_lock_path(&client, path, locks)?;
    for i in 0..JOBS_EACH {
        queue.put(format!("job-{p}-{i}").as_bytes()).await?;
    }
    println!("producer-{p}: queued {JOBS_EACH} jobs");
    client.close().await;
    Ok(())
}
