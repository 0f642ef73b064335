//! Distributed queues: FIFO order, Curator's item names, blocking takes woken by puts,
//! priority order, N producers × M consumers with every item delivered exactly once (lease
//! mode), and a consumer whose session expires mid-item: its item goes to another consumer
//! and nothing is lost. On Apache ZooKeeper and on zk-server-lite; and beside Curator's Java
//! queues on the same paths.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_recipes::{DistributedPriorityQueue, DistributedQueue, Error};
use zk_testkit::FaultProxy;

use zk_testkit::ServerKind;

use crate::jvm::{Participant, compiled, java_ready};
use crate::{WAIT, connect, connect_with, start, within};

for_each_server!(
    same_session_and_cancelled_takes,
    fifo_order,
    producers_and_consumers_exactly_once,
    expired_consumer_loses_no_item,
    curator_java_and_rust_share_a_queue,
    curator_consumer_keeps_receiving_after_our_queue_runs_empty,
    curator_and_rust_share_a_simple_queue,
    curator_and_rust_share_delay_and_id_queues,
    waiting_leased_consumers_are_not_all_woken_by_each_item,
);

async fn start_lite() -> zk_server_lite::Server {
    zk_testkit::init_tracing();
    zk_server_lite::Server::builder().start().await.unwrap()
}

/// One consumer sees the puts in order; names are Curator's; a blocked take wakes on a put.
async fn fifo(cs: &str) {
    let client = connect(cs).await;
    let queue = DistributedQueue::new(&client, "/queues/fifo").unwrap();
    for i in 0..10 {
        let path = queue.put(format!("item-{i}").as_bytes()).await.unwrap();
        assert!(path.starts_with("/queues/fifo/queue-"), "{path}");
    }
    assert_eq!(queue.items().await.unwrap().len(), 10);
    for i in 0..10 {
        let data = within("a take", queue.take()).await.unwrap();
        assert_eq!(data, format!("item-{i}").as_bytes());
    }
    assert_eq!(
        queue
            .take_timeout(Duration::from_millis(200))
            .await
            .unwrap(),
        None
    );

    let consumer = connect(cs).await;
    let waiting = {
        let queue = DistributedQueue::new(&consumer, "/queues/fifo").unwrap();
        tokio::spawn(async move { queue.take().await })
    };
    queue.put(b"late").await.unwrap();
    assert_eq!(
        within("the woken take", waiting).await.unwrap().unwrap(),
        b"late"
    );
    assert!(queue.items().await.unwrap().is_empty());
}

/// Lower priorities first, equal ones in put order; names carry Curator's priority encoding.
async fn priority(cs: &str) {
    let client = connect(cs).await;
    let queue = DistributedPriorityQueue::new(&client, "/queues/prio").unwrap();
    for (data, p) in [("p5", 5), ("m1a", -1), ("p3", 3), ("z0", 0), ("m1b", -1)] {
        queue.put(data.as_bytes(), p).await.unwrap();
    }
    let names = queue.queue().items().await.unwrap();
    assert!(names[0].starts_with("queue-0FFFFFFFF"), "{names:?}");
    assert!(names[4].starts_with("queue-100000005"), "{names:?}");
    for want in ["m1a", "m1b", "z0", "p3", "p5"] {
        let data = within("a take", queue.queue().take()).await.unwrap();
        assert_eq!(data, want.as_bytes());
    }
}

/// Producers × consumers in lease mode: every item exactly once.
async fn exactly_once(cs: &str, producers: usize, consumers: usize, per_producer: usize) {
    let path = "/queues/work";
    let locks = "/queues/work-locks";
    let total = producers * per_producer;
    let seen: Arc<Mutex<HashMap<Vec<u8>, usize>>> = Arc::default();
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let client = connect(cs).await;
        let seen = seen.clone();
        let done_tx = done_tx.clone();
        let mut done_rx = done_rx.clone();
        tasks.push(tokio::spawn(async move {
            let queue = DistributedQueue::with_lock_path(&client, path, locks).unwrap();
            loop {
                let item = tokio::select! {
                    item = queue.take_leased() => item.unwrap(),
                    _ = done_rx.wait_for(|d| *d) => break,
                };
                let n = {
                    let mut seen = seen.lock().unwrap();
                    *seen.entry(item.data().to_vec()).or_default() += 1;
                    seen.values().sum::<usize>()
                };
                item.complete().await.unwrap();
                if n == total {
                    done_tx.send_replace(true);
                }
            }
            tracing::info!(consumer = c, "consumer done");
            client.close().await;
        }));
    }
    for p in 0..producers {
        let client = connect(cs).await;
        tasks.push(tokio::spawn(async move {
            let queue = DistributedQueue::with_lock_path(&client, path, locks).unwrap();
            for i in 0..per_producer {
                queue.put(format!("{p}-{i}").as_bytes()).await.unwrap();
            }
            client.close().await;
        }));
    }
    for task in tasks {
        within("producers and consumers", task).await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), total, "distinct items delivered");
    assert!(
        seen.values().all(|n| *n == 1),
        "an item was delivered twice"
    );
    let observer = connect(cs).await;
    assert!(observer.get_children(path).await.unwrap().is_empty());
    assert!(observer.get_children(locks).await.unwrap().is_empty());
}

