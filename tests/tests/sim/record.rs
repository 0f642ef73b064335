//! What the clients saw, recorded as it happens, and the guarantees checked against it.
//!
//! Every operation is issued from the workload task (the client queues it at call time) and
//! awaited in its own task; the session task completes replies and fires watches in the
//! order it handles frames, and the single-threaded runtime runs the woken tasks in that
//! order, so the recorded order is the order the client delivered them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;
use zk_client::{EventType, KeeperState, SessionState, Stat};

#[derive(Debug, Clone)]
pub struct WatchRec {
    pub path: String,
    /// The node's version when the watch was left.
    pub armed_version: i32,
    /// The step at which it was armed.
    pub armed_step: u64,
    /// When and how it fired.
    pub fired: Option<(u64, EventType, KeeperState)>,
}

#[derive(Debug, Default)]
pub struct ClientRec {
    pub session: i64,
    pub timeout_ms: u64,
    pub issued: u64,
    /// Sequence numbers in completion order, with the outcome and whether it failed at the
    /// call.
    pub completions: Vec<(u64, String, bool)>,
    /// Counts completions and watch events.
    pub step: u64,
    /// (step, path, mzxid, version) of every stat the client got back.
    pub stats: Vec<(u64, String, i64, i32)>,
    pub watches: Vec<WatchRec>,
    /// Persistent watch on /w: events received, and the version when it was added.
    pub persistent: Option<(i32, u64)>,
    pub states: Vec<(Instant, SessionState)>,
}

#[derive(Debug, Default)]
pub struct Record {
    pub clients: Vec<ClientRec>,
    pub violations: Vec<String>,
}

pub type SharedRecord = Arc<Mutex<Record>>;

pub fn lock(record: &SharedRecord) -> MutexGuard<'_, Record> {
    record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Record {
    pub fn issue(&mut self, client: usize) -> u64 {
        let c = &mut self.clients[client];
        c.issued += 1;
        c.issued - 1
    }

    /// Records a completion; returns its step.
    pub fn complete(&mut self, client: usize, seq: u64, outcome: String, immediate: bool) -> u64 {
        let c = &mut self.clients[client];
        c.completions.push((seq, outcome, immediate));
        c.step += 1;
        c.step
    }

    pub fn stat(&mut self, client: usize, step: u64, path: &str, stat: &Stat) {
        self.clients[client]
            .stats
            .push((step, path.to_owned(), stat.mzxid, stat.version));
    }

    pub fn violation(&mut self, text: String) {
        self.violations.push(text);
    }

    /// The checks over what was recorded (the end-of-run ones that need the servers are in
    /// `run.rs`).
    pub fn check_histories(&mut self) {
        let mut found = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            // Replies (and failures) in request order.
            let answered: Vec<&(u64, String, bool)> = c
                .completions
                .iter()
                .filter(|(_, _, immediate)| !immediate)
                .collect();
            if let Some(pair) = answered.windows(2).find(|pair| pair[1].0 < pair[0].0) {
                found.push(format!(
                    "client {i}: request #{} ({}) completed after #{} ({}): out of order",
                    pair[1].0, pair[1].1, pair[0].0, pair[0].1
                ));
                if std::env::var_os("SIM_DEBUG").is_some() {
                    found.push(format!("{:?}", c.completions));
                }
            }
            // Never back in time: per path, the mzxid seen never decreases.
            let mut seen: BTreeMap<&str, (i64, u64)> = BTreeMap::new();
            for (step, path, mzxid, _) in &c.stats {
                if let Some((max, at)) = seen.get(path.as_str())
                    && mzxid < max
                {
                    found.push(format!(
                        "client {i}: {path} read with mzxid {mzxid:#x} at step {step} after {max:#x} at step {at}"
                    ));
                }
                let entry = seen.entry(path).or_insert((*mzxid, *step));
                if *mzxid >= entry.0 {
                    *entry = (*mzxid, *step);
                }
            }
            // A watch event reaches the client before any read that observes the change.
            for w in &c.watches {
                for (step, path, _, version) in &c.stats {
                    if *path == w.path && *step > w.armed_step && *version > w.armed_version {
                        let fired_before = w.fired.is_some_and(|(at, _, _)| at < *step);
                        if !fired_before {
                            found.push(format!(
                                "client {i}: read of {path} at step {step} saw version {version}, but the watch armed at version {} (step {}) fired {:?}",
                                w.armed_version, w.armed_step, w.fired
                            ));
                        }
                    }
                }
            }
        }
        self.violations.extend(found);
    }
}
