//! Cross-language: Apache Curator 5.4 (Java, from the Debian jars) and our recipes on the
//! same paths. Curator's `InterProcessMutex` and our `Mutex` take turns, in both directions,
//! and never hold the lock at once; Curator's `LeaderLatch` and ours elect exactly one
//! leader among them and hand leadership over both ways; Curator's read/write lock and ours
//! share readers and exclude writers; Curator's double barrier and ours enter and leave
//! together; Curator's `InterProcessSemaphoreV2` and our `Semaphore` share the leases;
//! Curator's `DistributedAtomicLong`
//! and our `AtomicLong` increment one counter without losing an update.
//!
//! On Apache ZooKeeper and on zk-server-lite (the Java client talks to both).
//!
//! Skipped (with a message) when javac/java or the Curator jars are missing, unless
//! `ZK_REQUIRE_FOREIGN_CLIENTS` is set (as CI does): then a missing tool fails the test
//! (see [`crate::jvm`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions, Error};
use zk_recipes::{
    AtomicInteger, AtomicLong, DoubleBarrier, LeaderLatch, MultiLock, Mutex, ReadWriteLock,
    Semaphore, paths,
};
use zk_testkit::{ServerKind, wait_until};

use crate::jvm::{Participant, compiled, java_ready};
use crate::{WAIT, connect, start, within};

for_each_server!(
    curator_and_rust_hand_the_lock_over_both_ways,
    curator_and_rust_holders_never_overlap,
    curator_and_rust_latches_elect_one_leader_and_hand_over_both_ways,
    curator_and_rust_increment_one_atomic_long,
    curator_and_rust_read_write_locks_share_readers_and_exclude_writers,
    curator_and_rust_members_pass_one_double_barrier,
    curator_and_rust_share_semaphore_leases,
    curator_and_rust_multi_locks_exclude_each_other,
    curator_and_rust_share_several_semaphore_leases,
    curator_and_rust_increment_one_atomic_integer_through_a_promoted_lock,
);

/// `node` has Curator's mutex node shape: `_c_<uuid>-lock-<10 digits>`.
fn assert_curator_shape(node: &str) {
    assert!(paths::is_protected(node), "{node}");
    let rest = paths::normalize(node);
    assert!(
        rest.starts_with("lock-") && rest.len() == "lock-".len() + 10,
        "{node}"
    );
}

