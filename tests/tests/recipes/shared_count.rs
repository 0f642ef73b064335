//! `SharedCount`: seeding, Curator's byte layout, version-checked sets, change stream.

use zk_recipes::SharedCount;

use crate::{connect, start, within};
use zk_testkit::ServerKind;

for_each_server!(seed_try_set_and_changes,);

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
