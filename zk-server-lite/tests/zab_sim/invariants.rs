//! The properties checked after every action of every member (PROTOCOL.md 3.10).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zk_server_lite::zab::{Proposal, Sid, zxid};

use crate::cluster::Node;

pub(crate) struct Checker {
    voters: Vec<Sid>,
    pub(crate) failure: Option<(String, u64)>,
    /// Every txn known committed: committed by a leader, or part of a new leader's
    /// history when a quorum acked its NEWLEADER.
    committed: BTreeMap<i64, Bytes>,
    epoch_leaders: BTreeMap<i64, Sid>,
    /// zxids of writes a client saw acknowledged.
    pub(crate) acked: BTreeSet<i64>,
}

impl Checker {
    pub(crate) fn new(voters: Vec<Sid>) -> Checker {
        Checker {
            voters,
            failure: None,
            committed: BTreeMap::new(),
            epoch_leaders: BTreeMap::new(),
            acked: BTreeSet::new(),
        }
    }

    pub(crate) fn fail(&mut self, msg: String, now: u64) {
        if self.failure.is_none() {
            self.failure = Some((msg, now));
        }
    }

    fn quorum(&self, n: usize) -> bool {
        n > self.voters.len() / 2
    }

    /// acceptedEpoch ≥ currentEpoch on disk, always.
    pub(crate) fn after_action(&mut self, node: &Node, now: u64) {
        if node.disk.accepted < node.disk.current {
            self.fail(
                format!(
                    "#{}: acceptedEpoch {} < currentEpoch {} on disk",
                    node.id, node.disk.accepted, node.disk.current
                ),
                now,
            );
        }
    }

    /// At most one leader per epoch (a leader stores currentEpoch once a quorum promised).
    pub(crate) fn epoch_leader(&mut self, epoch: i64, sid: Sid, now: u64) {
        if let Some(&other) = self.epoch_leaders.get(&epoch)
            && other != sid
        {
            self.fail(
                format!("two leaders in epoch {epoch}: #{other} and #{sid}"),
                now,
            );
        }
        self.epoch_leaders.insert(epoch, sid);
    }

    /// A leader starts serving: it must hold every committed txn; its history is committed
    /// from now on.
    pub(crate) fn established(
        &mut self,
        node: &Node,
        epoch: i64,
        nodes: &BTreeMap<Sid, Node>,
        now: u64,
    ) {
        // Its history is committed now: it must be durable on a quorum (every NEWLEADER
        // ACK came after the learner synced it: ZOOKEEPER-3911/4646).
        if let Some(last) = node.state.last().map(|p| p.zxid) {
            let durable = self
                .voters
                .iter()
                .filter(|v| nodes.get(v).is_some_and(|n| n.disk.holds(last)))
                .count();
            if !self.quorum(durable) {
                let msg = format!(
                    "new leader #{} (epoch {epoch}) starts with {} durable on only {durable} voters",
                    node.id,
                    zxid::hex(last)
                );
                self.fail(msg, now);
                return;
            }
        }
        let held: BTreeMap<i64, &Bytes> = node.state.iter().map(|p| (p.zxid, &p.data)).collect();
        // Primary integrity (Zab): every txn committed in an *earlier* epoch. A leader may
        // finish establishing late, after a later epoch committed something (its NEWLEADER
        // quorum then includes learners that moved on); it can commit nothing new, since a
        // quorum has accepted the later epoch (simulator, seed 27366).
        let earlier = zxid::make(epoch, 0);
        for (z, data) in self.committed.range(..earlier) {
            match held.get(z) {
                Some(d) if *d == data => {}
                Some(_) => {
                    let msg = format!(
                        "new leader #{} (epoch {epoch}) holds another txn at committed {}",
                        node.id,
                        zxid::hex(*z)
                    );
                    self.fail(msg, now);
                    return;
                }
                None => {
                    let msg = format!(
                        "new leader #{} (epoch {epoch}) lacks committed {}",
                        node.id,
                        zxid::hex(*z)
                    );
                    self.fail(msg, now);
                    return;
                }
            }
        }
        for p in &node.state {
            self.committed.insert(p.zxid, p.data.clone());
        }
    }

