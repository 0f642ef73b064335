//! Connection loss, re-attaching the same session, re-armed watches, expiry, close, and
//! failover inside an ensemble.

use std::time::Duration;

use zk_client::{
    CreateMode, CreateOptions, Error, EventType, KeeperState, LostReason, SessionState,
};
use zk_testkit::{
    ApacheConfig, ApacheEnsemble, Direction, FaultProxy, ServerKind, ServerOptions, wait_until,
};

use crate::{WAIT, connect, connect_with, start_server, wait_state, within};

// The tests with an ensemble (`killing_the_connected_member_fails_over_to_another`,
// `read_only_session_while_the_quorum_is_lost`) are Apache-only: zk-server-lite is
// standalone (no quorum yet) and has no read-only mode.
for_each_server!(
    cut_connection_reattaches_the_same_session_and_rearms_watches,
    stall_past_the_session_timeout_loses_the_session,
    close_and_drop_end_the_session_on_the_server,
    requests_wait_for_a_connection_at_most_the_request_timeout,
    rejected_credentials_end_the_session_with_auth_failed,
    many_watches_are_restored_in_batches,
    an_idle_session_outlives_its_timeout,
    server_restart_keeps_the_session_and_its_watches,
    reconnection_catches_up_on_missed_changes_per_watch_kind,
    session_timeout_is_negotiated_within_the_server_bounds,
);

fn ephemeral() -> CreateOptions {
    CreateOptions::new(CreateMode::Ephemeral)
}

fn persistent() -> CreateOptions {
    CreateOptions::new(CreateMode::Persistent)
}

async fn cut_connection_reattaches_the_same_session_and_rearms_watches(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_with(&proxy.addr().to_string(), Duration::from_secs(20)).await;
    let direct = connect(&server.connect_string()).await;
    let session = client.session_id();

    client.create("/data", b"0", persistent()).await.unwrap();
    client.create("/eph", b"", ephemeral()).await.unwrap();
    let (_, _, data_watch) = client.get_data_watch("/data").await.unwrap();
    let (_, created_watch) = client.exists_watch("/later").await.unwrap();
    let (_, _, child_watch) = client.get_children_watch("/data").await.unwrap();
    let mut persistent_watch = client
        .add_watch("/data", zk_client::AddWatchMode::Persistent)
        .await
        .unwrap();
    let mut changes = client.state_changes();

    // A write whose reply is lost when the connection breaks fails with connection loss
    // and an unknown outcome. (Its reply and its watch notification are dropped on the way
    // back; a setData reply alone is 88 bytes, a ping reply 20.)
    proxy.drop_direction(Direction::ServerToClient);
    let in_flight = client.set_data("/data", b"lost?", None);
    wait_until(WAIT, "the write's reply to be dropped", || async {
        proxy.dropped_bytes() >= 88
    })
    .await;
    proxy.refuse_new(true);
    proxy.cut_all().await;
    let err = within("the in-flight write to fail", in_flight)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::ConnectionLoss {
            outcome_unknown: true
        }
    );
    assert!(err.is_retryable() && err.outcome_unknown());
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    proxy.restore();
    // It was applied: the server consumed the data watch with a notification the client
    // never saw. Restoring watches from the last zxid seen in a *reply* (ZOOKEEPER-4655)
    // makes the server fire it again after the reconnection.
    assert_eq!(&direct.get_data("/data").await.unwrap().0[..], b"lost?");

    // Changes made while the client is away.
    direct.set_data("/data", b"changed", None).await.unwrap();
    direct.create("/later", b"", persistent()).await.unwrap();
    direct.create("/data/kid", b"", persistent()).await.unwrap();
    // A request issued while disconnected waits for the reconnection.
    let queued = client.get_data("/data");

    proxy.refuse_new(false);
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert_eq!(client.session_id(), session);
    let (data, _) = within("the queued request", queued).await.unwrap();
    assert_eq!(&data[..], b"changed");

    // Re-armed watches fire for what changed during the outage.
    let event = within("re-armed data watch", data_watch).await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    let event = within("re-armed exists watch", created_watch).await;
    assert_eq!(event.event_type, EventType::NodeCreated);
    let event = within("re-armed child watch", child_watch).await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    // Apache restores persistent watches without catching up on missed changes; the
    // catch-up event of the one-shot data watch on the same path reaches the persistent
    // watcher too (one notification per connection and path, fanned out locally as in Java).
    let event = within("re-armed persistent watch", persistent_watch.next())
        .await
        .unwrap();
    assert!(
        matches!(
            event.event_type,
            EventType::NodeDataChanged | EventType::NodeChildrenChanged
        ),
        "{event:?}"
    );

    // The session and its ephemeral node survived, as the server sees it.
    let stat = direct.exists("/eph").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session);
    assert_eq!(client.get_ephemerals("/").await.unwrap(), ["/eph"]);
    client.close().await;
    assert_eq!(direct.exists("/eph").await.unwrap(), None);
}

