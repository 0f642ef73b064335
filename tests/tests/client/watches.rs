//! Watch semantics per operation, as Apache ZooKeeper defines them.

use zk_client::{AddWatchMode, CreateMode, CreateOptions, Error, EventType, WatcherType};
use zk_testkit::{ServerKind, ServerOptions};

use crate::{connect, start_server, within};

for_each_server!(
    one_shot_watches_follow_apache_semantics,
    persistent_and_recursive_watches_are_streams,
    watch_changes_streams_every_change_in_both_modes,
    dropping_the_last_persistent_watcher_removes_it_on_the_server,
);

fn persistent() -> CreateOptions {
    CreateOptions::new(CreateMode::Persistent)
}

async fn one_shot_watches_follow_apache_semantics(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;

    // exists on a missing node registers a watch that fires on create.
    let (stat, created) = client.exists_watch("/w").await.unwrap();
    assert_eq!(stat, None);
    client.check_watches("/w", WatcherType::Data).await.unwrap();
    writer.create("/w", b"", persistent()).await.unwrap();
    let event = within("NodeCreated", created).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeCreated, "/w")
    );

    // getData / getChildren on a missing node fail and register nothing.
    assert!(matches!(
        client.get_data_watch("/none").await,
        Err(Error::NoNode)
    ));
    assert!(matches!(
        client.get_children_watch("/none").await,
        Err(Error::NoNode)
    ));
    assert_eq!(
        client.check_watches("/none", WatcherType::Any).await,
        Err(Error::NoWatcher)
    );

    // One server notification fans out to every local watcher of the path and kind.
    let (_, _, data1) = client.get_data_watch("/w").await.unwrap();
    let (_, _, data2) = client.get_data_watch("/w").await.unwrap();
    let (_, exists_w) = client.exists_watch("/w").await.unwrap();
    let (_, _, children) = client.get_children_watch("/w").await.unwrap();
    writer.set_data("/w", b"1", None).await.unwrap();
    for watcher in [data1, data2, exists_w] {
        let event = within("NodeDataChanged", watcher).await;
        assert_eq!(event.event_type, EventType::NodeDataChanged);
    }
    // The data change did not touch the child watch; a child creation fires it.
    writer.create("/w/c", b"", persistent()).await.unwrap();
    let event = within("NodeChildrenChanged", children).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeChildrenChanged, "/w")
    );

    // One-shot: after firing, the server holds no watch until a new read sets one.
    assert_eq!(
        client.check_watches("/w", WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    assert_eq!(
        client.check_watches("/w", WatcherType::Children).await,
        Err(Error::NoWatcher)
    );

    // Delete fires NodeDeleted on data and child watches of the node, and
    // NodeChildrenChanged on the parent's child watch.
    let (_, _, data) = client.get_data_watch("/w/c").await.unwrap();
    let (_, _, child) = client.get_children_watch("/w/c").await.unwrap();
    let (_, _, parent) = client.get_children_watch("/w").await.unwrap();
    writer.delete("/w/c", None).await.unwrap();
    for watcher in [data, child] {
        let event = within("NodeDeleted", watcher).await;
        assert_eq!(
            (event.event_type, event.path.as_str()),
            (EventType::NodeDeleted, "/w/c")
        );
    }
    let event = within("parent NodeChildrenChanged", parent).await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);

    // A dropped watcher is simply forgotten.
    let (_, _, dropped) = client.get_data_watch("/w").await.unwrap();
    drop(dropped);
    writer.set_data("/w", b"2", None).await.unwrap();
    client.sync("/").await.unwrap();

    // remove_watches tells the local watcher.
    let (_, _, removed) = client.get_data_watch("/w").await.unwrap();
    client
        .remove_watches("/w", WatcherType::Data)
        .await
        .unwrap();
    let event = within("DataWatchRemoved", removed).await;
    assert_eq!(event.event_type, EventType::DataWatchRemoved);
    assert_eq!(
        client.remove_watches("/w", WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
}

async fn persistent_and_recursive_watches_are_streams(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let other = connect(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;

    // Apache 3.8 keeps one watch mode per (connection, path) (ZOOKEEPER-4466), so the two
    // kinds of watch on one path come from two sessions here.
    let mut node = client
        .add_watch("/p", AddWatchMode::Persistent)
        .await
        .unwrap();
    let mut tree = other
        .add_watch("/p", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    writer.create("/p", b"", persistent()).await.unwrap();
    writer.create("/p/c", b"", persistent()).await.unwrap();
    writer.set_data("/p/c", b"x", None).await.unwrap();
    writer.set_data("/p", b"y", None).await.unwrap();
    writer.delete("/p/c", None).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = within("persistent event", node.next()).await.unwrap();
        seen.push((event.event_type, event.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeCreated, "/p".to_owned()),
            (EventType::NodeChildrenChanged, "/p".to_owned()),
            (EventType::NodeDataChanged, "/p".to_owned()),
            (EventType::NodeChildrenChanged, "/p".to_owned()),
        ]
    );
    let mut seen = Vec::new();
    for _ in 0..5 {
        let event = within("recursive event", tree.next()).await.unwrap();
        seen.push((event.event_type, event.path));
    }
    assert_eq!(
        seen,
        [
            (EventType::NodeCreated, "/p".to_owned()),
            (EventType::NodeCreated, "/p/c".to_owned()),
            (EventType::NodeDataChanged, "/p/c".to_owned()),
            (EventType::NodeDataChanged, "/p".to_owned()),
            (EventType::NodeDeleted, "/p/c".to_owned()),
        ]
    );

    // Removing the persistent watch ends its stream with a removal event. (3.8 servers
    // only accept the types Children, Data and Any here; Persistent needs 3.9.)
    client.remove_watches("/p", WatcherType::Any).await.unwrap();
    let event = within("removal", node.next()).await.unwrap();
    assert_eq!(event.event_type, EventType::PersistentWatchRemoved);
    assert_eq!(within("end of stream", node.next()).await, None);

    // The session ends: the recursive stream gets a final session event, then ends.
    other.close().await;
    let event = within("final event", tree.next()).await.unwrap();
    assert!(event.is_session_event());
    assert_eq!(event.state, zk_client::KeeperState::Closed);
    assert_eq!(within("end of stream", tree.next()).await, None);
}

async fn watch_changes_streams_every_change_in_both_modes(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    for legacy in [false, true] {
        let path = if legacy { "/legacy" } else { "/modern" };
        let mut changes = if legacy {
            client.watch_changes_legacy(path).await.unwrap()
        } else {
            client.watch_changes(path).await.unwrap()
        };
        let child = format!("{path}/kid");
        let steps: [(&str, EventType); 5] = [
            ("create", EventType::NodeCreated),
            ("set", EventType::NodeDataChanged),
            ("create child", EventType::NodeChildrenChanged),
            ("delete child", EventType::NodeChildrenChanged),
            ("delete", EventType::NodeDeleted),
        ];
        for (step, expected) in steps {
            match step {
                "create" => writer.create(path, b"", persistent()).await.map(drop),
                "set" => writer.set_data(path, b"x", None).await.map(drop),
                "create child" => writer.create(&child, b"", persistent()).await.map(drop),
                "delete child" => writer.delete(&child, None).await,
                _ => writer.delete(path, None).await,
            }
            .unwrap();
            let event = within(step, changes.next()).await.unwrap();
            assert_eq!(
                (event.event_type, event.path.as_str()),
                (expected, path),
                "{step} (legacy: {legacy})"
            );
        }
    }
    client.close().await;
}

async fn dropping_the_last_persistent_watcher_removes_it_on_the_server(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;

    let first = client
        .add_watch("/d", AddWatchMode::Persistent)
        .await
        .unwrap();
    let mut second = client
        .add_watch("/d", AddWatchMode::Persistent)
        .await
        .unwrap();
    client.check_watches("/d", WatcherType::Any).await.unwrap();

    // One of two dropped: the other keeps the server-side watch and its events. (The drop
    // notice travels on the same queue as requests, so the next request is ordered after
    // anything it sends.)
    drop(first);
    client.check_watches("/d", WatcherType::Any).await.unwrap();
    writer.create("/d", b"", persistent()).await.unwrap();
    let event = within("event on the remaining stream", second.next())
        .await
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeCreated, "/d")
    );

    // The last one dropped: the server no longer holds a watch for this session.
    drop(second);
    assert!(matches!(
        client.check_watches("/d", WatcherType::Any).await,
        Err(Error::NoWatcher)
    ));

    // A watch added again after a drop is registered (the removal went first).
    let again = client
        .add_watch("/d", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    drop(again);
    let mut kept = client
        .add_watch("/d", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    client.check_watches("/d", WatcherType::Any).await.unwrap();
    writer.set_data("/d", b"x", None).await.unwrap();
    let event = within("event after re-adding", kept.next()).await.unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
}