async fn curator_and_rust_hand_the_lock_over_both_ways(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let client = connect(&cs).await;
    let path = "/xlang/handover";
    let mutex = Mutex::new(&client, path).unwrap();

    // Rust holds; Curator queues behind us (its node sorts second) and waits.
    let guard = mutex.acquire().await.unwrap();
    let mut java = Participant::spawn(&classes, "CuratorMutexParticipant", &[&cs, path, "hold"]);
    java.expect("CONNECTED").await;
    wait_until(WAIT, "Curator's contender behind ours", || {
        let m = mutex.clone();
        async move { m.contenders().await.unwrap().len() == 2 }
    })
    .await;
    let contenders = mutex.contenders().await.unwrap();
    assert_eq!(contenders[0], paths::node_name(guard.path()));
    assert_curator_shape(&contenders[1]);
    assert!(
        java.lines.try_recv().is_err(),
        "Curator must not hold the lock yet"
    );

    // We release: Curator gets it.
    guard.release().await.unwrap();
    let java_node = java.expect("HELD").await;
    assert!(java_node.ends_with(&contenders[1]), "{java_node}");

    // Curator holds: we time out, then queue behind it and get it when it releases.
    assert!(
        mutex
            .try_acquire(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    let waiting = tokio::spawn({
        let mutex = mutex.clone();
        async move { mutex.acquire().await.unwrap() }
    });
    wait_until(WAIT, "our contender behind Curator's", || {
        let m = mutex.clone();
        async move { m.contenders().await.unwrap().len() == 2 }
    })
    .await;
    assert!(!waiting.is_finished());
    java.send("go");
    java.expect("DONE").await;
    let guard = within("our turn", waiting).await.unwrap();
    assert_curator_shape(paths::node_name(guard.path()));
    java.finish().await;
    guard.release().await.unwrap();
    assert!(mutex.contenders().await.unwrap().is_empty());
}

/// One Rust holder's round: the same protocol as the Java participant's loop.
async fn rust_round(client: &Client, mutex: &Mutex, holds: &AtomicUsize) -> i64 {
    let guard = mutex.acquire().await.unwrap();
    let sequence = guard.fencing_token().sequence;
    let ephemeral = CreateOptions::new(CreateMode::Ephemeral);
    match client.create("/xlang/holder", b"rust", &ephemeral).await {
        Ok(_) => {}
        Err(Error::NodeExists) => panic!("two holders at once (a Java holder is inside)"),
        Err(e) => panic!("{e}"),
    }
    let (data, stat) = client.get_data("/xlang/counter").await.unwrap();
    let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
    tokio::task::yield_now().await;
    client
        .set_data(
            "/xlang/counter",
            (n + 1).to_string().as_bytes(),
            Some(stat.version),
        )
        .await
        .unwrap();
    holds.fetch_add(1, Ordering::SeqCst);
    client.delete("/xlang/holder", None).await.unwrap();
    guard.release().await.unwrap();
    sequence
}

async fn curator_and_rust_holders_never_overlap(kind: ServerKind) {
    const JAVA: usize = 2;
    const JAVA_ROUNDS: usize = 30;
    const RUST: usize = 3;
    const RUST_ROUNDS: usize = 10;
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let setup = connect(&cs).await;
    paths::ensure_path(&setup, "/xlang").await.unwrap();
    setup
        .create(
            "/xlang/counter",
            b"0",
            &CreateOptions::new(CreateMode::Persistent),
        )
        .await
        .unwrap();
    let path = "/xlang/lock";
    let rounds = JAVA_ROUNDS.to_string();
    let mut java: Vec<Participant> = (0..JAVA)
        .map(|_| {
            Participant::spawn(
                &classes,
                "CuratorMutexParticipant",
                &[
                    &cs,
                    path,
                    "loop",
                    "/xlang/holder",
                    "/xlang/counter",
                    &rounds,
                ],
            )
        })
        .collect();
    // Start the Rust holders once Curator is contending, so the two really interleave.
    for p in &mut java {
        p.expect("CONNECTED").await;
    }
    java[0].expect("HELD").await;

    let holds = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..RUST {
        let client = connect(&cs).await;
        let holds = holds.clone();
        tasks.push(tokio::spawn(async move {
            let mutex = Mutex::new(&client, path).unwrap();
            let mut sequences = Vec::new();
            for _ in 0..RUST_ROUNDS {
                sequences.push(rust_round(&client, &mutex, &holds).await);
            }
            client.close().await;
            sequences
        }));
    }
    // Hold order = sequence order; tag each hold with its language.
    let mut order: Vec<(i64, &str)> = Vec::new();
    for task in tasks {
        let sequences = within("the Rust holders", task).await.unwrap();
        order.extend(sequences.into_iter().map(|s| (s, "rust")));
    }
    for mut p in java {
        p.expect("DONE").await;
        let held: Vec<i64> = p
            .seen
            .iter()
            .filter_map(|l| l.strip_prefix("HELD "))
            .map(|node| paths::sequence_number(node).unwrap())
            .collect();
        assert_eq!(held.len(), JAVA_ROUNDS, "{:?}", p.seen);
        order.extend(held.into_iter().map(|s| (s, "java")));
        p.finish().await;
    }
    order.sort();
    let switches = order.windows(2).filter(|w| w[0].1 != w[1].1).count();
    eprintln!(
        "{} holds, {switches} hand-overs between languages",
        order.len()
    );
    assert_eq!(holds.load(Ordering::SeqCst), RUST * RUST_ROUNDS);
    let (data, _) = setup.get_data("/xlang/counter").await.unwrap();
    assert_eq!(
        data,
        (RUST * RUST_ROUNDS + JAVA * JAVA_ROUNDS)
            .to_string()
            .as_bytes()
    );
    assert!(setup.get_children(path).await.unwrap().is_empty());
}

fn rust_leaders(latches: &[LeaderLatch]) -> Vec<&str> {
    latches
        .iter()
        .filter(|l| l.has_leadership())
        .map(LeaderLatch::id)
        .collect()
}

async fn curator_and_rust_latches_elect_one_leader_and_hand_over_both_ways(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let path = "/xlang/election";
    let mut java = Participant::spawn(&classes, "CuratorLatchParticipant", &[&cs, path, "java"]);
    java.expect("CONNECTED").await;

    // Curator first: it leads, ours queue behind it.
    java.send("start");
    java.expect("STARTED").await;
    java.expect("LEADER").await;
    let mut latches = Vec::new();
    for id in ["rust0", "rust1"] {
        let client = connect(&cs).await;
        let mut latch = LeaderLatch::new(&client, path, id).unwrap();
        latch.start().unwrap();
        latches.push(latch);
        // `start` creates the node in the background: wait for it, so that rust0 queues
        // before rust1 (else the order below is a race).
        let want = latches.len() + 1;
        wait_until(WAIT, "the latch to queue", || {
            let l = &latches[0];
            async move { l.participants().await.unwrap().len() == want }
        })
        .await;
    }
    let participants = latches[0].participants().await.unwrap();
    let ids: Vec<&str> = participants.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["java", "rust0", "rust1"]);
    assert!(participants[0].node.starts_with("_c_"), "{participants:?}");
    assert!(rust_leaders(&latches).is_empty());

    // Curator leaves: the first of ours leads, the other does not.
    java.send("close");
    java.expect("CLOSED").await;
    within("rust0 to lead", latches[0].await_leadership())
        .await
        .unwrap();
    assert_eq!(rust_leaders(&latches), ["rust0"]);

    // Curator queues behind ours; leadership passes down the line to it.
    java.send("start");
    java.expect("STARTED").await;
    wait_until(WAIT, "Curator queued again", || {
        let l = &latches[0];
        async move { l.participants().await.unwrap().len() == 3 }
    })
    .await;
    let first = latches.remove(0);
    first.close().await;
    within("rust1 to lead", latches[0].await_leadership())
        .await
        .unwrap();
    assert_eq!(rust_leaders(&latches), ["rust1"]);
    assert!(java.lines.try_recv().is_err(), "Curator must not lead yet");
    let second = latches.remove(0);
    second.close().await;
    java.expect("LEADER").await;
    let participants = second.participants().await.unwrap();
    assert_eq!(participants.len(), 1);
    assert!(participants[0].is_leader && participants[0].id == "java");

    java.send("close");
    java.expect("CLOSED").await;
    java.send("exit");
    java.finish().await;
}

async fn curator_and_rust_increment_one_atomic_long(kind: ServerKind) {
    const JAVA: usize = 2;
    const JAVA_INCREMENTS: i64 = 50;
    const RUST: usize = 2;
    const RUST_INCREMENTS: i64 = 50;
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let path = "/xlang/counter-long";
    let increments = JAVA_INCREMENTS.to_string();
    let mut java: Vec<Participant> = (0..JAVA)
        .map(|_| {
            Participant::spawn(
                &classes,
                "CuratorCounterParticipant",
                &[&cs, path, &increments],
            )
        })
        .collect();
    for p in &mut java {
        p.expect("CONNECTED").await;
    }
    let mut tasks = Vec::new();
    for _ in 0..RUST {
        let client = connect(&cs).await;
        tasks.push(tokio::spawn(async move {
            let counter = AtomicLong::new(&client, path).unwrap();
            for _ in 0..RUST_INCREMENTS {
                counter.increment().await.unwrap();
            }
            client.close().await;
        }));
    }
    for task in tasks {
        within("the Rust incrementers", task).await.unwrap();
    }
    for mut p in java {
        p.expect("DONE").await;
        p.finish().await;
    }
    let client = connect(&cs).await;
    let total = AtomicLong::new(&client, path).unwrap().get().await.unwrap();
    assert_eq!(
        total,
        JAVA as i64 * JAVA_INCREMENTS + RUST as i64 * RUST_INCREMENTS
    );
}

async fn curator_and_rust_read_write_locks_share_readers_and_exclude_writers(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let client = connect(&cs).await;
    let path = "/xlang/rw";
    let rw = ReadWriteLock::new(&client, path).unwrap();

    // A Curator reader and ours hold the lock together.
    let mut java_reader = Participant::spawn(
        &classes,
        "CuratorMutexParticipant",
        &[&cs, path, "hold", "read"],
    );
    let java_node = java_reader.expect("HELD").await;
    assert!(paths::normalize(paths::node_name(&java_node)).starts_with("__READ__"));
    let ours = within("our reader beside Curator's", rw.read_lock().acquire())
        .await
        .unwrap();
    // Our writer waits for both readers.
    assert!(
        rw.write_lock()
            .try_acquire(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    ours.release().await.unwrap();
    let writer = tokio::spawn({
        let rw = rw.clone();
        async move { rw.write_lock().acquire().await.unwrap() }
    });
    wait_until(WAIT, "our writer queued behind Curator's reader", || {
        let r = rw.read_lock();
        async move { r.contenders().await.unwrap().len() == 2 }
    })
    .await;
    assert!(!writer.is_finished());
    java_reader.send("go");
    java_reader.expect("DONE").await;
    java_reader.finish().await;
    let ours = within("our writer", writer).await.unwrap();

    // While we write, a Curator writer waits; it gets the lock when we release.
    let mut java_writer = Participant::spawn(
        &classes,
        "CuratorMutexParticipant",
        &[&cs, path, "hold", "write"],
    );
    java_writer.expect("CONNECTED").await;
    wait_until(WAIT, "Curator's writer queued", || {
        let r = rw.read_lock();
        async move { r.contenders().await.unwrap().len() == 2 }
    })
    .await;
    assert!(
        java_writer.lines.try_recv().is_err(),
        "Curator's writer must wait"
    );
    ours.release().await.unwrap();
    let java_node = java_writer.expect("HELD").await;
    assert!(paths::normalize(paths::node_name(&java_node)).starts_with("__WRIT__"));
    // Now our reader waits for Curator's writer.
    assert!(
        rw.read_lock()
            .try_acquire(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    java_writer.send("go");
    java_writer.expect("DONE").await;
    java_writer.finish().await;
    let reader = within("our reader", rw.read_lock().acquire())
        .await
        .unwrap();
    reader.release().await.unwrap();
}

async fn curator_and_rust_members_pass_one_double_barrier(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let path = "/xlang/barrier";
    let mut java = Participant::spawn(&classes, "CuratorBarrierParticipant", &[&cs, path, "3"]);
    java.expect("CONNECTED").await;
    let ours: Vec<DoubleBarrier> = vec![
        DoubleBarrier::new(&connect(&cs).await, path, 3).unwrap(),
        DoubleBarrier::new(&connect(&cs).await, path, 3).unwrap(),
    ];
    // One of ours enters first and waits; Curator enters and waits too.
    let first = tokio::spawn({
        let b = ours[0].clone();
        async move { b.enter().await.unwrap() }
    });
    let observer = connect(&cs).await;
    wait_until(WAIT, "Curator's member and ours in", || {
        let o = observer.clone();
        async move { o.get_children(path).await.map(|c| c.len()).unwrap_or(0) == 2 }
    })
    .await;
    assert!(!first.is_finished());
    assert!(java.lines.try_recv().is_err(), "Curator must still wait");
    // The third member opens it for all.
    within("our second member to enter", ours[1].enter())
        .await
        .unwrap();
    within("our first member to enter", first).await.unwrap();
    java.expect("ENTERED").await;

    // Ours leave first and wait for Curator's member.
    let leaving: Vec<_> = ours
        .iter()
        .cloned()
        .map(|b| tokio::spawn(async move { b.leave().await.unwrap() }))
        .collect();
    wait_until(WAIT, "only Curator's member left in", || {
        let o = observer.clone();
        async move {
            o.get_children(path)
                .await
                .map(|c| c.iter().filter(|c| *c != "ready").count())
                .unwrap_or(0)
                == 1
        }
    })
    .await;
    assert!(leaving.iter().all(|t| !t.is_finished()));
    java.send("go");
    java.expect("LEFT").await;
    for task in leaving {
        within("our members to leave", task).await.unwrap();
    }
    java.finish().await;
}

async fn curator_and_rust_share_semaphore_leases(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let client = connect(&cs).await;
    let path = "/xlang/semaphore";
    let semaphore = Semaphore::new(&client, path, 2).unwrap();

    // Curator holds one of the two leases; we can take the other, not a third.
    let mut java = Participant::spawn(
        &classes,
        "CuratorMutexParticipant",
        &[&cs, path, "lease", "2"],
    );
    let java_node = java.expect("HELD").await;
    assert!(
        paths::normalize(&java_node).starts_with("lease-"),
        "{java_node}"
    );
    let ours = within("our lease", semaphore.acquire()).await.unwrap();
    assert_eq!(semaphore.participants().await.unwrap().len(), 2);
    let waiting = tokio::spawn({
        let semaphore = semaphore.clone();
        async move { semaphore.acquire().await.unwrap() }
    });
    wait_until(WAIT, "a third lease node waiting", || {
        let s = semaphore.clone();
        async move { s.participants().await.unwrap().len() == 3 }
    })
    .await;
    assert!(!waiting.is_finished());
    // Curator returns its lease: our waiter gets it.
    java.send("go");
    java.expect("DONE").await;
    java.finish().await;
    let second = within("the freed lease", waiting).await.unwrap();
    ours.release().await.unwrap();
    second.release().await.unwrap();
}

/// Curator's `InterProcessMultiLock` and our `MultiLock` over the same two paths exclude each
/// other both ways, and a plain mutex on one of the paths waits for either; a multi-lock
/// that cannot get its second lock holds nothing.
async fn curator_and_rust_multi_locks_exclude_each_other(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let client = connect(&cs).await;
    let (a, b) = ("/xlang/multi/a", "/xlang/multi/b");
    let ours = MultiLock::new(vec![
        Mutex::new(&client, a).unwrap(),
        Mutex::new(&client, b).unwrap(),
    ])
    .unwrap();

    // Curator holds both: we get neither, and hold nothing after giving up.
    let mut java = Participant::spawn(
        &classes,
        "CuratorMutexParticipant",
        &[&cs, &format!("{a},{b}"), "multi"],
    );
    java.expect("HELD").await;
    assert!(
        ours.try_acquire(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    let single = Mutex::new(&client, b).unwrap();
    assert!(
        single
            .try_acquire(Duration::from_millis(100))
            .await
            .unwrap()
            .is_none()
    );
    for path in [a, b] {
        let contenders = Mutex::new(&client, path)
            .unwrap()
            .contenders()
            .await
            .unwrap();
        assert_eq!(contenders.len(), 1, "{path}: {contenders:?}");
    }
    java.send("release");
    java.expect("DONE").await;
    java.finish().await;

    // We hold both: Curator waits until we release.
    let guard = within("our multi-lock", ours.acquire()).await.unwrap();
    assert_eq!(guard.fencing_tokens().len(), 2);
    let mut java = Participant::spawn(
        &classes,
        "CuratorMutexParticipant",
        &[&cs, &format!("{a},{b}"), "multi"],
    );
    wait_until(WAIT, "Curator to queue on the first lock", || {
        let m = Mutex::new(&client, a).unwrap();
        async move { m.contenders().await.unwrap().len() == 2 }
    })
    .await;
    java.expect("CONNECTED").await;
    assert!(java.lines.try_recv().is_err(), "Curator must wait");
    guard.release().await.unwrap();
    java.expect("HELD").await;
    java.send("release");
    java.expect("DONE").await;
    java.finish().await;

    // A Curator mutex on `b` blocks our multi-lock, which then releases `a` as well.
    let mut java = Participant::spawn(&classes, "CuratorMutexParticipant", &[&cs, b, "hold"]);
    java.expect("HELD").await;
    assert!(
        ours.try_acquire(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    let free = Mutex::new(&client, a).unwrap();
    let held = within("lock a, left free", free.try_acquire(WAIT))
        .await
        .unwrap();
    held.unwrap().release().await.unwrap();
    java.send("release");
    java.expect("DONE").await;
    java.finish().await;
}

/// Our semaphore takes several leases at once beside Curator's leases, and gives back what
/// it took when it cannot get them all.
async fn curator_and_rust_share_several_semaphore_leases(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let client = connect(&cs).await;
    let path = "/xlang/multi-lease";
    let semaphore = Semaphore::new(&client, path, 3).unwrap();
    let mut java = Participant::spawn(
        &classes,
        "CuratorMutexParticipant",
        &[&cs, path, "lease", "3"],
    );
    java.expect("HELD").await;
    // Two of three left: three at once cannot be had; what was taken is returned.
    assert!(
        semaphore
            .try_acquire_many(3, Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(semaphore.participants().await.unwrap().len(), 1);
    let two = within("two leases", semaphore.acquire_many(2))
        .await
        .unwrap();
    assert_eq!(semaphore.participants().await.unwrap().len(), 3);
    assert!(
        semaphore
            .try_acquire(Duration::from_millis(100))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        semaphore.acquire_many(4).await,
        Err(zk_recipes::Error::InvalidState(_))
    ));
    for lease in two {
        lease.release().await.unwrap();
    }
    java.send("release");
    java.expect("DONE").await;
    java.finish().await;
    assert!(semaphore.participants().await.unwrap().is_empty());
}

/// Curator's `DistributedAtomicInteger` promoted to a lock and our `AtomicInteger` promoted
/// to the same lock path count one 4-byte counter without losing an update; the lock path
/// holds Curator's mutex nodes only while someone is promoted.
async fn curator_and_rust_increment_one_atomic_integer_through_a_promoted_lock(kind: ServerKind) {
    const JAVA: usize = 2;
    const JAVA_ROUNDS: usize = 30;
    const RUST: usize = 2;
    const RUST_ROUNDS: usize = 30;
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let (path, lock) = ("/xlang/int", "/xlang/int-lock");
    let rounds = JAVA_ROUNDS.to_string();
    let mut java: Vec<Participant> = (0..JAVA)
        .map(|_| {
            Participant::spawn(
                &classes,
                "CuratorCounterParticipant",
                &[&cs, path, &rounds, "int", lock],
            )
        })
        .collect();
    for p in &mut java {
        p.expect("CONNECTED").await;
    }
    let mut tasks = Vec::new();
    for _ in 0..RUST {
        let client = connect(&cs).await;
        tasks.push(tokio::spawn(async move {
            // One optimistic attempt, then the lock: most increments under contention take it.
            let counter = AtomicInteger::new(&client, path)
                .unwrap()
                .max_attempts(1)
                .promoted_to_lock(lock, WAIT)
                .unwrap();
            for _ in 0..RUST_ROUNDS {
                counter.increment().await.unwrap();
            }
        }));
    }
    for task in tasks {
        within("our increments", task).await.unwrap();
    }
    for p in java {
        p.finish().await;
    }
    let client = connect(&cs).await;
    let (data, _) = client.get_data(path).await.unwrap();
    let expected = i32::try_from(JAVA * JAVA_ROUNDS + RUST * RUST_ROUNDS).unwrap();
    assert_eq!(
        data.as_ref(),
        expected.to_be_bytes(),
        "4-byte big-endian, no update lost"
    );
    assert_eq!(
        AtomicInteger::new(&client, path)
            .unwrap()
            .get()
            .await
            .unwrap(),
        expected
    );
}
