//! `NodeCache` and `TreeCache`: changes made by another client are mirrored (create, update,
//! delete, re-create), and after a reconnect during which another client changed things the
//! caches still converge (Apache 3.8 restores persistent watches without replaying missed
//! changes, so the caches re-read). On Apache ZooKeeper and on zk-server-lite.

use std::collections::BTreeMap;
use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions, SessionState};
use zk_recipes::{NodeCache, NodeChanges, TreeCache, TreeEvent, TreeEvents};
use zk_testkit::{FaultProxy, ServerKind};

use crate::{connect, connect_with, start, within};

for_each_server!(
    caches_mirror_changes,
    caches_converge_after_reconnect,
    a_curator_writer_and_our_cache_agree,
);

async fn start_lite() -> zk_server_lite::Server {
    zk_testkit::init_tracing();
    zk_server_lite::Server::builder().start().await.unwrap()
}

fn persistent() -> CreateOptions {
    CreateOptions::new(CreateMode::Persistent)
}

/// Waits until the node cache reports `want` (`None`: absent).
async fn node_becomes(changes: &mut NodeChanges, want: Option<&[u8]>) {
    within(&format!("node cache to show {want:?}"), async {
        loop {
            let node = changes.next().await.expect("node cache ended");
            if node.as_ref().map(|n| n.data.as_slice()) == want {
                return;
            }
        }
    })
    .await
}

/// Path → data of a cache snapshot.
fn contents(cache: &TreeCache) -> BTreeMap<String, Vec<u8>> {
    cache
        .snapshot()
        .into_iter()
        .map(|(path, node)| (path, node.data))
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(p, d)| ((*p).to_owned(), d.as_bytes().to_vec()))
        .collect()
}

/// Waits (on the cache's events) until its contents are `want`.
async fn tree_becomes(
    cache: &TreeCache,
    events: &mut TreeEvents,
    want: &BTreeMap<String, Vec<u8>>,
) {
    within(&format!("tree cache to show {want:?}"), async {
        while contents(cache) != *want {
            events.next().await.expect("tree cache ended");
        }
    })
    .await
}

async fn mirrors_changes(cs: &str) {
    let writer = connect(cs).await;
    let reader = connect(cs).await;

    let node = NodeCache::start(&reader, "/cfg").await.unwrap();
    assert_eq!(node.current(), None);
    let mut changes = node.changes();
    node_becomes(&mut changes, None).await;
    writer.create("/cfg", b"v1", &persistent()).await.unwrap();
    node_becomes(&mut changes, Some(b"v1")).await;
    writer.set_data("/cfg", b"v2", None).await.unwrap();
    node_becomes(&mut changes, Some(b"v2")).await;
    assert_eq!(node.current().unwrap().stat.version, 1);
    writer.delete("/cfg", None).await.unwrap();
    node_becomes(&mut changes, None).await;
    writer.create("/cfg", b"v3", &persistent()).await.unwrap();
    node_becomes(&mut changes, Some(b"v3")).await;

    writer
        .create("/tree", b"root", &persistent())
        .await
        .unwrap();
    writer.create("/tree/a", b"a", &persistent()).await.unwrap();
    writer
        .create("/tree/a/x", b"x", &persistent())
        .await
        .unwrap();
    let tree = TreeCache::start(&reader, "/tree").await.unwrap();
    let mut events = tree.events();
    assert_eq!(
        contents(&tree),
        expect(&[("/tree", "root"), ("/tree/a", "a"), ("/tree/a/x", "x")])
    );
    writer.create("/tree/b", b"b", &persistent()).await.unwrap();
    writer.set_data("/tree/a", b"a2", None).await.unwrap();
    writer.delete("/tree/a/x", None).await.unwrap();
    let want = expect(&[("/tree", "root"), ("/tree/a", "a2"), ("/tree/b", "b")]);
    tree_becomes(&tree, &mut events, &want).await;
    // Each kind of change is reported as its own event.
    let mut events = tree.events();
    writer
        .create("/tree/b/c", b"c", &persistent())
        .await
        .unwrap();
    let added = within("an add event", events.next()).await.unwrap();
    assert!(
        matches!(&added, TreeEvent::NodeAdded { path, node } if path == "/tree/b/c" && node.data == b"c"),
        "{added:?}"
    );
    writer.set_data("/tree/b/c", b"c2", None).await.unwrap();
    let updated = within("an update event", events.next()).await.unwrap();
    assert!(
        matches!(&updated, TreeEvent::NodeUpdated { path, node } if path == "/tree/b/c" && node.data == b"c2"),
        "{updated:?}"
    );
    writer.delete("/tree/b/c", None).await.unwrap();
    let removed = within("a remove event", events.next()).await.unwrap();
    assert!(
        matches!(&removed, TreeEvent::NodeRemoved { path, node } if path == "/tree/b/c" && node.data == b"c2"),
        "{removed:?}"
    );
}