async fn stall_past_the_session_timeout_loses_the_session(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_with(&proxy.addr().to_string(), Duration::from_secs(2)).await;
    let direct = connect(&server.connect_string()).await;
    client.create("/eph", b"", ephemeral()).await.unwrap();
    let (_, watcher) = client.exists_watch("/eph").await.unwrap();
    let mut changes = client.state_changes();

    proxy.stall();
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    let state = wait_state(&mut changes, "Lost", SessionState::is_terminal).await;
    assert_eq!(state, SessionState::Lost(LostReason::Expired));
    assert_eq!(client.state(), state);

    // Every watcher is told, every call fails for good.
    let event = within("the watcher's final event", watcher).await;
    assert_eq!(
        (event.event_type, event.state),
        (EventType::None, KeeperState::Expired)
    );
    assert_eq!(client.exists("/").await, Err(Error::SessionExpired));
    assert!(Error::SessionExpired.is_session_terminal());

    // The server expires it too: the ephemeral node goes away.
    wait_until(WAIT, "the ephemeral node to disappear", || {
        let direct = direct.clone();
        async move { direct.exists("/eph").await == Ok(None) }
    })
    .await;

    // Healing the network does not bring the handle back.
    proxy.heal();
    assert_eq!(client.exists("/").await, Err(Error::SessionExpired));
    assert_eq!(within("end of state changes", changes.next()).await, None);
}

async fn close_and_drop_end_the_session_on_the_server(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let direct = connect(&server.connect_string()).await;

    let client = connect(&server.connect_string()).await;
    let mut changes = client.state_changes();
    client.create("/closed", b"", ephemeral()).await.unwrap();
    let other_handle = client.clone();
    within("close", client.close()).await;
    // closeSession is a transaction: the ephemeral node is gone when close returns.
    assert_eq!(direct.exists("/closed").await.unwrap(), None);
    assert_eq!(
        changes.next().await,
        Some(SessionState::Lost(LostReason::Closed))
    );
    assert_eq!(other_handle.exists("/").await, Err(Error::Closed));
    within("second close", other_handle.close()).await;

    // Dropping every handle closes the session too.
    let client = connect(&server.connect_string()).await;
    client.create("/dropped", b"", ephemeral()).await.unwrap();
    let watch = client.state_watch();
    drop(client);
    let mut watch = watch;
    within(
        "the dropped client's session to end",
        watch.wait_for(|s| s.is_terminal()),
    )
    .await
    .ok();
    wait_until(WAIT, "the dropped client's ephemeral node to go", || {
        let direct = direct.clone();
        async move { direct.exists("/dropped").await == Ok(None) }
    })
    .await;
}

