//! `Mutex`: mutual exclusion, the predecessor-watch rule, timeouts and cancellation leave no
//! node behind, loss on a suspended or expired session.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use zk_client::{CreateMode, CreateOptions};
use zk_recipes::{ErrorPolicy, FencingToken, LossReason, Mutex};
use zk_testkit::{FaultProxy, wait_until};

use crate::{WAIT, connect, connect_with, start, watches_by_session, within};
use zk_testkit::ServerKind;

for_each_server!(
    contenders_never_overlap,
    waiters_watch_only_their_predecessor,
    acquire_timeout_and_cancellation_leave_no_node,
    standard_policy_reports_loss_on_suspension_then_the_lock_moves_on,
    session_policy_keeps_the_lock_through_a_short_cut_and_loses_it_on_expiry,
    a_waiter_whose_session_expires_fails_and_a_deleted_node_is_a_loss,
);

async fn contenders_never_overlap(kind: ServerKind) {
    let server = start(kind).await;
    no_overlap(&server.connect_string(), 5, 4).await;
}

/// `tasks` contenders (one session each) take the lock `rounds` times each: never two
/// holders at once, fencing tokens grow, a read-modify-write under the lock loses no update,
/// no node is left behind.
pub(crate) async fn no_overlap(cs: &str, tasks: usize, rounds: usize) {
    let setup = connect(cs).await;
    setup
        .create(
            "/counter",
            b"0",
            &CreateOptions::new(CreateMode::Persistent),
        )
        .await
        .unwrap();

    let holders = Arc::new(AtomicUsize::new(0));
    let acquisitions = Arc::new(AtomicUsize::new(0));
    let last_token = Arc::new(std::sync::Mutex::new(None::<FencingToken>));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let client = connect(cs).await;
        let holders = holders.clone();
        let acquisitions = acquisitions.clone();
        let last_token = last_token.clone();
        handles.push(tokio::spawn(async move {
            let mutex = Mutex::new(&client, "/app/locks/shared").unwrap();
            for _ in 0..rounds {
                let guard = mutex.acquire().await.unwrap();
                assert_eq!(
                    holders.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                acquisitions.fetch_add(1, Ordering::SeqCst);
                {
                    let token = guard.fencing_token();
                    let mut last = last_token.lock().unwrap();
                    assert!(
                        last.is_none_or(|last| last < token),
                        "fencing tokens must grow: {last:?} then {token:?}"
                    );
                    *last = Some(token);
                }
                // A read-modify-write that only works if nobody else writes meanwhile, done
                // through the lock-guarded transaction.
                let (data, stat) = client.get_data("/counter").await.unwrap();
                let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                tokio::task::yield_now().await;
                guard
                    .guarded_transaction()
                    .set_data(
                        "/counter",
                        (n + 1).to_string().as_bytes(),
                        Some(stat.version),
                    )
                    .commit()
                    .await
                    .unwrap();
                assert!(!guard.is_lost());
                assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1);
                guard.release().await.unwrap();
            }
            client.close().await;
        }));
    }
    for handle in handles {
        within("the contenders to finish", handle).await.unwrap();
    }
    assert_eq!(acquisitions.load(Ordering::SeqCst), tasks * rounds);
    let (data, _) = setup.get_data("/counter").await.unwrap();
    assert_eq!(data, (tasks * rounds).to_string().as_bytes());
    // Every contender node is gone.
    assert_eq!(
        setup.get_children("/app/locks/shared").await.unwrap(),
        Vec::<String>::new()
    );
}