async fn converges_after_reconnect(cs: &str, proxy: &FaultProxy) {
    let writer = connect(cs).await;
    writer.create("/r", b"r", &persistent()).await.unwrap();
    writer.create("/r/keep", b"k", &persistent()).await.unwrap();
    writer.create("/r/gone", b"g", &persistent()).await.unwrap();
    writer
        .create("/watched", b"w1", &persistent())
        .await
        .unwrap();

    let reader: Client = connect_with(&proxy.addr().to_string(), Duration::from_secs(20)).await;
    let tree = TreeCache::start(&reader, "/r").await.unwrap();
    let node = NodeCache::start(&reader, "/watched").await.unwrap();
    let mut events = tree.events();
    let mut changes = node.changes();

    // Away: the reader cannot reconnect while the writer changes everything.
    proxy.refuse_new(true);
    proxy.cut_all().await;
    let mut state = reader.state_watch();
    within(
        "the reader to notice",
        state.wait_for(|s| *s == SessionState::Suspended),
    )
    .await
    .unwrap();
    writer.set_data("/r/keep", b"k2", None).await.unwrap();
    writer.delete("/r/gone", None).await.unwrap();
    writer.create("/r/new", b"n", &persistent()).await.unwrap();
    writer
        .create("/r/new/deep", b"d", &persistent())
        .await
        .unwrap();
    writer.set_data("/watched", b"w2", None).await.unwrap();
    proxy.refuse_new(false);

    let want = expect(&[
        ("/r", "r"),
        ("/r/keep", "k2"),
        ("/r/new", "n"),
        ("/r/new/deep", "d"),
    ]);
    tree_becomes(&tree, &mut events, &want).await;
    node_becomes(&mut changes, Some(b"w2")).await;
    assert!(!tree.is_ended() && !node.is_ended());

    // And the watches still work after the reconnect.
    writer
        .create("/r/after", b"a", &persistent())
        .await
        .unwrap();
    let mut want = want;
    want.insert("/r/after".to_owned(), b"a".to_vec());
    tree_becomes(&tree, &mut events, &want).await;
}

async fn caches_mirror_changes(kind: ServerKind) {
    let server = start(kind).await;
    mirrors_changes(&server.connect_string()).await;
}

async fn caches_converge_after_reconnect(kind: ServerKind) {
    let server = start(kind).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    converges_after_reconnect(&server.connect_string(), &proxy).await;
}

/// When the session expires both caches end (their streams finish) and keep their last
/// contents. zk-server-lite only: the session is ended with its `expire_session` hook,
/// which Apache does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_end_with_the_session_on_server_lite() {
    let server = start_lite().await;
    let cs = server.connect_string();
    let writer = connect(&cs).await;
    writer.create("/e", b"e", &persistent()).await.unwrap();
    let reader = connect(&cs).await;
    let node = NodeCache::start(&reader, "/e").await.unwrap();
    let tree = TreeCache::start(&reader, "/e").await.unwrap();
    let mut changes = node.changes();
    let mut events = tree.events();
    node_becomes(&mut changes, Some(b"e")).await;

    assert!(server.expire_session(reader.session_id()));
    within("the node cache to end", async {
        while changes.next().await.is_some() {}
    })
    .await;
    within("the tree cache to end", async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(node.is_ended() && tree.is_ended());
    assert_eq!(node.current().unwrap().data, b"e");
    assert_eq!(contents(&tree), expect(&[("/e", "e")]));
}

/// What one path went through: incarnations (create .. delete), each a list of data values.
type History = Vec<(Vec<String>, bool)>;

/// Applies one change to the per-path histories (`None` data: deleted).
fn record(histories: &mut BTreeMap<String, History>, path: &str, data: Option<&str>, added: bool) {
    let history = histories.entry(path.to_owned()).or_default();
    match data {
        Some(data) if added => history.push((vec![data.to_owned()], false)),
        Some(data) => match history.last_mut() {
            Some((values, false)) => values.push(data.to_owned()),
            _ => history.push((vec![data.to_owned()], false)),
        },
        None => {
            if let Some(last) = history.last_mut() {
                last.1 = true;
            }
        }
    }
}

/// `seen` is what a cache may report for `written`: incarnations in order (some may be
/// missed entirely when they were short), each one's values in order (some skipped when
/// changes came faster than reads), and the last incarnation's last value and liveness
/// equal to the writer's.
fn consistent(written: &History, seen: &History) -> bool {
    let mut w = written.iter();
    for (values, removed) in seen {
        let Some(matched) = w.by_ref().find(|(all, _)| {
            let mut all = all.iter();
            values.iter().all(|v| all.any(|a| a == v))
        }) else {
            return false;
        };
        if *removed && !matched.1 {
            return false;
        }
    }
    match (written.last(), seen.last()) {
        (Some((wv, wr)), Some((sv, sr))) => wr == sr && (*wr || wv.last() == sv.last()),
        (Some((_, true)), None) => true,
        (None, None) => true,
        _ => false,
    }
}

