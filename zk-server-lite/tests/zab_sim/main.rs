//! Deterministic simulation of a Zab ensemble: the real engine (`zk_server_lite::zab`) on a
//! simulated network and simulated disks, one virtual clock, every choice from one seeded
//! RNG. Faults: crashes that keep a random part of the unsynced writes (torn tails), restarts
//! with only what was durable, symmetric and one-way partitions that reset connections,
//! process pauses (SIGSTOP-like, so timers fire late), dropped, delayed, reordered and
//! duplicated election messages, cut quorum connections. A client writes through random
//! serving members (followers forward). Checked after every action: one leader per epoch,
//! acceptedEpoch ≥ currentEpoch on disk, a commit is durable on a quorum, a new leader holds
//! every committed txn, every member applies exactly the committed prefix; at the end, after
//! the faults stop, the ensemble converges and every member holds every acknowledged write.
//!
//! CI runs `ZAB_SIM_SEEDS` seeds (default 150) from `ZAB_SIM_START` (default 0). A failure
//! prints a one-line replay command and the trace. `scripts/zab-sim.sh` runs thousands.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod cluster;
mod invariants;
#[path = "../zab_member/state.rs"]
mod state;

use cluster::{Cluster, Schedule, Stats};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one seed; the error holds the reason and the trace.
fn run(seed: u64) -> Result<Stats, String> {
    let schedule = Schedule::from_seed(seed);
    let mut c = Cluster::new(schedule.clone());
    c.run_until(schedule.chaos_ms);
    c.calm();
    let deadline = c.now + 180_000;
    while c.checker.failure.is_none() && !c.converged() && c.now < deadline {
        let next = c.now + 250;
        c.run_until(next);
    }
    if c.checker.failure.is_none() && !c.converged() {
        let now = c.now;
        c.checker.fail(
            "the ensemble did not converge within 180 s after the faults stopped".into(),
            now,
        );
    }
    if c.checker.failure.is_none() {
        let now = c.now;
        let nodes = std::mem::take(&mut c.nodes);
        c.checker.final_check(&nodes, now);
        c.nodes = nodes;
    }
    match c.checker.failure.clone() {
        None => Ok(c.stats.clone()),
        Some((msg, at)) => {
            let trace: Vec<String> = c.trace.iter().cloned().collect();
            Err(format!(
                "seed {seed} ({schedule:?}) failed at {at} ms: {msg}\n--- last {} trace lines ---\n{}",
                trace.len(),
                trace.join("\n")
            ))
        }
    }
}

#[test]
fn seeds() {
    let count = env_u64("ZAB_SIM_SEEDS", 150);
    let start = env_u64("ZAB_SIM_START", 0);
    let mut total = Stats::default();
    for seed in start..start + count {
        match run(seed) {
            Ok(s) => {
                total.events += s.events;
                total.crashes += s.crashes;
                total.partitions += s.partitions;
                total.pauses += s.pauses;
                total.writes_acked += s.writes_acked;
                total.elections_decided += s.elections_decided;
            }
            Err(e) => panic!(
                "{e}\n\nreplay: ZAB_SIM_SEED={seed} cargo test -p zk-server-lite --test zab_sim -- replay --nocapture"
            ),
        }
    }
    println!("{count} seeds from {start}: {total:?}");
    assert!(
        total.writes_acked > count,
        "the workload barely ran: {total:?}"
    );
    assert!(total.elections_decided >= count, "{total:?}");
}

/// `ZAB_SIM_SEED=n`: runs one seed and prints its trace.
#[test]
fn replay() {
    let Ok(seed) = std::env::var("ZAB_SIM_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().expect("ZAB_SIM_SEED is a number");
    match run(seed) {
        Ok(stats) => println!("seed {seed} passed: {stats:?}"),
        Err(e) => panic!("{e}"),
    }
}