/// `crashing` leases an item, then `kill` ends its session: the item goes to `other`.
async fn crash_mid_item<K, F>(
    cs: &str,
    crashing: zk_client::Client,
    kill: K,
    proxy: Option<&FaultProxy>,
) where
    K: FnOnce() -> F,
    F: Future<Output = ()>,
{
    let (path, locks) = ("/queues/crash", "/queues/crash-locks");
    let other = connect(cs).await;
    let producer = DistributedQueue::with_lock_path(&other, path, locks).unwrap();
    producer.put(b"a").await.unwrap();
    producer.put(b"b").await.unwrap();

    let q1 = DistributedQueue::with_lock_path(&crashing, path, locks).unwrap();
    let held = within("the first lease", q1.take_leased()).await.unwrap();
    assert_eq!(held.data(), b"a");
    let lock = other.exists(held.lock_path()).await.unwrap().unwrap();
    assert_eq!(lock.ephemeral_owner, crashing.session_id());

    // The other consumer gets "b", and nothing else while "a" is held.
    let q2 = DistributedQueue::with_lock_path(&other, path, locks).unwrap();
    let b = within("the second lease", q2.take_leased()).await.unwrap();
    assert_eq!(b.data(), b"b");
    b.complete().await.unwrap();
    let waiting = tokio::spawn(async move { q2.take_leased().await });
    // Still blocked: "a" is locked by a live session.
    let none = producer
        .take_leased_timeout(Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_none());
    assert!(!waiting.is_finished());

    let lost = held.lost();
    kill().await;
    let a = within("the crashed consumer's item", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.data(), b"a");
    assert!(a.fencing_token() > held.fencing_token());
    if let Some(proxy) = proxy {
        proxy.unstall();
    }
    within("the crashed holder to see its lease lost", lost).await;
    a.complete().await.unwrap();
    // The crashed holder learns that its lease is gone.
    let late = within("the late complete", held.complete()).await;
    assert!(matches!(late, Err(Error::NodeVanished(_))), "{late:?}");
    assert!(other.get_children(path).await.unwrap().is_empty());
}

/// Two leased takes on one session get different items; takes cancelled at any point leave
/// no lock behind and lose no item.
async fn same_session_and_cancelled_takes_at(cs: &str) {
    let (path, locks) = ("/queues/cancel", "/queues/cancel-locks");
    let client = connect(cs).await;
    let queue = DistributedQueue::with_lock_path(&client, path, locks).unwrap();
    for i in 0..3 {
        queue.put(format!("c{i}").as_bytes()).await.unwrap();
    }
    let (a, b) = tokio::join!(queue.take_leased(), queue.take_leased());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.path(), b.path(), "one item leased twice on one session");
    a.abandon().await.unwrap();
    b.abandon().await.unwrap();

    for micros in (0..40u64).map(|i| i * 150) {
        let attempt = tokio::time::timeout(Duration::from_micros(micros), queue.take_leased());
        if let Ok(item) = attempt.await {
            item.unwrap().abandon().await.unwrap();
        }
        // Whatever point the take was cancelled at, its lock goes away.
        zk_testkit::wait_until(WAIT, "no lock left behind", || {
            let client = client.clone();
            async move { client.get_children(locks).await.unwrap().is_empty() }
        })
        .await;
    }
    for want in ["c0", "c1", "c2"] {
        assert_eq!(
            within("a take", queue.take()).await.unwrap(),
            want.as_bytes()
        );
    }
}