/// Curator writes a script of creates, updates and deletes under a root; our cache (started
/// first, with its events from the initial load on) ends with the same view, and for every
/// node the events it reported follow the writer's order.
async fn a_curator_writer_and_our_cache_agree(kind: ServerKind) {
    if !crate::jvm::java_ready() {
        return;
    }
    let classes = crate::jvm::compiled().await;
    let server = start(kind).await;
    let cs = server.connect_string();
    let client = connect(&cs).await;
    let root = "/cc";
    client.create(root, b"r", &persistent()).await.unwrap();
    let (cache, mut events) = TreeCache::start_with_events(&client, root).await.unwrap();
    let mut seen: BTreeMap<String, History> = BTreeMap::new();
    match within("the initial events", events.next()).await {
        Some(TreeEvent::NodeAdded { path, node }) => {
            assert_eq!((path.as_str(), node.data.as_slice()), (root, &b"r"[..]));
            record(&mut seen, &path, Some("r"), true);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        within("initialized", events.next()).await,
        Some(TreeEvent::Initialized)
    );

    let mut written: BTreeMap<String, History> = BTreeMap::new();
    record(&mut written, root, Some("r"), true);
    let mut script = Vec::new();
    for round in 0..4 {
        for name in ["a", "b"] {
            let p = format!("{root}/{name}");
            script.push(format!("create {p} {name}{round}c"));
            script.push(format!("create {p}/x {name}{round}x"));
            script.push(format!("set {p} {name}{round}s1"));
            script.push(format!("set {p}/x {name}{round}xs"));
            script.push(format!("set {p} {name}{round}s2"));
            if round < 3 {
                script.push(format!("delete {p}/x"));
                script.push(format!("delete {p}"));
            }
        }
        script.push(format!("set {root} r{round}"));
    }
    for line in &script {
        let w: Vec<&str> = line.split(' ').collect();
        match w[0] {
            "create" => record(&mut written, w[1], Some(w[2]), true),
            "set" => record(&mut written, w[1], Some(w[2]), false),
            _ => record(&mut written, w[1], None, false),
        }
    }

    let mut java = crate::jvm::Participant::spawn(&classes, "CuratorWriterParticipant", &[&cs]);
    java.expect("READY").await;
    for line in &script {
        java.send(line);
    }
    java.send(&format!("tree {root}"));
    let mut final_view = BTreeMap::new();
    loop {
        let line = within("Java's tree", async {
            loop {
                let line = java.lines.recv().await.expect("the writer ended");
                if line.starts_with("NODE ") || line == "END" {
                    return line;
                }
            }
        })
        .await;
        let Some(rest) = line.strip_prefix("NODE ") else {
            break;
        };
        let (path, data) = rest.split_once(' ').unwrap();
        final_view.insert(path.to_owned(), data.as_bytes().to_vec());
    }
    java.send("quit");
    java.expect("DONE").await;
    java.finish().await;

    // Same final view (every event already queued when it matches is counted too)...
    let apply = |seen: &mut BTreeMap<String, History>, event: TreeEvent| match event {
        TreeEvent::NodeAdded { path, node } => record(
            seen,
            &path,
            Some(&String::from_utf8_lossy(&node.data)),
            true,
        ),
        TreeEvent::NodeUpdated { path, node } => record(
            seen,
            &path,
            Some(&String::from_utf8_lossy(&node.data)),
            false,
        ),
        TreeEvent::NodeRemoved { path, .. } => record(seen, &path, None, false),
        other => panic!("unexpected {other:?}"),
    };
    within("our cache to match Curator's view", async {
        loop {
            // Events are queued together with the change they describe.
            while let Ok(Some(event)) = tokio::time::timeout(Duration::ZERO, events.next()).await {
                apply(&mut seen, event);
            }
            if contents(&cache) == final_view {
                break;
            }
            let event = events.next().await.expect("cache ended");
            apply(&mut seen, event);
        }
    })
    .await;
    // ...and per node, events in the writer's order.
    for (path, history) in &written {
        let ours = seen.get(path).cloned().unwrap_or_default();
        assert!(
            consistent(history, &ours),
            "{path}: Curator wrote {history:?}, our cache reported {ours:?}"
        );
    }
}

/// The order check rejects reordered values, a wrong final value, invented incarnations and
/// a missed final removal.
#[test]
fn the_per_node_order_check_can_fail() {
    let v = |values: &[&str], removed: bool| {
        (values.iter().map(|s| (*s).to_owned()).collect(), removed)
    };
    let written: History = vec![v(&["a", "b", "c"], true), v(&["d", "e"], false)];
    assert!(consistent(
        &written,
        &[v(&["a", "c"], true), v(&["e"], false)].to_vec()
    ));
    assert!(consistent(&written, &[v(&["d", "e"], false)].to_vec()));
    assert!(!consistent(
        &written,
        &[v(&["c", "a"], true), v(&["e"], false)].to_vec()
    ));
    assert!(!consistent(
        &written,
        &[v(&["a"], true), v(&["d"], false)].to_vec()
    ));
    assert!(!consistent(
        &written,
        &[v(&["x"], true), v(&["e"], false)].to_vec()
    ));
    assert!(!consistent(
        &written,
        &[v(&["a"], true), v(&["e"], true)].to_vec()
    ));
}
