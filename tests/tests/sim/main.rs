//! Deterministic simulation of failover: the real `zk_client` (session task, timers,
//! reconnects, watches) over a simulated network against simulated zk-server-lite members,
//! under seeded faults, with time on tokio's paused clock. A seed fixes everything: the
//! faults, the latencies, the workload and the client's own random choices
//! (`ClientBuilder::random_seed`); a failing seed replays exactly:
//!
//! ```text
//! SIM_SEED=<seed> cargo test -p zk-testkit --test sim replay -- --nocapture
//! ```
//!
//! Why an own harness and not turmoil: the client takes a `Connector`, so the network only
//! has to hand it byte streams, and zk-server-lite's core is sans-io, so the servers need
//! no sockets either; tokio's single-threaded runtime with paused time is already a
//! deterministic executor (the client's `select!`s are biased, its randomness seeded).
//! turmoil would add a dependency and its own host/IP model, and would need the client's
//! `tokio::net` calls swapped for its types; here nothing in the client changes for the
//! simulation.
//!
//! | file | job |
//! |---|---|
//! | `ensemble.rs` | the servers behind a trait: zk-server-lite's standalone `Core` today, a quorum later |
//! | `net.rs` | connections, latency, one-way blocks, cuts, crashed and stalled members |
//! | `faults.rs` | the seeded fault schedule |
//! | `run.rs` | one run: setup, workload, faults, healing, end-of-run checks |
//! | `record.rs` | what the clients saw, and the checks over it |
//! | `rng.rs` | the simulation's generator |
//!
//! `soak.sh` runs thousands of seeds for a bounded time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod ensemble;
mod faults;
mod net;
mod record;
mod rng;
mod run;

use std::time::{Duration, Instant};

fn replay_command(seed: u64) -> String {
    format!("SIM_SEED={seed} cargo test -p zk-testkit --test sim replay -- --nocapture")
}

/// Runs `seeds`; panics naming every failing seed and how to replay it.
fn run_seeds(seeds: impl Iterator<Item = u64>) {
    let mut failures = Vec::new();
    let mut count = 0;
    for seed in seeds {
        count += 1;
        let outcome = run::run(seed);
        if !outcome.violations.is_empty() {
            failures.push(format!(
                "seed {seed}: {}\n  replay: {}",
                outcome.violations.join("\n  "),
                replay_command(seed)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// How many seeds each CI test runs (`SIM_SEEDS` changes it).
fn per_test() -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(75)
}

// Four tests, so that nextest spreads the seeds over the cores.
#[test]
fn seeds_0() {
    run_seeds(0..per_test());
}

#[test]
fn seeds_1() {
    run_seeds(10_000..10_000 + per_test());
}

#[test]
fn seeds_2() {
    run_seeds(20_000..20_000 + per_test());
}

#[test]
fn seeds_3() {
    run_seeds(30_000..30_000 + per_test());
}

/// Replays `SIM_SEED` (default 1) and prints its faults and trace.
#[test]
fn replay() {
    let seed = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let outcome = run::run(seed);
    println!("seed {seed}: {} operations", outcome.ops);
    println!("faults:\n{}", outcome.faults.join("\n"));
    println!("trace:\n{}", outcome.trace.join("\n"));
    assert!(
        outcome.violations.is_empty(),
        "seed {seed}:\n{}",
        outcome.violations.join("\n")
    );
}

/// A seed is a replay: two runs of it do exactly the same thing.
#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 77] {
        let a = run::run(seed);
        let b = run::run(seed);
        assert!(a.trace.len() > 20, "the trace records the run");
        assert_eq!(a.faults, b.faults, "seed {seed}");
        assert_eq!(a.trace, b.trace, "seed {seed}");
    }
}

/// Many seeds for a bounded time (`soak.sh`): `SIM_FROM` (first seed), `SIM_BUDGET_SECS`.
#[test]
#[ignore = "long; run by tests/tests/sim/soak.sh"]
fn soak() {
    let from: u64 = std::env::var("SIM_FROM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let budget = Duration::from_secs(
        std::env::var("SIM_BUDGET_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    );
    let started = Instant::now();
    let mut seed = from;
    let mut failures = Vec::new();
    while started.elapsed() < budget {
        let outcome = run::run(seed);
        if !outcome.violations.is_empty() {
            println!("FAIL seed {seed}: {}", outcome.violations.join("; "));
            println!("  replay: {}", replay_command(seed));
            failures.push(seed);
        }
        seed += 1;
    }
    println!(
        "soak: {} seeds from {from} in {:?}, {} failed",
        seed - from,
        started.elapsed(),
        failures.len()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}