async fn same_session_and_cancelled_takes(kind: ServerKind) {
    let server = start(kind).await;
    same_session_and_cancelled_takes_at(&server.connect_string()).await;
}

async fn fifo_order(kind: ServerKind) {
    let server = start(kind).await;
    fifo(&server.connect_string()).await;
    priority(&server.connect_string()).await;
}

async fn producers_and_consumers_exactly_once(kind: ServerKind) {
    let server = start(kind).await;
    exactly_once(&server.connect_string(), 3, 3, 10).await;
}

async fn expired_consumer_loses_no_item(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let crashing = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    // Stalled past the session timeout, the server expires the session; the client
    // learns it once the proxy lets it through again.
    crash_mid_item(&cs, crashing, || async { proxy.stall() }, Some(&proxy)).await;
}

/// zk-server-lite only: the session is expired by the server's own `expire_session` (Apache
/// has no such hook; the test above expires it on both servers through a stalled proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_consumer_loses_no_item_on_server_lite() {
    let server = start_lite().await;
    let cs = server.connect_string();
    let crashing = connect(&cs).await;
    let session = crashing.session_id();
    crash_mid_item(
        &cs,
        crashing,
        || async { assert!(server.expire_session(session)) },
        None,
    )
    .await;
}

/// Runs the Java queue participant to completion; returns its stdout lines.
async fn java_queue(classes: &std::path::Path, args: &[&str]) -> Vec<String> {
    let mut java = Participant::spawn(classes, "CuratorQueueParticipant", args);
    java.expect("DONE").await;
    let lines = java.seen().to_vec();
    java.finish().await;
    lines
}

/// Curator's Java queues and ours on the same paths, both ways: items a Curator producer
/// puts (plain and priority) come out of our queues in order, and items we put (one by one
/// and several in one node) are consumed by a Curator consumer in lockPath mode.
async fn curator_java_and_rust_share_a_queue(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let classes = compiled().await;

    let server = start(kind).await;
    let cs = server.connect_string();
    let client = connect(&cs).await;
    let (path, locks) = ("/queues/shared", "/queues/shared-locks");

    // Java puts, we take (lease mode), in order.
    java_queue(&classes, &[&cs, "produce", path, "j0", "j1", "j2"]).await;
    let queue = DistributedQueue::with_lock_path(&client, path, locks).unwrap();
    for want in ["j0", "j1", "j2"] {
        let item = within("a Java item", queue.take_leased()).await.unwrap();
        assert_eq!(item.data(), want.as_bytes());
        item.complete().await.unwrap();
    }

    // We put, Java consumes with its lockPath safety.
    queue.put(b"r0").await.unwrap();
    queue.put_multi(&[b"r1", b"r2"]).await.unwrap();
    queue.put(b"r3").await.unwrap();
    let lines = java_queue(&classes, &[&cs, "consume", path, locks, "4"]).await;
    let got: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("GOT "))
        .collect();
    assert_eq!(got, ["r0", "r1", "r2", "r3"]);
    assert!(queue.items().await.unwrap().is_empty());

    // Java's priority queue, our priority order.
    let prio = "/queues/shared-prio";
    java_queue(
        &classes,
        &[
            &cs,
            "produce-priority",
            prio,
            "p5:5",
            "m1:-1",
            "z0:0",
            "m1b:-1",
        ],
    )
    .await;
    let queue = DistributedPriorityQueue::new(&client, prio).unwrap();
    for want in ["m1", "m1b", "z0", "p5"] {
        let data = within("a Java priority item", queue.queue().take())
            .await
            .unwrap();
        assert_eq!(data, want.as_bytes());
    }
}

/// A server of `kind` that reaps empty containers every 100 ms (the default is every
/// minute), and its connect string. The first value keeps it running.
async fn start_reaping(kind: ServerKind) -> (Box<dyn std::any::Any + Send>, String) {
    zk_testkit::init_tracing();
    match kind {
        ServerKind::Apache => {
            let config = zk_testkit::ApacheConfig::new()
                .java_property("znode.container.checkIntervalMs", "100");
            let server = zk_testkit::ApacheServer::start_with(config).await.unwrap();
            let cs = server.connect_string();
            (Box::new(server), cs)
        }
        ServerKind::Lite => {
            let server = zk_server_lite::Server::builder()
                .container_reaping(100, 0)
                .start()
                .await
                .unwrap();
            let cs = server.connect_string();
            (Box::new(server), cs)
        }
        other => panic!("no reaping server for {other:?}"),
    }
}

