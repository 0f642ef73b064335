//! `AtomicLong`: concurrent increments lose nothing, compare-and-set, Curator's byte layout.

use zk_recipes::AtomicLong;

use crate::{connect, start, within};
use zk_testkit::ServerKind;

for_each_server!(
    concurrent_increments_and_compare_and_set,
    an_atomic_value_promotes_to_its_lock_after_a_conflict,
);

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

/// An update whose optimistic attempt meets a conflict takes the promoted lock: while
/// someone else holds that lock it gives up with `Contention`; once the lock is free it
/// succeeds under it.
async fn an_atomic_value_promotes_to_its_lock_after_a_conflict(kind: ServerKind) {
    use std::time::Duration;
    use zk_recipes::{AtomicInteger, AtomicValue, Error, Mutex};

    let server = start(kind).await;
    let client = connect(&server.connect_string()).await;
    let other = connect(&server.connect_string()).await;
    let (path, lock) = ("/values/v", "/values/v-lock");
    let value = AtomicValue::new(&client, path)
        .unwrap()
        .max_attempts(1)
        .promoted_to_lock(lock, Duration::from_millis(300))
        .unwrap();
    value.force_set(b"a").await.unwrap();

    // Each call of the update function first changes the node behind its back: the
    // optimistic attempt always conflicts.
    let conflicting = |next: &'static [u8]| {
        let other = other.clone();
        move |_: Option<&[u8]>| {
            let other = other.clone();
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    other.set_data(path, b"x", None).await.unwrap();
                })
            });
            next.to_vec()
        }
    };
    let held = Mutex::new(&other, lock).unwrap().acquire().await.unwrap();
    let blocked = value.update(conflicting(b"b")).await;
    assert!(matches!(blocked, Err(Error::Contention(_))), "{blocked:?}");
    held.release().await.unwrap();

    // Free lock: the first (optimistic) attempt conflicts, the one under the lock wins.
    let mut calls = 0;
    let updated = value
        .update(|_| {
            calls += 1;
            if calls == 1 {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async {
                        other.set_data(path, b"x", None).await.unwrap();
                    })
                });
            }
            b"c".to_vec()
        })
        .await
        .unwrap();
    assert_eq!(
        (updated.pre.as_deref(), updated.post.as_slice()),
        (Some(&b"x"[..]), &b"c"[..])
    );
    assert_eq!(calls, 2);
    assert_eq!(value.get().await.unwrap().as_deref(), Some(&b"c"[..]));

    // An integer node holding something else is refused, not overwritten.
    let int = AtomicInteger::new(&client, path).unwrap();
    assert!(matches!(int.increment().await, Err(Error::InvalidValue(_))));
    assert_eq!(value.get().await.unwrap().as_deref(), Some(&b"c"[..]));
}