/// Apache-only: needs a three-member ensemble (zk-server-lite has no quorum yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_connected_member_fails_over_to_another() {
    zk_testkit::init_tracing();
    let mut ensemble = ApacheEnsemble::start(3).await.unwrap();
    let mut proxies = Vec::new();
    for addr in ensemble.addrs() {
        proxies.push(FaultProxy::start(addr).await.unwrap());
    }
    let connect_string = proxies
        .iter()
        .map(|p| p.addr().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let client = connect_with(&connect_string, Duration::from_secs(20)).await;
    let session = client.session_id();
    client.create("/eph", b"", ephemeral()).await.unwrap();
    client.create("/data", b"0", persistent()).await.unwrap();
    let (_, _, watcher) = client.get_data_watch("/data").await.unwrap();
    let mut changes = client.state_changes();

    let mut connected = None;
    wait_until(WAIT, "the client's proxied connection", || {
        let found = proxies.iter().position(|p| p.connection_count() == 1);
        connected = found;
        async move { found.is_some() }
    })
    .await;
    let victim = connected.unwrap();
    // Hold the client off the surviving members until the change is made, so that the
    // change happens while it is disconnected.
    for proxy in &proxies {
        proxy.refuse_new(true);
    }
    ensemble.kill(victim).await.unwrap();
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;

    let survivor = (0..3).find(|i| *i != victim).unwrap();
    let other = connect(&ensemble.addr(survivor).to_string()).await;
    other
        .set_data("/data", b"during the outage", None)
        .await
        .unwrap();
    for proxy in &proxies {
        proxy.refuse_new(false);
    }
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert_eq!(client.session_id(), session);
    let event = within("the re-armed watch", watcher).await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    let stat = other.exists("/eph").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session);
    let (data, _) = client.get_data("/data").await.unwrap();
    assert_eq!(&data[..], b"during the outage");
    client.close().await;
}

async fn requests_wait_for_a_connection_at_most_the_request_timeout(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = zk_client::Client::builder(proxy.addr().to_string())
        .session_timeout(Duration::from_secs(30))
        .request_timeout(Duration::from_millis(300))
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    let mut changes = client.state_changes();
    proxy.refuse_new(true);
    proxy.cut_all().await;
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    let err = within("the request timeout", client.exists("/"))
        .await
        .unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert!(err.is_retryable() && !err.outcome_unknown());
    proxy.refuse_new(false);
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert!(client.exists("/").await.unwrap().is_some());
    client.close().await;
}

async fn rejected_credentials_end_the_session_with_auth_failed(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let (_, watcher) = client.exists_watch("/w").await.unwrap();
    let mut changes = client.state_changes();
    let err = within("the auth reply", client.add_auth("no-such-scheme", b"x"))
        .await
        .unwrap_err();
    assert_eq!(err, Error::AuthFailed);
    assert_eq!(
        wait_state(&mut changes, "AuthFailed", SessionState::is_terminal).await,
        SessionState::AuthFailed
    );
    let event = within("the watcher's final event", watcher).await;
    assert_eq!(event.state, KeeperState::AuthFailed);
    assert_eq!(client.exists("/").await, Err(Error::AuthFailed));
    assert!(Error::AuthFailed.is_session_terminal());
}

/// Apache refuses to move a global session to a read-only server ("Refusing global session
/// reconnection in RO mode"), so read-only mode serves sessions that *start* while the
/// quorum is lost (and the servers need `localSessionsEnabled=true`). Such a session is local to the read-only server: when the quorum is back
/// it cannot be re-attached, and the client reports it expired (the Java client would open a
/// new session silently instead).
///
/// Apache-only: needs an ensemble that loses its quorum, and read-only mode (zk-server-lite
/// has neither).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_session_while_the_quorum_is_lost() {
    zk_testkit::init_tracing();
    // Without local sessions a read-only server answers a new session with NOTREADONLY.
    let config = ApacheConfig::new()
        .read_only(true)
        .config_line("localSessionsEnabled=true");
    let mut ensemble = ApacheEnsemble::start_with(3, config).await.unwrap();
    let setup = connect(&ensemble.connect_string()).await;
    setup.create("/ro", b"data", persistent()).await.unwrap();
    setup.close().await;
    ensemble.kill(0).await.unwrap();
    ensemble.kill(1).await.unwrap();
    wait_until(WAIT, "the survivor to serve read-only", || {
        let ensemble = &ensemble;
        async move { ensemble.mode(2).await.as_deref() == Some("read-only") }
    })
    .await;

    let client = zk_client::Client::builder(ensemble.connect_string())
        .read_only(true)
        .session_timeout(Duration::from_secs(30))
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    assert_eq!(client.state(), SessionState::ReadOnly);
    let mut changes = client.state_changes();
    let (data, _) = client.get_data("/ro").await.unwrap();
    assert_eq!(&data[..], b"data");
    assert_eq!(
        client.create("/rw", b"", persistent()).await,
        Err(Error::NotReadOnly)
    );

    ensemble.start_member(0).await.unwrap();
    ensemble.start_member(1).await.unwrap();
    let state = wait_state(&mut changes, "the read-only session to end", |s| {
        s.is_terminal()
    })
    .await;
    assert_eq!(state, SessionState::Lost(LostReason::Expired));
}

