//! `AtomicLong`: concurrent increments lose nothing, compare-and-set, Curator's byte layout.

use zk_recipes::AtomicLong;

use crate::{connect, start, within};
use zk_testkit::ServerKind;

for_each_server!(concurrent_increments_and_compare_and_set,);

async fn concurrent_increments_and_compare_and_set(kind: ServerKind) {
    const TASKS: i64 = 4;
    const EACH: i64 = 25;
    let server = start(kind).await;
    let cs = server.connect_string();
    let observer = connect(&cs).await;
    let path = "/counters/jobs";
    let counter = AtomicLong::new(&observer, path).unwrap();
    assert_eq!(counter.get().await.unwrap(), 0);
    // Compare-and-set on a missing node fails, as in Curator.
    assert!(!counter.compare_and_set(0, 5).await.unwrap());

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let client = connect(&cs).await;
        tasks.push(tokio::spawn(async move {
            let counter = AtomicLong::new(&client, path).unwrap();
            let mut seen = Vec::new();
            for _ in 0..EACH {
                seen.push(counter.increment().await.unwrap());
            }
            client.close().await;
            seen
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(within("the incrementers", task).await.unwrap());
    }
    // Every increment returned a distinct new value: 1..=100.
    all.sort();
    assert_eq!(all, (1..=TASKS * EACH).collect::<Vec<_>>());
    assert_eq!(counter.get().await.unwrap(), TASKS * EACH);

    // Curator's layout: 8 bytes, big-endian.
    let (data, _) = observer.get_data(path).await.unwrap();
    assert_eq!(&data[..], &(TASKS * EACH).to_be_bytes());

    assert!(!counter.compare_and_set(7, 8).await.unwrap());
    assert!(counter.compare_and_set(TASKS * EACH, -1).await.unwrap());
    assert_eq!(counter.decrement().await.unwrap(), -2);
    counter.force_set(i64::MAX).await.unwrap();
    assert_eq!(
        counter.increment().await.unwrap(),
        i64::MIN,
        "wraps like Java"
    );

    // Something that is not a counter is refused, not misread.
    observer.set_data(path, b"abc", None).await.unwrap();
    assert!(matches!(
        counter.get().await,
        Err(zk_recipes::Error::InvalidValue(_))
    ));
}