/// Waits until the server has run a container-reaping pass that started after this call:
/// a fresh container, used and emptied, disappears.
async fn await_reaping_pass(client: &zk_client::Client, probe: &str) {
    zk_recipes::paths::ensure_path(client, probe).await.unwrap();
    let child = format!("{probe}/child");
    client
        .create(
            &child,
            b"",
            &zk_client::CreateOptions::new(zk_client::CreateMode::Persistent),
        )
        .await
        .unwrap();
    client.delete(&child, None).await.unwrap();
    zk_testkit::wait_until(WAIT, "the server to reap an empty container", || {
        let client = client.clone();
        let probe = probe.to_owned();
        async move { client.exists(&probe).await.unwrap().is_none() }
    })
    .await;
}

/// Issue 13's queue bug: our queue node was a container, so once the queue ran empty the
/// server removed it and a Curator consumer (which watches the queue node) never saw another
/// item. Now the node is persistent as Curator makes it: a Curator consumer takes items we
/// put, the queue stays empty past a reaping pass, and it still takes what we put next.
async fn curator_consumer_keeps_receiving_after_our_queue_runs_empty(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let classes = compiled().await;
    let (_server, cs) = start_reaping(kind).await;
    let client = connect(&cs).await;
    let (path, locks) = ("/queues/reaped/q", "/queues/reaped/q-locks");
    let queue = DistributedQueue::with_lock_path(&client, path, locks).unwrap();
    // We create the queue node (as a put would), before Curator's start() sees it.
    queue.put(b"r0").await.unwrap();
    queue.put(b"r1").await.unwrap();
    let mut java = Participant::spawn(
        &classes,
        "CuratorQueueParticipant",
        &[&cs, "consume", path, locks, "4"],
    );
    assert_eq!(java.expect("GOT ").await, "r0");
    assert_eq!(java.expect("GOT ").await, "r1");
    zk_testkit::wait_until(WAIT, "Curator to finish the first items", || {
        let queue = queue.clone();
        async move { queue.items().await.unwrap().is_empty() }
    })
    .await;

    await_reaping_pass(&client, "/queues/reaped/probe").await;
    assert!(
        client.exists(path).await.unwrap().is_some(),
        "the empty queue node was reaped"
    );
    assert!(client.exists(locks).await.unwrap().is_some());

    queue.put(b"r2").await.unwrap();
    queue.put(b"r3").await.unwrap();
    assert_eq!(java.expect("GOT ").await, "r2");
    assert_eq!(java.expect("GOT ").await, "r3");
    java.expect("DONE").await;
    java.finish().await;
}

/// `start()` makes the queue and lock nodes persistent, with container parents, as
/// Curator's `DistributedQueue.start()` does: neither goes away when empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_queue_nodes_survive_reaping_on_server_lite() {
    let (_server, cs) = start_reaping(ServerKind::Lite).await;
    let client = connect(&cs).await;
    let queue = DistributedQueue::with_lock_path(&client, "/app/q", "/app/q-locks").unwrap();
    queue.start().await.unwrap();
    queue.put(b"x").await.unwrap();
    let item = queue.take_leased().await.unwrap();
    item.complete().await.unwrap();
    await_reaping_pass(&client, "/probe").await;
    assert!(client.exists("/app/q").await.unwrap().is_some());
    assert!(client.exists("/app/q-locks").await.unwrap().is_some());
    // The parent is a container, as Curator's: it goes once the queue is deleted.
    client.delete("/app/q", None).await.unwrap();
    client.delete("/app/q-locks", None).await.unwrap();
    await_reaping_pass(&client, "/probe").await;
    assert!(client.exists("/app").await.unwrap().is_none());
}