async fn many_watches_are_restored_in_batches(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_with(&proxy.addr().to_string(), Duration::from_secs(30)).await;
    let direct = connect(&server.connect_string()).await;
    direct.create("/b", b"", persistent()).await.unwrap();
    // 1 500 paths of 100 bytes: more than one 128 KiB setWatches batch.
    let paths: Vec<String> = (0..1500).map(|i| format!("/b/{i:097}")).collect();
    let creates: Vec<_> = paths
        .iter()
        .map(|p| direct.create(p, b"", persistent()))
        .collect();
    for result in futures::future::join_all(creates).await {
        result.unwrap();
    }
    let watches: Vec<_> = paths.iter().map(|p| client.get_data_watch(p)).collect();
    let mut watchers = Vec::new();
    for result in futures::future::join_all(watches).await {
        watchers.push(result.unwrap().2);
    }
    let mut changes = client.state_changes();
    proxy.refuse_new(true);
    proxy.cut_all().await;
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    let sets: Vec<_> = paths
        .iter()
        .map(|p| direct.set_data(p, b"x", None))
        .collect();
    for result in futures::future::join_all(sets).await {
        result.unwrap();
    }
    proxy.refuse_new(false);
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    let events = within("every restored watch", futures::future::join_all(watchers)).await;
    assert!(
        events
            .iter()
            .all(|e| e.event_type == EventType::NodeDataChanged),
        "{:?}",
        events
            .iter()
            .find(|e| e.event_type != EventType::NodeDataChanged)
    );
    client.close().await;
}

async fn an_idle_session_outlives_its_timeout(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect_with(&server.connect_string(), Duration::from_secs(3)).await;
    let direct = connect(&server.connect_string()).await;
    client.create("/idle", b"", ephemeral()).await.unwrap();
    let mut changes = client.state_changes();
    // The subject of this test is time passing: three session timeouts without a request.
    let idle = tokio::time::sleep(client.session_timeout() * 3);
    tokio::select! {
        () = idle => {}
        state = changes.next() => panic!("state changed while idle: {state:?}"),
    }
    assert_eq!(client.state(), SessionState::Connected);
    let stat = direct.exists("/idle").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, client.session_id());
    client.close().await;
}

async fn server_restart_keeps_the_session_and_its_watches(kind: ServerKind) {
    // Durable: zk-server-lite keeps a data dir like Apache does, so both restart on the
    // same data.
    let mut server = start_server(kind, ServerOptions::new().durable(true)).await;
    let client = connect_with(&server.connect_string(), Duration::from_secs(20)).await;
    let session = client.session_id();
    client.create("/kept", b"data", persistent()).await.unwrap();
    client.create("/eph", b"", ephemeral()).await.unwrap();
    let (_, _, watcher) = client.get_data_watch("/kept").await.unwrap();
    let mut changes = client.state_changes();

    within("the restart", server.restart()).await.unwrap();
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    // The session, its ephemeral node and the data outlived the server process.
    assert_eq!(client.session_id(), session);
    let (data, _) = client.get_data("/kept").await.unwrap();
    assert_eq!(&data[..], b"data");
    let direct = connect(&server.connect_string()).await;
    let stat = direct.exists("/eph").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session);
    // The watch was re-armed on the new server and fires for a change made there.
    direct.set_data("/kept", b"after", None).await.unwrap();
    let event = within("the re-armed watch", watcher).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/kept")
    );
    client.close().await;
    assert_eq!(direct.exists("/eph").await.unwrap(), None);
}

