//! `DoubleBarrier`: members enter together and leave together; a dead member does not block
//! the others; a timed-out enter leaves no node. `Barrier`: waiters held until removal, and
//! Curator's Java `DistributedBarrier` and ours on one path, both ways (skipped without Java,
//! see [`crate::jvm`]).

use std::time::Duration;

use zk_client::Client;
use zk_recipes::{Barrier, DoubleBarrier};
use zk_testkit::{FaultProxy, wait_until};

use crate::jvm::{Participant, compiled, java_ready};
use crate::{WAIT, connect, connect_with, start, within};
use zk_testkit::ServerKind;

for_each_server!(
    members_enter_together_and_leave_together,
    a_member_that_dies_does_not_block_leaving,
    a_barrier_holds_waiters_until_removed,
    curator_and_rust_barriers_hold_and_release_each_other,
);

async fn member_nodes(observer: &Client, path: &str) -> usize {
    match observer.get_children(path).await {
        Ok(children) => children.iter().filter(|c| *c != "ready").count(),
        Err(zk_client::Error::NoNode) => 0,
        Err(e) => panic!("{e}"),
    }
}

async fn members_enter_together_and_leave_together(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let observer = connect(&cs).await;
    let path = "/barriers/double";
    let mut barriers = Vec::new();
    for _ in 0..3 {
        barriers.push(DoubleBarrier::new(&connect(&cs).await, path, 3).unwrap());
    }

    // A timed-out attempt (too few members) leaves no node behind.
    assert!(
        !barriers[0]
            .enter_timeout(Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert_eq!(member_nodes(&observer, path).await, 0);

    let first_two: Vec<_> = barriers[..2]
        .iter()
        .cloned()
        .map(|b| tokio::spawn(async move { b.enter().await.unwrap() }))
        .collect();
    wait_until(WAIT, "two members in", || {
        let o = observer.clone();
        async move { member_nodes(&o, path).await == 2 }
    })
    .await;
    assert!(
        first_two.iter().all(|t| !t.is_finished()),
        "opened too early"
    );
    within("the third to enter", barriers[2].enter())
        .await
        .unwrap();
    for task in first_two {
        within("the others to enter", task).await.unwrap();
    }
    assert!(
        observer
            .exists("/barriers/double/ready")
            .await
            .unwrap()
            .is_some()
    );

    // Two leave; they wait for the third.
    let first_two: Vec<_> = barriers[..2]
        .iter()
        .cloned()
        .map(|b| tokio::spawn(async move { b.leave().await.unwrap() }))
        .collect();
    wait_until(WAIT, "two members out", || {
        let o = observer.clone();
        async move { member_nodes(&o, path).await == 1 }
    })
    .await;
    assert!(first_two.iter().all(|t| !t.is_finished()), "left too early");
    within("the third to leave", barriers[2].leave())
        .await
        .unwrap();
    for task in first_two {
        within("the others to leave", task).await.unwrap();
    }
    assert_eq!(member_nodes(&observer, path).await, 0);
    assert!(
        observer
            .exists("/barriers/double/ready")
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_member_that_dies_does_not_block_leaving(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let path = "/barriers/dying";
    let doomed_client = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let doomed = DoubleBarrier::new(&doomed_client, path, 3).unwrap();
    let live: Vec<DoubleBarrier> = vec![
        DoubleBarrier::new(&connect(&cs).await, path, 3).unwrap(),
        DoubleBarrier::new(&connect(&cs).await, path, 3).unwrap(),
    ];
    let entering: Vec<_> = live
        .iter()
        .cloned()
        .map(|b| tokio::spawn(async move { b.enter().await.unwrap() }))
        .collect();
    within("the doomed member to enter", doomed.enter())
        .await
        .unwrap();
    for task in entering {
        within("the live members to enter", task).await.unwrap();
    }

    // The doomed member's connection stalls past its session timeout while the others leave.
    proxy.stall();
    let leaving: Vec<_> = live
        .iter()
        .cloned()
        .map(|b| tokio::spawn(async move { b.leave().await.unwrap() }))
        .collect();
    for task in leaving {
        within("the live members to leave", task).await.unwrap();
    }
    let observer = connect(&cs).await;
    assert_eq!(member_nodes(&observer, path).await, 0);
}

async fn a_barrier_holds_waiters_until_removed(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let gate = Barrier::new(&connect(&cs).await, "/barriers/simple/gate").unwrap();
    // Down: no wait.
    within("an open gate", gate.wait()).await.unwrap();
    gate.set().await.unwrap();
    gate.set().await.unwrap();
    assert!(gate.is_set().await.unwrap());
    assert!(!gate.wait_timeout(Duration::from_millis(200)).await.unwrap());
    let mut waiters = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let client = connect(&cs).await;
        sessions.push(client.session_id());
        let b = Barrier::new(&client, "/barriers/simple/gate").unwrap();
        waiters.push(tokio::spawn(async move { b.wait().await.unwrap() }));
    }
    wait_until(WAIT, "the three waiters watching the gate", || {
        let server = &server;
        let sessions = &sessions;
        async move {
            let watches = crate::watches_by_session(server).await;
            sessions.iter().all(|id| {
                watches
                    .get(id)
                    .is_some_and(|paths| paths.iter().any(|p| p == "/barriers/simple/gate"))
            })
        }
    })
    .await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    gate.remove().await.unwrap();
    for waiter in waiters {
        within("the waiters to pass", waiter).await.unwrap();
    }
    gate.remove().await.unwrap();
}

/// `true` if a session for which `who` holds watches `path` (`wchc`).
async fn watched_by(
    server: &zk_testkit::TestServer,
    path: &str,
    who: impl Fn(i64) -> bool,
) -> bool {
    crate::watches_by_session(server)
        .await
        .iter()
        .any(|(id, paths)| who(*id) && paths.iter().any(|p| p == path))
}

async fn curator_and_rust_barriers_hold_and_release_each_other(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let path = "/xlang/barriers/gate";
    let client = connect(&cs).await;
    let ours = client.session_id();
    let gate = Barrier::new(&client, path).unwrap();
    let mut java = Participant::spawn(
        &classes,
        "CuratorDistributedBarrierParticipant",
        &[&cs, path],
    );
    java.expect("CONNECTED").await;

    // Curator sets the barrier; our waiter is held until Curator removes it.
    java.send("set");
    java.expect("SET").await;
    assert!(gate.is_set().await.unwrap());
    let waiter = tokio::spawn({
        let gate = gate.clone();
        async move { gate.wait().await.unwrap() }
    });
    wait_until(WAIT, "our waiter watching Curator's barrier", || {
        watched_by(&server, path, |id| id == ours)
    })
    .await;
    assert!(
        !waiter.is_finished(),
        "released while Curator's barrier is up"
    );
    java.send("remove");
    java.expect("REMOVED").await;
    within("our waiter to be released", waiter).await.unwrap();
    assert!(!gate.is_set().await.unwrap());

    // We set it; Curator's waiter is held until we remove it.
    gate.set().await.unwrap();
    java.send("wait");
    java.expect("WAITING").await;
    wait_until(WAIT, "Curator's waiter watching our barrier", || {
        watched_by(&server, path, |id| id != ours)
    })
    .await;
    assert!(
        !java.seen().iter().any(|l| l == "RELEASED") && java.lines.is_empty(),
        "Curator released while our barrier is up: {:?}",
        java.seen()
    );
    gate.remove().await.unwrap();
    java.expect("RELEASED").await;
    java.send("quit");
    java.finish().await;
}
