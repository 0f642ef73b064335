//! `PersistentNode` / `PersistentTtlNode`: the node is created (protected names, container
//! parents), re-created under the same name when deleted, takes over an existing node's
//! data, is deleted on close, and reports the end of its session; the TTL node keeps a TTL
//! child. `GroupMember` (built on `PersistentNode`) beside Curator's Java `GroupMember` on
//! one path. On Apache ZooKeeper and on zk-server-lite.

use std::time::Duration;

use zk_client::{CreateMode, CreateOptions};
use zk_recipes::{GroupMember, NodeEnd, PersistentNode, PersistentTtlNode, paths};
use zk_testkit::{FaultProxy, ServerKind, ServerOptions, wait_until};

use crate::jvm::{Participant, compiled, java_ready};
use crate::{WAIT, connect, connect_with, start, within};

for_each_server!(
    a_persistent_node_is_recreated_under_its_name_and_deleted_on_close,
    a_persistent_node_takes_over_an_existing_node_and_ends_with_its_session,
    a_ttl_node_keeps_a_ttl_child,
    curator_and_rust_group_members_see_each_other,
);

async fn a_persistent_node_is_recreated_under_its_name_and_deleted_on_close(kind: ServerKind) {
    let server = start(kind).await;
    let client = connect(&server.connect_string()).await;
    let admin = connect(&server.connect_string()).await;
    let node = PersistentNode::builder(&client, "/pn/a/worker-", CreateMode::EphemeralSequential)
        .data(b"v1")
        .protection(true)
        .start()
        .await
        .unwrap();
    let path = node.actual_path().unwrap();
    let name = paths::node_name(&path);
    assert!(path.starts_with("/pn/a/_c_"), "{path}");
    assert!(paths::is_protected(name), "{name}");
    assert!(paths::sequence_number(name).is_some(), "{name}");
    let (data, stat) = admin.get_data(&path).await.unwrap();
    assert_eq!(
        (data.as_ref(), stat.ephemeral_owner),
        (&b"v1"[..], client.session_id())
    );

    // Deleted by someone: back under the same name (same sequence number), same data.
    admin.delete(&path, None).await.unwrap();
    wait_until(WAIT, "the node to come back", || {
        let admin = admin.clone();
        let path = path.clone();
        async move { admin.exists(&path).await.unwrap().is_some() }
    })
    .await;
    assert_eq!(node.actual_path().as_deref(), Some(path.as_str()));
    node.set_data(b"v2").await.unwrap();
    assert_eq!(admin.get_data(&path).await.unwrap().0.as_ref(), b"v2");
    admin.delete(&path, None).await.unwrap();
    wait_until(WAIT, "the node to come back with the new data", || {
        let admin = admin.clone();
        let path = path.clone();
        async move {
            matches!(admin.get_data(&path).await, Ok((data, _)) if data.as_ref() == b"v2")
        }
    })
    .await;

    node.close().await;
    assert!(admin.exists(&path).await.unwrap().is_none());
    assert_eq!(node.status().ended, Some(NodeEnd::Closed));
    assert!(node.set_data(b"v3").await.is_err());
}

async fn a_persistent_node_takes_over_an_existing_node_and_ends_with_its_session(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let admin = connect(&cs).await;
    paths::ensure_path(&admin, "/pn/b").await.unwrap();
    admin
        .create(
            "/pn/b/fixed",
            b"old",
            &CreateOptions::new(CreateMode::Persistent),
        )
        .await
        .unwrap();
    let client = connect(&cs).await;
    let node = PersistentNode::start(&client, "/pn/b/fixed", CreateMode::Persistent, b"new")
        .await
        .unwrap();
    assert_eq!(
        admin.get_data("/pn/b/fixed").await.unwrap().0.as_ref(),
        b"new"
    );
    node.close().await;
    assert!(admin.exists("/pn/b/fixed").await.unwrap().is_none());

    // An ephemeral node's keeper ends with its session (stalled past the timeout).
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let proxied = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let node = PersistentNode::start(&proxied, "/pn/b/eph", CreateMode::Ephemeral, b"e")
        .await
        .unwrap();
    proxy.stall();
    let mut status = node.status_watch();
    within(
        "the keeper to end with its session",
        status.wait_for(|s| s.ended.is_some()),
    )
    .await
    .unwrap();
    assert_eq!(node.status().ended, Some(NodeEnd::SessionLost));
    proxy.unstall();
    wait_until(WAIT, "the expired session's node to go", || {
        let admin = admin.clone();
        async move { admin.exists("/pn/b/eph").await.unwrap().is_none() }
    })
    .await;
}

async fn a_ttl_node_keeps_a_ttl_child(kind: ServerKind) {
    let server =
        zk_testkit::harness::start_server(kind, ServerOptions::new().extended_types(true)).await;
    let client = connect(&server.connect_string()).await;
    let node = PersistentTtlNode::start(&client, "/ttl/service", Duration::from_secs(60), b"d")
        .await
        .unwrap();
    let (data, _) = client.get_data("/ttl/service").await.unwrap();
    assert_eq!(data.as_ref(), b"d");
    assert!(client.exists("/ttl/service/touch").await.unwrap().is_some());
    node.close().await;
    assert!(client.exists("/ttl/service").await.unwrap().is_none());

    // The child really is a TTL node: a server without TTL nodes refuses it, and the
    // container is removed again.
    let plain = start(kind).await;
    let client = connect(&plain.connect_string()).await;
    let refused =
        PersistentTtlNode::start(&client, "/ttl/service", Duration::from_secs(60), b"d").await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(client.exists("/ttl/service").await.unwrap().is_none());
}

async fn curator_and_rust_group_members_see_each_other(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let classes = compiled().await;
    let server = start(kind).await;
    let cs = server.connect_string();
    let path = "/xlang/group";
    let mut java = Participant::spawn(&classes, "CuratorGroupParticipant", &[&cs, path, "j", "pj"]);
    java.expect("READY").await;
    let client = connect(&cs).await;
    let me = GroupMember::join(&client, path, "r", b"pr").await.unwrap();
    let mut changes = me.changes();
    let want = |set: &[(&str, &str)]| {
        set.iter()
            .map(|(id, p)| ((*id).to_owned(), p.as_bytes().to_vec()))
            .collect::<zk_recipes::Members>()
    };
    within("both members, seen by us", async {
        while changes.next().await.unwrap() != want(&[("j", "pj"), ("r", "pr")]) {}
    })
    .await;
    java.send("await j=pj,r=pr");
    java.expect("MEMBERS ").await;

    // Payload changes both ways.
    java.send("payload pj2");
    java.expect("SET").await;
    me.set_payload(b"pr2").await.unwrap();
    within("the new payloads, seen by us", async {
        while changes.next().await.unwrap() != want(&[("j", "pj2"), ("r", "pr2")]) {}
    })
    .await;
    java.send("await j=pj2,r=pr2");
    java.expect("MEMBERS ").await;

    // Java leaves, we see it; we leave, the group is empty.
    java.send("quit");
    java.expect("DONE").await;
    java.finish().await;
    within("Java's leave, seen by us", async {
        while changes.next().await.unwrap() != want(&[("r", "pr2")]) {}
    })
    .await;
    me.leave().await.unwrap();
    assert!(client.get_children(path).await.unwrap().is_empty());
}