async fn reconnection_catches_up_on_missed_changes_per_watch_kind(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_with(&proxy.addr().to_string(), Duration::from_secs(20)).await;
    let direct = connect(&server.connect_string()).await;
    for path in ["/a", "/b", "/b/k", "/c", "/e", "/f", "/f/k"] {
        direct.create(path, b"", persistent()).await.unwrap();
    }
    let (_, _, recreated_data) = client.get_data_watch("/a").await.unwrap();
    let (_, _, deleted_parent_children) = client.get_children_watch("/b").await.unwrap();
    let (_, deleted_exists) = client.exists_watch("/c").await.unwrap();
    let (_, _, untouched_data) = client.get_data_watch("/e").await.unwrap();
    let (_, _, recreated_child_children) = client.get_children_watch("/f").await.unwrap();
    let (_, flickered_exists) = client.exists_watch("/g").await.unwrap();
    let mut changes = client.state_changes();
    proxy.refuse_new(true);
    proxy.cut_all().await;
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;

    direct.delete("/a", None).await.unwrap();
    direct.create("/a", b"", persistent()).await.unwrap();
    direct.delete("/b/k", None).await.unwrap();
    direct.delete("/b", None).await.unwrap();
    direct.delete("/c", None).await.unwrap();
    direct.delete("/f/k", None).await.unwrap();
    direct.create("/f/k", b"", persistent()).await.unwrap();
    direct.create("/g", b"", persistent()).await.unwrap();
    direct.delete("/g", None).await.unwrap();
    proxy.refuse_new(false);
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;

    // SetWatches compares each watched node with the last zxid the client saw: a node that
    // is there with a newer mzxid (even re-created) is NodeDataChanged, a missing one is
    // NodeDeleted for data, exists-on-existing and child watches, a newer pzxid is
    // NodeChildrenChanged (a child deleted and re-created counts).
    let expect = [
        (recreated_data, EventType::NodeDataChanged, "/a"),
        (deleted_parent_children, EventType::NodeDeleted, "/b"),
        (deleted_exists, EventType::NodeDeleted, "/c"),
        (
            recreated_child_children,
            EventType::NodeChildrenChanged,
            "/f",
        ),
    ];
    for (watcher, event_type, path) in expect {
        let event = within(path, watcher).await;
        assert_eq!((event.event_type, event.path.as_str()), (event_type, path));
    }
    // Nothing missed: re-armed as they were, they fire for the next change.
    direct.create("/g", b"", persistent()).await.unwrap();
    let event = within("/g created after the reconnection", flickered_exists).await;
    assert_eq!(event.event_type, EventType::NodeCreated);
    direct.set_data("/e", b"z", None).await.unwrap();
    let event = within("/e changed after the reconnection", untouched_data).await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    client.close().await;
}

async fn session_timeout_is_negotiated_within_the_server_bounds(kind: ServerKind) {
    // 250 ms ticks: at least 2 ticks; at most the configured 60 s.
    let server = start_server(kind, ServerOptions::new()).await;
    for (asked, granted) in [
        (Duration::from_millis(1), Duration::from_millis(500)),
        (Duration::from_millis(1500), Duration::from_millis(1500)),
        (Duration::from_secs(100), Duration::from_secs(60)),
    ] {
        let client = connect_with(&server.connect_string(), asked).await;
        assert_eq!(client.session_timeout(), granted, "asked for {asked:?}");
        client.close().await;
    }
}
