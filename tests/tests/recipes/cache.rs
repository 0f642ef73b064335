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

for_each_server!(caches_mirror_changes, caches_converge_after_reconnect);

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