async fn waiters_watch_only_their_predecessor(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let observer = connect(&cs).await;
    let path = "/locks/pred";

    // A holds; B, C, D queue up in this order.
    let clients = [
        connect(&cs).await,
        connect(&cs).await,
        connect(&cs).await,
        connect(&cs).await,
    ];
    let mutexes: Vec<Mutex> = clients
        .iter()
        .map(|c| Mutex::new(c, path).unwrap())
        .collect();
    let guard_a = mutexes[0].acquire().await.unwrap();
    let mut waiting = Vec::new();
    for (i, mutex) in mutexes.iter().enumerate().skip(1) {
        let mutex = mutex.clone();
        waiting.push(Some(tokio::spawn(
            async move { mutex.acquire().await.unwrap() },
        )));
        wait_until(WAIT, format!("{} contenders", i + 1), || {
            let m = mutexes[0].clone();
            async move { m.contenders().await.unwrap().len() == i + 1 }
        })
        .await;
    }
    let nodes = mutexes[0].contenders().await.unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[0], zk_recipes::paths::node_name(guard_a.path()));
    for node in &nodes {
        assert!(zk_recipes::paths::is_protected(node), "{node}");
        assert!(
            zk_recipes::paths::normalize(node).starts_with("lock-"),
            "{node}"
        );
    }
    let full = |name: &str| format!("{path}/{name}");

    // Each waiter watches exactly the node before it; nobody watches the parent; the holder
    // watches its own node (for its loss future).
    let expected = |sessions: &[(i64, String)]| {
        let sessions = sessions.to_vec();
        move |watches: &std::collections::HashMap<i64, Vec<String>>| {
            sessions
                .iter()
                .all(|(id, p)| watches.get(id).map(Vec::as_slice) == Some(std::slice::from_ref(p)))
        }
    };
    let check = expected(&[
        (clients[0].session_id(), full(&nodes[0])),
        (clients[1].session_id(), full(&nodes[0])),
        (clients[2].session_id(), full(&nodes[1])),
        (clients[3].session_id(), full(&nodes[2])),
    ]);
    wait_until(WAIT, "each waiter watching its predecessor only", || {
        let check = &check;
        let server = &server;
        async move { check(&watches_by_session(server).await) }
    })
    .await;

    // C gives up: D moves its watch to B.
    waiting[1].take().unwrap().abort();
    wait_until(WAIT, "C's node to go", || {
        let m = mutexes[0].clone();
        async move { m.contenders().await.unwrap().len() == 3 }
    })
    .await;
    let check = expected(&[(clients[3].session_id(), full(&nodes[1]))]);
    wait_until(WAIT, "D watching B", || {
        let check = &check;
        let server = &server;
        async move { check(&watches_by_session(server).await) }
    })
    .await;

    // Releases hand the lock on in queue order: B, then D.
    guard_a.release().await.unwrap();
    let guard_b = within("B to acquire", waiting[0].take().unwrap())
        .await
        .unwrap();
    assert_eq!(guard_b.path(), full(&nodes[1]));
    assert!(!waiting[2].as_ref().unwrap().is_finished());
    guard_b.release().await.unwrap();
    let guard_d = within("D to acquire", waiting[2].take().unwrap())
        .await
        .unwrap();
    assert_eq!(guard_d.path(), full(&nodes[3]));
    drop(guard_d); // released in the background
    wait_until(WAIT, "no contender left", || {
        let observer = observer.clone();
        async move { observer.get_children(path).await.unwrap().is_empty() }
    })
    .await;
}

async fn acquire_timeout_and_cancellation_leave_no_node(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let holder = connect(&cs).await;
    let other = connect(&cs).await;
    let path = "/locks/timeout";
    let guard = Mutex::new(&holder, path).unwrap().acquire().await.unwrap();
    let mine = zk_recipes::paths::node_name(guard.path()).to_owned();
    let mutex = Mutex::new(&other, path).unwrap();

    // A timed-out try: None, and our node is already gone when it returns.
    let tried = mutex.try_acquire(Duration::from_millis(300)).await.unwrap();
    assert!(tried.is_none());
    assert_eq!(
        mutex.contenders().await.unwrap(),
        std::slice::from_ref(&mine)
    );

    // An acquire future dropped while waiting.
    let waiting = tokio::spawn({
        let mutex = mutex.clone();
        async move { mutex.acquire().await }
    });
    wait_until(WAIT, "a second contender", || {
        let m = mutex.clone();
        async move { m.contenders().await.unwrap().len() == 2 }
    })
    .await;
    waiting.abort();
    wait_until(WAIT, "the abandoned contender to go", || {
        let m = mutex.clone();
        let mine = mine.clone();
        async move { m.contenders().await.unwrap() == [mine] }
    })
    .await;

    // An acquire future dropped right after its first poll, with the create still in
    // flight: the cleanup finds the node by its protection prefix.
    for _ in 0..5 {
        let mut acquire = Box::pin(mutex.acquire());
        assert!((&mut acquire).now_or_never().is_none());
        drop(acquire);
        wait_until(WAIT, "the in-flight contender to go", || {
            let m = mutex.clone();
            let mine = mine.clone();
            async move { m.contenders().await.unwrap() == [mine] }
        })
        .await;
    }

    // Still usable: the lock passes on after the holder releases.
    guard.release().await.unwrap();
    let next = within("the next acquire", mutex.acquire()).await.unwrap();
    next.release().await.unwrap();
    assert!(mutex.contenders().await.unwrap().is_empty());
}

