//! `SharedCount`: seeding, Curator's byte layout, version-checked sets, change stream; and
//! Curator's Java `SharedCount` beside ours on one node (skipped without Java, see
//! [`crate::jvm`]).

use zk_recipes::{SharedCount, VersionedValue};

use crate::jvm::{Participant, compiled, java_ready};
use crate::{connect, start, within};
use zk_testkit::ServerKind;

for_each_server!(
    seed_try_set_and_changes,
    curator_and_rust_shared_counts_see_each_others_sets,
);

async fn seed_try_set_and_changes(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let a = connect(&cs).await;
    let b = connect(&cs).await;
    let path = "/config/workers";
    let count_a = SharedCount::start(&a, path, 4).await.unwrap();
    // A second start does not overwrite the value.
    let count_b = SharedCount::start(&b, path, 99).await.unwrap();
    let first = count_b.get().await.unwrap();
    assert_eq!(first.value, 4);
    let (data, _) = a.get_data(path).await.unwrap();
    assert_eq!(
        &data[..],
        &4i32.to_be_bytes(),
        "Curator's layout: 4 bytes big-endian"
    );

    let mut changes = count_a.changes().await.unwrap();
    assert_eq!(changes.last(), first);
    assert!(count_b.try_set(first, 5).await.unwrap());
    // The same stale version no longer works.
    assert!(!count_a.try_set(first, 6).await.unwrap());
    let seen = within("the change", changes.next()).await.unwrap();
    assert_eq!(seen.value, 5);
    assert_eq!(seen, count_a.get().await.unwrap());

    // Concurrent optimistic increments through try_set lose nothing.
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let client = connect(&cs).await;
        tasks.push(tokio::spawn(async move {
            let count = SharedCount::start(&client, path, 0).await.unwrap();
            for _ in 0..10 {
                loop {
                    let current = count.get().await.unwrap();
                    if count.try_set(current, current.value + 1).await.unwrap() {
                        break;
                    }
                }
            }
            client.close().await;
        }));
    }
    for task in tasks {
        within("the incrementers", task).await.unwrap();
    }
    assert_eq!(count_a.get().await.unwrap().value, 35);
    let latest = within("the latest change", async {
        loop {
            let v = changes.next().await.unwrap();
            if v.value == 35 {
                return v;
            }
        }
    })
    .await;
    assert_eq!(latest.value, 35);

    count_a.set(-1).await.unwrap();
    assert_eq!(count_b.get().await.unwrap().value, -1);
}

/// Waits for the next change of at least `value` reported by our stream (quick changes may
/// be coalesced into the latest).
async fn until_value(changes: &mut zk_recipes::SharedCountChanges, value: i32) -> VersionedValue {
    within(&format!("our change stream to report {value}"), async {
        loop {
            let seen = changes.next().await.unwrap();
            if seen.value == value {
                return seen;
            }
        }
    })
    .await
}

/// Waits for Curator's listener to report `value` (its own earlier sets may be reported too).
async fn java_sees(java: &mut Participant, value: i32) {
    while java.expect("CHANGED").await != value.to_string() {}
}

async fn curator_and_rust_shared_counts_see_each_others_sets(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let server = start(kind).await;
    let cs = server.connect_string();
    let classes = compiled().await;
    let client = connect(&cs).await;
    let path = "/xlang/shared/count";
    let count = SharedCount::start(&client, path, 3).await.unwrap();
    let first = count.get().await.unwrap();
    let mut changes = count.changes().await.unwrap();

    // Curator's start does not overwrite our seed.
    let mut java = Participant::spawn(
        &classes,
        "CuratorSharedCountParticipant",
        &[&cs, path, "99"],
    );
    java.expect("CONNECTED").await;
    assert_eq!(java.expect("STARTED").await, format!("3 {}", first.version));

    // Curator's versioned set: we see it, and our set at the old version now fails.
    java.send("read");
    assert_eq!(java.expect("READ").await, format!("3 {}", first.version));
    java.send("tryset 10");
    assert_eq!(java.expect("TRYSET").await, "true");
    let ten = until_value(&mut changes, 10).await;
    assert_eq!(ten, count.get().await.unwrap());
    assert!(ten.version > first.version);
    assert!(
        !count.try_set(first, 11).await.unwrap(),
        "a stale version must fail"
    );
    assert_eq!(count.get().await.unwrap(), ten);

    // Our versioned set: Curator's listener sees it, and Curator's set at the version it
    // kept (before ours) now fails.
    assert!(count.try_set(ten, 20).await.unwrap());
    java_sees(&mut java, 20).await;
    java.send("tryset 30");
    assert_eq!(
        java.expect("TRYSET").await,
        "false",
        "a stale version must fail"
    );
    let twenty = count.get().await.unwrap();
    assert_eq!(twenty.value, 20);
    java.send("read");
    assert_eq!(java.expect("READ").await, format!("20 {}", twenty.version));

    // Unconditional sets both ways.
    count.set(-5).await.unwrap();
    java_sees(&mut java, -5).await;
    java.send("set 42");
    java.expect("SET").await;
    until_value(&mut changes, 42).await;
    assert_eq!(count.get().await.unwrap().value, 42);
    java.send("quit");
    java.finish().await;
}
