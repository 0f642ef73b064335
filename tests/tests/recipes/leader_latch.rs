//! `LeaderLatch`: exactly one leader, hand-over on close, loss on suspension and expiry,
//! re-check after a reconnect.

use std::time::Duration;

use zk_client::Client;
use zk_recipes::{ErrorPolicy, LatchEnd, LeaderLatch};
use zk_testkit::{FaultProxy, wait_until};

use crate::{WAIT, connect, connect_with, start, within};
use zk_testkit::ServerKind;

for_each_server!(
    exactly_one_leader_among_three_and_hand_over_on_close,
    a_cut_leader_loses_leadership_before_another_takes_over,
    after_a_reconnect_the_leader_rechecks_and_leads_again,
    a_leader_whose_node_is_deleted_queues_again_behind_the_new_leader,
    a_joined_latch_is_shared_with_its_watcher_and_closed_through_a_clone,
);

fn leaders(latches: &[LeaderLatch]) -> Vec<usize> {
    latches
        .iter()
        .enumerate()
        .filter(|(_, l)| l.has_leadership())
        .map(|(i, _)| i)
        .collect()
}

async fn started(client: &Client, path: &str, id: &str) -> LeaderLatch {
    let mut latch = LeaderLatch::new(client, path, id).unwrap();
    latch.start().unwrap();
    latch
}

async fn exactly_one_leader_among_three_and_hand_over_on_close(kind: ServerKind) {
    let server = start(kind).await;
    one_leader_and_hand_over(&server.connect_string()).await;
}

/// Three participants (one session each): exactly one leader, the one the participants
/// list names; closing it hands leadership to the next in line.
pub(crate) async fn one_leader_and_hand_over(cs: &str) {
    let path = "/election/three";
    let mut latches = Vec::new();
    for i in 0..3 {
        let client = connect(cs).await;
        latches.push(started(&client, path, &format!("p{i}")).await);
    }
    wait_until(WAIT, "three participants and one leader", || {
        let latches = &latches;
        async move {
            latches[0].participants().await.unwrap().len() == 3 && leaders(latches).len() == 1
        }
    })
    .await;
    let participants = latches[0].participants().await.unwrap();
    let leader = leaders(&latches)[0];
    assert_eq!(participants[0].id, format!("p{leader}"));
    assert!(participants[0].is_leader && !participants[1].is_leader && !participants[2].is_leader);
    for p in &participants {
        assert!(
            zk_recipes::paths::normalize(&p.node).starts_with("latch-"),
            "{p:?}"
        );
    }
    // The latch's own view agrees with the server's.
    let status = latches[leader].status();
    assert!(status.is_leader);
    assert!(status.node.unwrap().ends_with(&participants[0].node));
    assert!(
        latches[leader]
            .await_leadership_timeout(Duration::from_secs(1))
            .await
            .unwrap()
    );

    // Close the leader: the next in line (and only it) takes over.
    let next_id = participants[1].id.clone();
    let closing = latches.remove(leader);
    let mut changes = closing.leadership_changes();
    assert_eq!(changes.next().await, Some(true));
    closing.close().await;
    assert!(!closing.has_leadership());
    assert_eq!(closing.status().ended, Some(LatchEnd::Closed));
    assert_eq!(changes.next().await, Some(false));
    assert_eq!(changes.next().await, None);
    let next = latches.iter().position(|l| l.id() == next_id).unwrap();
    within("the next leader", latches[next].await_leadership())
        .await
        .unwrap();
    assert_eq!(leaders(&latches), [next]);
    let participants = latches[0].participants().await.unwrap();
    assert_eq!(participants.len(), 2);
    assert_eq!(participants[0].id, next_id);

    for latch in latches {
        latch.close().await;
    }
}

async fn a_cut_leader_loses_leadership_before_another_takes_over(kind: ServerKind) {
    let server = start(kind).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let path = "/election/expiry";
    let proxied = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let old = started(&proxied, path, "old").await;
    within("the first leader", old.await_leadership())
        .await
        .unwrap();
    let mut others = Vec::new();
    for i in 0..2 {
        let client = connect(&server.connect_string()).await;
        others.push(started(&client, path, &format!("new{i}")).await);
    }
    wait_until(WAIT, "three participants", || {
        let old = &old;
        async move { old.participants().await.unwrap().len() == 3 }
    })
    .await;
    assert!(leaders(&others).is_empty());
    let mut old_changes = old.leadership_changes();
    assert_eq!(old_changes.next().await, Some(true));

    // Stall the leader's connection past its session timeout.
    proxy.stall();
    let mut new_leader = None;
    // Whoever wins, it must win only after the old leader gave up.
    tokio::select! {
        _ = others[0].await_leadership() => new_leader = Some(0),
        _ = others[1].await_leadership() => new_leader = Some(1),
        _ = tokio::time::sleep(WAIT) => {}
    }
    let new_leader = new_leader.expect("a new leader within the wait");
    // Standard policy: the old leader reported the loss on suspension, before the server
    // expired its session, so it already knows.
    assert!(!old.has_leadership(), "two leaders at once");
    assert_eq!(
        within("the old leader's loss", old_changes.next()).await,
        Some(false)
    );
    assert_eq!(leaders(&others), [new_leader]);
    // The old latch ends once its client sees the expiry.
    wait_until(WAIT, "the old latch to end", || {
        let old = &old;
        async move { old.status().ended == Some(LatchEnd::SessionLost) }
    })
    .await;
    // Waiting on it says the session is gone and what to do, instead of "closed".
    let err = old.await_leadership().await.unwrap_err();
    assert!(err.is_session_lost(), "{err:?}");
    assert!(err.to_string().contains("new Client"), "{err}");
    let err = old.run_while_leader(async {}).await.unwrap_err();
    assert!(matches!(err, zk_recipes::Error::SessionLost(_)), "{err:?}");
    assert_eq!(others[0].participants().await.unwrap().len(), 2);
}

