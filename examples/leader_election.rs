//! Leader election for a worker pool: N in-process workers, each with its own client and
//! session, run a `LeaderLatch` on one path; exactly one leads. The example then kills the
//! leader's session (closes its client: its ephemeral node goes at once) and shows another
//! worker taking over.
//!
//! ```sh
//! cargo run -p zk-examples --example leader_election                     # embedded zk-server-lite
//! cargo run -p zk-examples --example leader_election -- 127.0.0.1:2181   # a real ensemble
//! ```
//!
//! Exits non-zero if no leader was elected, if two workers led at once, or if nobody took
//! over within the time limit (the whole run is bounded to 10 s).

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeSet;

use tokio::sync::mpsc;
use zk_client::Client;
use zk_recipes::LeaderLatch;

const WORKERS: usize = 4;

use common::Failure;

#[tokio::main]
async fn main() {
    common::run_bounded(run()).await;
}

async fn run() -> Result<(), Failure> {
    let target = common::target().await?;
    let connect_string = target.connect_string.clone();
    let path = format!("/zk-examples/election-{}", common::unique());

    // Each worker: its own client (session) and latch; leadership changes go to `events`.
    let (events, mut changes) = mpsc::unbounded_channel::<(usize, bool)>();
    let mut workers = Vec::new();
    for i in 0..WORKERS {
        let client = Client::connect(&connect_string).await?;
        let mut latch = LeaderLatch::new(&client, &path, &format!("worker-{i}"))?;
        latch.start()?;
        let mut leadership = latch.leadership_changes();
        let events = events.clone();
        tokio::spawn(async move {
            while let Some(leading) = leadership.next().await {
                let _ = events.send((i, leading));
            }
        });
        workers.push((client, latch));
    }
    println!("{WORKERS} workers started on {path}");

    // The first leader.
    let mut leaders = BTreeSet::new();
    let first = next_leader(&mut changes, &mut leaders).await?;
    println!("worker-{first} is the leader");
    let participants = workers[first].1.participants().await?;
    let leading: Vec<_> = participants.iter().filter(|p| p.is_leader).collect();
    if leading.len() != 1 || leading[0].id != format!("worker-{first}") {
        return Err(
            format!("expected worker-{first} alone in the lead, got {participants:?}").into(),
        );
    }

    // Kill the leader's session.
    println!("killing worker-{first}'s session");
    workers[first].0.close().await;
    leaders.remove(&first);
    let second = next_leader(&mut changes, &mut leaders).await?;
    if second == first {
        return Err("the dead worker is leading again".into());
    }
    println!("worker-{second} took over");
    let participants = workers[second].1.participants().await?;
    if participants.len() != WORKERS - 1 {
        return Err(format!(
            "expected {} participants, got {participants:?}",
            WORKERS - 1
        )
        .into());
    }
    println!(
        "participants now: {}",
        participants
            .iter()
            .map(|p| format!("{}{}", p.id, if p.is_leader { " (leader)" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ")
    );

    for (client, latch) in workers {
        latch.close().await;
        client.close().await;
    }
    println!("OK: exactly one leader at a time, and a new one after the leader died");
    Ok(())
}

/// Waits for the next worker to report leadership; fails if two lead at once.
async fn next_leader(
    changes: &mut mpsc::UnboundedReceiver<(usize, bool)>,
    leaders: &mut BTreeSet<usize>,
) -> Result<usize, Failure> {
    while let Some((worker, leading)) = changes.recv().await {
        if leading {
            leaders.insert(worker);
            if leaders.len() > 1 {
                return Err(format!("two leaders at once: {leaders:?}").into());
            }
            return Ok(worker);
        }
        leaders.remove(&worker);
    }
    Err("the workers stopped".into())
}