/// Curator's `SimpleDistributedQueue` and ours on one path, both ways: `qn-` items with raw
/// bytes, FIFO; a blocked take on each side is woken by the other side's offer.
async fn curator_and_rust_share_a_simple_queue(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let classes = compiled().await;
    let server = start(kind).await;
    let cs = server.connect_string();
    let client = connect(&cs).await;
    let path = "/queues/simple";
    let queue = zk_recipes::SimpleDistributedQueue::new(&client, path).unwrap();

    // Java offers, we take in order.
    java_queue(&classes, &[&cs, "simple-offer", path, "j0", "j1", "j2"]).await;
    let names = client.get_children(path).await.unwrap();
    assert!(names.iter().all(|n| n.starts_with("qn-")), "{names:?}");
    assert_eq!(queue.peek().await.unwrap().as_deref(), Some(&b"j0"[..]));
    for want in ["j0", "j1", "j2"] {
        assert_eq!(
            within("a Java item", queue.take()).await.unwrap(),
            want.as_bytes()
        );
    }
    assert_eq!(queue.poll().await.unwrap(), None);

    // Java blocks in take; our offers wake it, in order.
    let mut java = Participant::spawn(
        &classes,
        "CuratorQueueParticipant",
        &[&cs, "simple-take", path, "3"],
    );
    // Our blocked take is woken by Java's offer.
    let waiting = tokio::spawn({
        let queue = queue.clone();
        async move { queue.take().await }
    });
    for item in ["r0", "r1", "r2", "r3"] {
        queue.offer(item.as_bytes()).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(java.expect("GOT ").await);
    }
    java.expect("DONE").await;
    java.finish().await;
    let ours = within("our blocked take", waiting).await.unwrap().unwrap();
    got.push(String::from_utf8(ours).unwrap());
    got.sort();
    assert_eq!(got, ["r0", "r1", "r2", "r3"], "every item exactly once");
    java_queue(&classes, &[&cs, "simple-offer", path, "late"]).await;
    assert_eq!(
        within("the late item", queue.poll_timeout(WAIT))
            .await
            .unwrap(),
        Some(b"late".to_vec())
    );
}

/// Curator's delay and id queues and ours on the same paths: Java's delayed items come out
/// of ours earliest-due first and never early; Java's id items are removed by id by us;
/// our delayed items reach a Curator delay consumer in due order, not before they are due.
async fn curator_and_rust_share_delay_and_id_queues(kind: ServerKind) {
    use zk_recipes::delay_queue::delay_name;
    use zk_recipes::{DistributedDelayQueue, DistributedIdQueue};

    if !java_ready() {
        return;
    }
    let classes = compiled().await;
    let server = start(kind).await;
    let cs = server.connect_string();
    let client = connect(&cs).await;

    let path = "/queues/delay-from-java";
    java_queue(
        &classes,
        &[
            &cs,
            "produce-delay",
            path,
            "late:1500",
            "early:300",
            "now:0",
        ],
    )
    .await;
    let delay = DistributedDelayQueue::new(&client, path).unwrap();
    let names = client.get_children(path).await.unwrap();
    assert!(names.iter().all(|n| n.starts_with("queue-|")), "{names:?}");
    let due = |name: &str| {
        let hex = name.split('|').nth(1).unwrap();
        u64::from_str_radix(hex, 16).unwrap()
    };
    let latest = names.iter().map(|n| due(n)).max().unwrap();
    for want in ["now", "early", "late"] {
        let got = within("a delayed Java item", delay.queue().take())
            .await
            .unwrap();
        assert_eq!(got, want.as_bytes());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        now >= latest,
        "the last item came {} ms early",
        latest - now
    );

    let path = "/queues/id-from-java";
    java_queue(
        &classes,
        &[&cs, "produce-id", path, "a:x", "b:y", "c:x", "d:z"],
    )
    .await;
    let ids = DistributedIdQueue::new(&client, path).unwrap();
    assert_eq!(ids.remove("x").await.unwrap(), 2);
    assert_eq!(
        within("an id item", ids.queue().take()).await.unwrap(),
        b"b"
    );
    assert_eq!(
        within("an id item", ids.queue().take()).await.unwrap(),
        b"d"
    );

    let path = "/queues/delay-to-java";
    let ours = DistributedDelayQueue::new(&client, path).unwrap();
    let later = ours
        .put_after(b"d1", Duration::from_millis(800))
        .await
        .unwrap();
    ours.put_after(b"d0", Duration::ZERO).await.unwrap();
    let later_due = due(zk_recipes::paths::node_name(&later));
    assert!(zk_recipes::paths::node_name(&later).starts_with(&delay_name(later_due)));
    let lines = java_queue(&classes, &[&cs, "consume-delay", path, "2"]).await;
    let got: Vec<(&str, u64)> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("GOT "))
        .map(|l| {
            let (item, at) = l.split_once(' ').unwrap();
            (item, at.parse().unwrap())
        })
        .collect();
    assert_eq!(
        got.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        ["d0", "d1"]
    );
    assert!(
        got[1].1 >= later_due,
        "Curator got d1 {} ms early",
        later_due - got[1].1
    );
}