async fn after_a_reconnect_the_leader_rechecks_and_leads_again(kind: ServerKind) {
    let server = start(kind).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let path = "/election/reconnect";
    let proxied = connect_with(&proxy.addr().to_string(), Duration::from_secs(10)).await;
    let direct = connect(&server.connect_string()).await;

    // Standard policy: leadership drops on the cut and comes back after the re-check.
    let standard = started(&proxied, path, "standard").await;
    within("leadership", standard.await_leadership())
        .await
        .unwrap();
    let follower = started(&direct, path, "follower").await;
    wait_until(WAIT, "two participants", || {
        let f = &follower;
        async move { f.participants().await.unwrap().len() == 2 }
    })
    .await;
    let node = standard.status().node.unwrap();
    let mut changes = standard.leadership_changes();
    assert_eq!(changes.next().await, Some(true));
    // Work tied to leadership is cancelled by the cut.
    let (ran, ()) = tokio::join!(
        standard.run_while_leader(std::future::pending::<()>()),
        proxy.cut_all()
    );
    assert_eq!(ran.unwrap(), None);
    assert_eq!(within("the loss", changes.next()).await, Some(false));
    assert_eq!(within("the re-check", changes.next()).await, Some(true));
    assert_eq!(
        standard.status().node.unwrap(),
        node,
        "same node, same session"
    );
    assert!(!follower.has_leadership());
    let ran = within("work while leader", standard.run_while_leader(async { 7 })).await;
    assert_eq!(ran.unwrap(), Some(7));

    // Session policy: a cut does not interrupt leadership at all.
    standard.close().await;
    within("the follower's leadership", follower.await_leadership())
        .await
        .unwrap();
    follower.close().await;
    let session = LeaderLatch::new(&proxied, path, "session")
        .unwrap()
        .error_policy(ErrorPolicy::Session);
    let mut session = session;
    session.start().unwrap();
    within("leadership", session.await_leadership())
        .await
        .unwrap();
    let mut states = proxied.state_changes();
    proxy.cut_all().await;
    within("reconnected", async {
        while let Some(s) = states.next().await {
            if s == zk_client::SessionState::Reconnected {
                return;
            }
        }
        panic!("state stream ended");
    })
    .await;
    assert!(session.has_leadership());
    // A write round trip after the reconnect, then still the leader.
    proxied.sync("/").await.unwrap();
    assert!(session.has_leadership());
    session.close().await;
    assert!(direct.get_children(path).await.unwrap().is_empty());
}

async fn a_leader_whose_node_is_deleted_queues_again_behind_the_new_leader(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let admin = connect(&cs).await;
    let path = "/election/reset";
    let a = started(&connect(&cs).await, path, "a").await;
    within("a to lead", a.await_leadership()).await.unwrap();
    let b = started(&connect(&cs).await, path, "b").await;
    wait_until(WAIT, "two participants", || {
        let a = &a;
        async move { a.participants().await.unwrap().len() == 2 }
    })
    .await;
    let old_node = a.status().node.unwrap();

    admin.delete(&old_node, None).await.unwrap();
    within("b to lead", b.await_leadership()).await.unwrap();
    wait_until(WAIT, "a queued again with a new node", || {
        let a = &a;
        let old_node = old_node.clone();
        async move {
            a.status().node.is_some_and(|n| n != old_node)
                && a.participants().await.unwrap().len() == 2
        }
    })
    .await;
    assert!(!a.has_leadership());
    let ids: Vec<String> = a
        .participants()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["b", "a"]);
}

/// `join` starts in one call; a listener added afterwards still hears the first gain; a
/// clone handed to another task can close the latch for everyone.
async fn a_joined_latch_is_shared_with_its_watcher_and_closed_through_a_clone(kind: ServerKind) {
    let server = start(kind).await;
    let client = connect(&server.connect_string()).await;
    let path = "/election/joined";
    let latch = LeaderLatch::join(&client, path, "solo").unwrap();
    within("leadership", latch.await_leadership())
        .await
        .unwrap();
    // Subscribed after the gain: the gain is reported first, then the loss at close.
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    latch.listen(move |leader| {
        let _ = tx.send(leader);
    });
    assert_eq!(
        within("the listener's first call", heard.recv()).await,
        Some(true)
    );

    let watcher = tokio::spawn({
        let latch = latch.clone();
        async move {
            latch.await_leadership().await.unwrap();
            latch.close().await;
        }
    });
    within("the watcher to close the latch", watcher)
        .await
        .unwrap();
    assert_eq!(
        within("the listener's loss", heard.recv()).await,
        Some(false)
    );
    assert_eq!(latch.status().ended, Some(LatchEnd::Closed));
    assert!(!latch.has_leadership());
    assert!(latch.participants().await.unwrap().is_empty());
    assert!(matches!(
        latch.await_leadership().await,
        Err(zk_recipes::Error::Closed)
    ));
    // Closing again, through the original, is a no-op.
    latch.close().await;
}
