//! `LeaderSelector`: Curator's node layout (a mutex on the election path, `_c_<uuid>-lock-`
//! nodes holding the participant id), mixed Curator 5.4 Java and Rust selectors never lead at
//! once, the work is cancelled when leadership is lost, and rounds re-queue on request or
//! automatically. On Apache ZooKeeper and on zk-server-lite.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;
use zk_client::{Client, CreateMode, CreateOptions, Error as ZkError};
use zk_recipes::leader_selector::Leadership;
use zk_recipes::{LeaderSelector, LossReason, paths};
use zk_testkit::{ServerKind, wait_until};

use crate::jvm::{Participant, compiled, java_ready};
use crate::{WAIT, connect, start, within};

for_each_server!(
    curator_and_rust_selectors_never_lead_at_once,
    lost_leadership_cancels_the_work_and_rounds_requeue,
);

/// One term: the exclusive holder node proves nobody else leads.
async fn term(client: &Client, holder: &str, id: &str) {
    match client
        .create(
            holder,
            id.as_bytes(),
            &CreateOptions::new(CreateMode::Ephemeral),
        )
        .await
    {
        Ok(_) => {}
        Err(ZkError::NodeExists) => panic!("{id} leads while another leader is active"),
        Err(e) => panic!("{e}"),
    }
    tokio::task::yield_now().await;
    client.delete(holder, None).await.unwrap();
}

async fn curator_and_rust_selectors_never_lead_at_once(kind: ServerKind) {
    const JAVA_ROUNDS: usize = 8;
    const RUST_ROUNDS: usize = 8;
    if !java_ready() {
        return;
    }
    let classes = compiled().await;
    let server = start(kind).await;
    let cs = server.connect_string();
    let (path, holder) = ("/xlang/selector", "/xlang/selector-holder");
    let setup = connect(&cs).await;
    paths::ensure_path(&setup, "/xlang").await.unwrap();

    // A Rust selector leads first and holds on: the Java selectors queue behind it, in
    // Curator's mutex layout, with their ids beside ours.
    let gate = LeaderSelector::new(&setup, path, "gate").unwrap();
    let (open_tx, open_rx) = tokio::sync::oneshot::channel::<()>();
    let (leading_tx, leading_rx) = tokio::sync::oneshot::channel::<()>();
    let gate_round = tokio::spawn({
        let gate = gate.clone();
        async move {
            gate.take_leadership(|| async move {
                leading_tx.send(()).unwrap();
                open_rx.await.unwrap();
            })
            .await
        }
    });
    within("the gate to lead", leading_rx).await.unwrap();

    let rounds = JAVA_ROUNDS.to_string();
    let mut java: Vec<Participant> = (0..2)
        .map(|i| {
            Participant::spawn(
                &classes,
                "CuratorSelectorParticipant",
                &[&cs, path, &format!("java-{i}"), &rounds, holder],
            )
        })
        .collect();
    wait_until(WAIT, "both Java selectors queued behind ours", || {
        let gate = gate.clone();
        async move { gate.participants().await.unwrap().len() == 3 }
    })
    .await;
    let participants = gate.participants().await.unwrap();
    let ids: Vec<&str> = participants.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids[0], "gate", "{ids:?}");
    let mut others = ids[1..].to_vec();
    others.sort();
    assert_eq!(others, ["java-0", "java-1"]);
    for p in &participants {
        assert!(paths::is_protected(&p.node), "{}", p.node);
        assert!(paths::normalize(&p.node).starts_with("lock-"), "{}", p.node);
    }
    open_tx.send(()).unwrap();
    let gate_outcome = within("the gate's round", gate_round)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gate_outcome, Leadership::Completed(()));

    // Now Java and Rust selectors take turns; the holder node proves exclusivity.
    let led = Arc::new(AtomicUsize::new(0));
    let mut rust = Vec::new();
    for i in 0..2 {
        let client = connect(&cs).await;
        let selector = LeaderSelector::new(&client, path, &format!("rust-{i}")).unwrap();
        let led = led.clone();
        rust.push(tokio::spawn(async move {
            for _ in 0..RUST_ROUNDS {
                let id = selector.id().to_owned();
                let outcome = selector
                    .take_leadership(|| async { term(&client, holder, &id).await })
                    .await
                    .unwrap();
                assert_eq!(outcome, Leadership::Completed(()));
                led.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    for task in rust {
        within("the Rust selectors' rounds", task).await.unwrap();
    }
    for p in &mut java {
        p.expect("DONE").await;
    }
    for p in java {
        assert!(!p.seen().iter().any(|l| l == "OVERLAP"));
        let terms = p.seen().iter().filter(|l| l.starts_with("LED ")).count();
        assert_eq!(terms, JAVA_ROUNDS);
        p.finish().await;
    }
    assert_eq!(led.load(Ordering::SeqCst), 2 * RUST_ROUNDS);
}

async fn lost_leadership_cancels_the_work_and_rounds_requeue(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let client = connect(&cs).await;
    let admin = connect(&cs).await;
    let path = "/app/selector";
    let selector = LeaderSelector::new(&client, path, "me").unwrap();

    // Our node is deleted while we lead: the work (which never ends) is dropped.
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let round = tokio::spawn({
        let selector = selector.clone();
        async move {
            selector
                .take_leadership(|| async move {
                    started_tx.send(()).unwrap();
                    std::future::pending::<()>().await
                })
                .await
        }
    });
    within("leadership", started.recv()).await.unwrap();
    let leader = selector.leader().await.unwrap().unwrap();
    assert_eq!(leader.id, "me");
    admin
        .delete(&format!("{path}/{}", leader.node), None)
        .await
        .unwrap();
    let outcome = within("the lost round", round).await.unwrap().unwrap();
    assert_eq!(outcome, Leadership::Lost(LossReason::NodeDeleted));

    // Without auto-requeue a running selector leads once, then again per requeue().
    let terms = Arc::new(AtomicUsize::new(0));
    let (term_tx, mut term_rx) = mpsc::unbounded_channel();
    let running = selector.clone().start(false, {
        let terms = terms.clone();
        move |_token| {
            let n = terms.fetch_add(1, Ordering::SeqCst) + 1;
            let term_tx = term_tx.clone();
            async move {
                let _ = term_tx.send(n);
            }
        }
    });
    assert_eq!(within("the first term", term_rx.recv()).await, Some(1));
    // No second term on its own: the node is gone and nothing is queued.
    wait_until(WAIT, "the first term's node to go", || {
        let selector = selector.clone();
        async move { selector.participants().await.unwrap().is_empty() }
    })
    .await;
    assert!(term_rx.try_recv().is_err());
    running.requeue();
    assert_eq!(within("the requeued term", term_rx.recv()).await, Some(2));
    running.close().await.unwrap();
    assert_eq!(terms.load(Ordering::SeqCst), 2);
}