/// Watch notifications the server sent to each session so far: per connection (`cons`), the
/// packets sent minus the packets received (every request, ping included, gets one reply).
async fn notifications_by_session(server: &zk_testkit::TestServer) -> HashMap<i64, i64> {
    let text = server.four_letter_word("cons").await.unwrap();
    let field = |line: &str, key: &str| -> Option<String> {
        let start = line.find(key)? + key.len();
        let rest = &line[start..];
        Some(rest[..rest.find([',', ')']).unwrap_or(rest.len())].to_owned())
    };
    let mut out = HashMap::new();
    for line in text.lines() {
        let (Some(sid), Some(recved), Some(sent)) = (
            field(line, "sid=0x"),
            field(line, "recved="),
            field(line, "sent="),
        ) else {
            continue;
        };
        let sid = u64::from_str_radix(&sid, 16).unwrap() as i64;
        out.insert(
            sid,
            sent.parse::<i64>().unwrap() - recved.parse::<i64>().unwrap(),
        );
    }
    out
}

/// The server's watch count (`mntr`'s `zk_watch_count`: data and child watches).
async fn watch_count(server: &zk_testkit::TestServer) -> usize {
    let text = server.four_letter_word("mntr").await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("zk_watch_count")?.trim().parse().ok())
        .unwrap()
}

/// Issue 13 item 6: N consumers blocked in `take_leased` and M items put one at a time. A
/// waiting consumer that watched the whole queue (and the lock path) was woken by every
/// change: Θ(M × N) notifications. Waiting in line, each item wakes a bounded number of them.
async fn waiting_leased_consumers_are_not_all_woken_by_each_item(kind: ServerKind) {
    const CONSUMERS: usize = 12;
    const ITEMS: usize = 5;
    let server = start(kind).await;
    let cs = server.connect_string();
    let path = "/queues/herd";
    let locks = "/queues/herd-locks";
    let producer = connect(&cs).await;
    let queue = DistributedQueue::with_lock_path(&producer, path, locks).unwrap();
    queue.start().await.unwrap();
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut sessions = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let client = connect(&cs).await;
        sessions.push(client.session_id());
        let taken = taken.clone();
        consumers.push(tokio::spawn(async move {
            let queue = DistributedQueue::with_lock_path(&client, path, locks).unwrap();
            loop {
                let item = queue.take_leased().await.unwrap();
                item.complete().await.unwrap();
                taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }));
    }
    // `done` items taken and every consumer blocked again: at least one watch each, plus the
    // first waiter's second one (`zk_watch_count`: Apache's `wchc` lists no child watches).
    let quiet = |done: usize| {
        let (server, taken) = (&server, &taken);
        async move {
            zk_testkit::wait_until(
                WAIT,
                format!("{done} items taken, every consumer waiting"),
                || async move {
                    taken.load(std::sync::atomic::Ordering::SeqCst) == done
                        && watch_count(server).await > CONSUMERS
                },
            )
            .await;
        }
    };
    quiet(0).await;
    let before = notifications_by_session(&server).await;
    for i in 0..ITEMS {
        queue.put(format!("item {i}").as_bytes()).await.unwrap();
        quiet(i + 1).await;
    }
    let after = notifications_by_session(&server).await;
    let woken: i64 = sessions.iter().map(|id| after[id] - before[id]).sum();
    eprintln!("{CONSUMERS} waiting consumers, {ITEMS} items: {woken} notifications");
    // In line: about five per item (the first waiter's queue and lock-path watches, the next
    // waiter's; 25 in all on both servers). All woken (the code before the line): 240-257,
    // more than 3 × ITEMS × CONSUMERS.
    let bound = (10 * ITEMS + CONSUMERS) as i64;
    assert!(
        woken <= bound,
        "{woken} notifications for {ITEMS} items to {CONSUMERS} waiting consumers (at most {bound})"
    );
    for consumer in consumers {
        consumer.abort();
    }
}
