//! A lock around a shared resource: several in-process workers, each with its own client,
//! increment a counter stored in a node with a plain read-modify-write (which would lose
//! updates without the lock). Every write goes through the lock holder's guarded
//! transaction and carries its fencing token; the "resource" (the counter node) remembers
//! the largest token it has seen and rejects smaller ones, as a downstream store should.
//!
//! ```sh
//! cargo run -p zk-examples --example lock                     # embedded zk-server-lite
//! cargo run -p zk-examples --example lock -- 127.0.0.1:2181   # a real ensemble
//! ```
//!
//! Exits non-zero if an update was lost, two workers held the lock at once, or a stale
//! token was accepted (the whole run is bounded to 10 s).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use zk_client::{Client, CreateMode, CreateOptions};
use zk_recipes::{FencingToken, Mutex};

const WORKERS: usize = 4;
const INCREMENTS: usize = 5;

use common::Failure;

#[tokio::main]
async fn main() {
    common::run_bounded(run()).await;
}

async fn run() -> Result<(), Failure> {
    let target = common::target().await?;
    let connect_string = target.connect_string.clone();
    let base = format!("/zk-examples/lock-{}", common::unique());
    let lock_path = format!("{base}/lock");
    let counter = format!("{base}/counter");

    let admin = Client::connect(&connect_string).await?;
    zk_recipes::paths::ensure_path(&admin, &base).await?;
    admin
        .create(
            &counter,
            &encode(0, None),
            &CreateOptions::new(CreateMode::Persistent),
        )
        .await?;

    let holders = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let client = Client::connect(&connect_string).await?;
        let (lock_path, counter, holders) = (lock_path.clone(), counter.clone(), holders.clone());
        tasks.push(tokio::spawn(async move {
            let mutex = Mutex::new(&client, &lock_path)?;
            let mut last = None;
            for _ in 0..INCREMENTS {
                let guard = mutex.acquire().await?;
                if holders.fetch_add(1, Ordering::SeqCst) != 0 {
                    return Err::<_, Failure>("two holders at once".into());
                }
                let token = guard.fencing_token();
                // Read, then write back + 1: safe only because we hold the lock.
                let (data, _) = client.get_data(&counter).await?;
                let (value, seen) = decode(&data)?;
                write_fenced(&guard, &counter, value + 1, seen, token).await?;
                holders.fetch_sub(1, Ordering::SeqCst);
                guard.release().await?;
                last = Some(token);
            }
            println!("worker-{worker} did {INCREMENTS} increments");
            client.close().await;
            Ok(last)
        }));
    }
    let mut stale = None;
    for task in tasks {
        let last = task.await??;
        // The oldest of the workers' last tokens: older than the newest unless only one
        // worker ever held the lock (taking the first worker's could pick the newest itself).
        stale = match (stale, last) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        };
    }

    let (data, _) = admin.get_data(&counter).await?;
    let (value, newest) = decode(&data)?;
    let expected = (WORKERS * INCREMENTS) as u64;
    if value != expected {
        return Err(format!("lost updates: counter = {value}, expected {expected}").into());
    }
    println!("no update lost: counter = {value} (expected {expected})");

    // A holder that lost the lock without noticing comes back with an old token.
    let (Some(stale), Some(newest)) = (stale, newest) else {
        return Err("no fencing token recorded".into());
    };
    match admit(Some(newest), stale) {
        Err(e) => println!(
            "a late write with a stale token (czxid {}) is refused by the resource: {e}",
            stale.czxid
        ),
        Ok(()) => return Err(format!("stale token {stale:?} accepted").into()),
    }
    println!("OK: one holder at a time, every increment kept, stale tokens refused");
    admin.close().await;
    Ok(())
}

/// The resource's rule: refuse a token older than the newest one it has seen; write under
/// the lock (a transaction that checks our lock node still exists).
async fn write_fenced(
    guard: &zk_recipes::LockGuard,
    counter: &str,
    value: u64,
    seen: Option<FencingToken>,
    token: FencingToken,
) -> Result<(), Failure> {
    admit(seen, token)?;
    guard
        .guarded_transaction()
        .set_data(counter, &encode(value, Some(token)), None)
        .commit()
        .await?;
    Ok(())
}

/// The resource's fencing rule: a token older than the newest one seen is refused.
fn admit(seen: Option<FencingToken>, token: FencingToken) -> Result<(), Failure> {
    match seen {
        Some(seen) if token < seen => Err(format!(
            "token czxid {} is older than czxid {}",
            token.czxid, seen.czxid
        )
        .into()),
        _ => Ok(()),
    }
}

/// `value czxid sequence` as text.
fn encode(value: u64, token: Option<FencingToken>) -> Vec<u8> {
    match token {
        Some(t) => format!("{value} {} {}", t.czxid, t.sequence).into_bytes(),
        None => format!("{value}").into_bytes(),
    }
}

fn decode(data: &[u8]) -> Result<(u64, Option<FencingToken>), Failure> {
    let text = std::str::from_utf8(data)?;
    let mut parts = text.split(' ');
    let value = parts.next().ok_or("empty counter")?.parse()?;
    let token = match (parts.next(), parts.next()) {
        (Some(czxid), Some(sequence)) => Some(FencingToken {
            czxid: czxid.parse()?,
            sequence: sequence.parse()?,
        }),
        _ => None,
    };
    Ok((value, token))
}