    /// A committed txn is applied on `node`.
    pub(crate) fn apply(
        &mut self,
        node: &Node,
        p: &Proposal,
        leading: bool,
        nodes: &BTreeMap<Sid, Node>,
        now: u64,
    ) {
        let z = p.zxid;
        if leading {
            if let Some(d) = self.committed.get(&z)
                && *d != p.data
            {
                self.fail(format!("two txns committed at {}", zxid::hex(z)), now);
                return;
            }
            let durable = self
                .voters
                .iter()
                .filter(|v| nodes.get(v).is_some_and(|n| n.disk.holds(z)))
                .count();
            if !self.quorum(durable) {
                let msg = format!(
                    "#{} commits {} durable on only {durable} voters",
                    node.id,
                    zxid::hex(z)
                );
                self.fail(msg, now);
                return;
            }
            self.committed.insert(z, p.data.clone());
        } else {
            match self.committed.get(&z) {
                Some(d) if *d == p.data => {}
                _ => {
                    let msg = format!(
                        "#{} applies {} which is not committed",
                        node.id,
                        zxid::hex(z)
                    );
                    self.fail(msg, now);
                    return;
                }
            }
        }
        // Prefix consistency: the state before this txn is exactly the committed txns
        // before it.
        let expected: Vec<i64> = self.committed.range(..z).map(|(z, _)| *z).collect();
        let actual: Vec<i64> = node.state.iter().map(|p| p.zxid).collect();
        if expected != actual {
            let first_diff = expected
                .iter()
                .zip(&actual)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(actual.len()));
            let msg = format!(
                "#{} applies {} on a state that is not the committed prefix: {} committed \
                 before it, {} applied; first difference at index {first_diff} \
                 (committed {:?}, applied {:?})",
                node.id,
                zxid::hex(z),
                expected.len(),
                actual.len(),
                expected.get(first_diff).map(|z| zxid::hex(*z)),
                actual.get(first_diff).map(|z| zxid::hex(*z)),
            ) + &format!(
                "; committed around it {:?}, applied around it {:?}",
                expected[first_diff.saturating_sub(2)..(first_diff + 4).min(expected.len())]
                    .iter()
                    .map(|z| zxid::hex(*z))
                    .collect::<Vec<_>>(),
                actual[first_diff.saturating_sub(2)..(first_diff + 4).min(actual.len())]
                    .iter()
                    .map(|z| zxid::hex(*z))
                    .collect::<Vec<_>>(),
            );
            self.fail(msg, now);
        }
    }

    pub(crate) fn acked(&mut self, z: i64) {
        self.acked.insert(z);
    }

    /// After the faults end and the cluster converged: every member holds the same state,
    /// containing every acknowledged write.
    pub(crate) fn final_check(&mut self, nodes: &BTreeMap<Sid, Node>, now: u64) {
        let mut reference: Option<(Sid, Vec<i64>)> = None;
        for (id, n) in nodes {
            let zs: Vec<i64> = n.state.iter().map(|p| p.zxid).collect();
            for z in &self.acked {
                if !zs.contains(z) {
                    self.fail(
                        format!("#{id} lost the acknowledged write {}", zxid::hex(*z)),
                        now,
                    );
                    return;
                }
            }
            match &reference {
                None => reference = Some((*id, zs)),
                Some((rid, rzs)) if *rzs != zs => {
                    let msg = format!(
                        "#{id} and #{rid} ended with different states ({} and {} txns)",
                        zs.len(),
                        rzs.len()
                    );
                    self.fail(msg, now);
                    return;
                }
                Some(_) => {}
            }
        }
    }
}