async fn standard_policy_reports_loss_on_suspension_then_the_lock_moves_on(kind: ServerKind) {
    let server = start(kind).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let proxied = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let direct = connect(&server.connect_string()).await;
    let path = "/locks/suspend";
    let guard = Mutex::new(&proxied, path).unwrap().acquire().await.unwrap();
    let old_token = guard.fencing_token();
    let lost = guard.lost();

    proxy.stall();
    assert_eq!(within("the loss", lost).await, LossReason::Suspended);
    assert!(guard.is_lost());
    // The session expires on the server, its node goes, the other contender gets the lock.
    let next = within(
        "the other contender",
        Mutex::new(&direct, path).unwrap().acquire(),
    )
    .await
    .unwrap();
    assert!(next.fencing_token() > old_token);
    // The stale holder's guarded writes fail.
    proxy.heal();
    assert!(
        guard
            .guarded_transaction()
            .set_data("/", b"", None)
            .commit()
            .await
            .is_err()
    );
    drop(guard);
    next.release().await.unwrap();
}

async fn session_policy_keeps_the_lock_through_a_short_cut_and_loses_it_on_expiry(
    kind: ServerKind,
) {
    let server = start(kind).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let proxied = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let direct = connect(&server.connect_string()).await;
    let path = "/locks/session";
    let guard = Mutex::new(&proxied, path)
        .unwrap()
        .error_policy(ErrorPolicy::Session)
        .acquire()
        .await
        .unwrap();

    // A cut connection: the client reconnects to the same session, the lock stays ours.
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
    assert!(!guard.is_lost());
    guard
        .guarded_transaction()
        .check("/", None)
        .commit()
        .await
        .unwrap();

    // Past the session timeout: lost, and the lock moves on.
    let lost = guard.lost();
    proxy.stall();
    assert_eq!(within("the loss", lost).await, LossReason::SessionLost);
    let next = within(
        "the other contender",
        Mutex::new(&direct, path).unwrap().acquire(),
    )
    .await
    .unwrap();
    // Releasing a guard whose session is gone is not an error: the node is gone already.
    guard.release().await.unwrap();
    next.release().await.unwrap();
}

async fn a_waiter_whose_session_expires_fails_and_a_deleted_node_is_a_loss(kind: ServerKind) {
    let server = start(kind).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let proxied = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let direct = connect(&server.connect_string()).await;
    let admin = connect(&server.connect_string()).await;
    let path = "/locks/expiring-waiter";
    let mutex = Mutex::new(&direct, path).unwrap();
    let guard = mutex.acquire().await.unwrap();

    // A waiter loses its session while queued: its acquire fails for good, its node goes.
    let waiting = tokio::spawn({
        let mutex = Mutex::new(&proxied, path).unwrap();
        async move { mutex.acquire().await }
    });
    wait_until(WAIT, "the waiter queued", || {
        let m = mutex.clone();
        async move { m.contenders().await.unwrap().len() == 2 }
    })
    .await;
    proxy.stall();
    let failed = within("the waiter to fail", waiting).await.unwrap();
    match failed {
        Err(e @ zk_recipes::Error::SessionLost(_)) => {
            assert!(e.to_string().contains("new Client"), "{e}")
        }
        other => panic!("expected a terminal session error, got {other:?}"),
    }
    wait_until(WAIT, "the expired waiter's node to go", || {
        let m = mutex.clone();
        async move { m.contenders().await.unwrap().len() == 1 }
    })
    .await;

    // Someone deletes the holder's node: the guard reports the loss.
    let lost = guard.lost();
    admin.delete(guard.path(), None).await.unwrap();
    assert_eq!(within("the loss", lost).await, LossReason::NodeDeleted);
    assert!(guard.is_lost());
    // Releasing a lost guard is fine (the node is gone already).
    guard.release().await.unwrap();
}
