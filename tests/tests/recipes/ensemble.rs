//! Recipes on a 3-member Apache ensemble: killing the member a holder is connected to moves
//! its session to another member; under the session error policy the lock and the
//! leadership survive (after the latch's re-check), and nobody else gets them meanwhile.
//!
//! Apache only, not `for_each_server!`: zk-server-lite is a standalone server (no
//! replication, no ensemble to fail over within).

use std::time::Duration;

use futures::FutureExt;
use zk_client::SessionState;
use zk_recipes::{ErrorPolicy, LeaderLatch, Mutex};
use zk_testkit::{ApacheEnsemble, FaultProxy, wait_until};

use crate::{WAIT, connect, connect_with, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_leadership_survive_losing_the_connected_member() {
    zk_testkit::init_tracing();
    let mut ensemble = ApacheEnsemble::start(3).await.unwrap();
    let mut proxies = Vec::new();
    for addr in ensemble.addrs() {
        proxies.push(FaultProxy::start(addr).await.unwrap());
    }
    let proxied: Vec<String> = proxies.iter().map(|p| p.addr().to_string()).collect();
    let a = connect_with(&proxied.join(","), Duration::from_secs(20)).await;
    let mut victim = None;
    wait_until(WAIT, "the proxied connection", || {
        victim = proxies.iter().position(|p| p.connection_count() == 1);
        async move { victim.is_some() }
    })
    .await;
    let victim = victim.unwrap();
    let survivor = (0..3).find(|i| *i != victim).unwrap();
    let b = connect(&ensemble.addr(survivor).to_string()).await;

    let lock_path = "/ensemble/lock";
    let latch_path = "/ensemble/leader";
    let guard = Mutex::new(&a, lock_path)
        .unwrap()
        .error_policy(ErrorPolicy::Session)
        .acquire()
        .await
        .unwrap();
    let mut latch_a = LeaderLatch::new(&a, latch_path, "a")
        .unwrap()
        .error_policy(ErrorPolicy::Session);
    latch_a.start().unwrap();
    within("a to lead", latch_a.await_leadership())
        .await
        .unwrap();
    let mut latch_b = LeaderLatch::new(&b, latch_path, "b").unwrap();
    latch_b.start().unwrap();
    wait_until(WAIT, "two participants", || {
        let l = &latch_b;
        async move { l.participants().await.unwrap().len() == 2 }
    })
    .await;
    let mut b_changes = latch_b.leadership_changes();
    let waiting = tokio::spawn({
        let mutex = Mutex::new(&b, lock_path).unwrap();
        async move { mutex.acquire().await.unwrap() }
    });
    wait_until(WAIT, "b queued for the lock", || {
        let m = Mutex::new(&b, lock_path).unwrap();
        async move { m.contenders().await.unwrap().len() == 2 }
    })
    .await;

    let mut states = a.state_changes();
    ensemble.kill(victim).await.unwrap();
    within("a to reconnect elsewhere", async {
        while let Some(state) = states.next().await {
            if state == SessionState::Reconnected {
                return;
            }
            assert!(!state.is_terminal(), "a's session ended: {state:?}");
        }
    })
    .await;

    // Same session, so the lock node and the latch node are still a's.
    guard
        .guarded_transaction()
        .check(lock_path, None)
        .commit()
        .await
        .unwrap();
    assert!(!guard.is_lost());
    wait_until(WAIT, "a's latch to re-check after the reconnect", || {
        let l = &latch_a;
        async move { l.has_leadership() && l.participants().await.unwrap()[0].id == "a" }
    })
    .await;
    assert!(!latch_b.has_leadership());
    assert_eq!(b_changes.next().now_or_never(), None, "b must not have led");
    assert!(!waiting.is_finished(), "b must not hold the lock");

    // Hand both over.
    guard.release().await.unwrap();
    let b_guard = within("b's lock", waiting).await.unwrap();
    latch_a.close().await;
    within("b to lead", latch_b.await_leadership())
        .await
        .unwrap();
    assert_eq!(b_changes.next().await, Some(true));
    b_guard.release().await.unwrap();
    latch_b.close().await;
}
