//! `ReadWriteLock`: readers share, writers exclude, queue order is respected, Curator's
//! node names.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use zk_recipes::{ReadWriteLock, paths};
use zk_testkit::wait_until;

use crate::{WAIT, connect, start, within};
use zk_testkit::ServerKind;

for_each_server!(
    readers_share_writers_wait_in_order,
    writers_never_overlap_readers_or_each_other,
);

async fn readers_share_writers_wait_in_order(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let path = "/locks/rw";
    let lock = |client: &zk_client::Client| ReadWriteLock::new(client, path).unwrap();
    let (c1, c2, c3, c4) = (
        connect(&cs).await,
        connect(&cs).await,
        connect(&cs).await,
        connect(&cs).await,
    );

    // Two readers at once.
    let r1 = lock(&c1).read_lock().acquire().await.unwrap();
    let r2 = within("a second reader", lock(&c2).read_lock().acquire())
        .await
        .unwrap();
    assert!(paths::normalize(paths::node_name(r1.path())).starts_with("__READ__"));

    // A writer queues behind them; a reader arriving after the writer queues too.
    let writer = tokio::spawn({
        let l = lock(&c3);
        async move { l.write_lock().acquire().await.unwrap() }
    });
    let observer = lock(&c1).read_lock();
    wait_until(WAIT, "the writer queued", || {
        let o = observer.clone();
        async move { o.contenders().await.unwrap().len() == 3 }
    })
    .await;
    let late_reader = tokio::spawn({
        let l = lock(&c4);
        async move { l.read_lock().acquire().await.unwrap() }
    });
    wait_until(WAIT, "the late reader queued", || {
        let o = observer.clone();
        async move { o.contenders().await.unwrap().len() == 4 }
    })
    .await;
    let order = observer.contenders().await.unwrap();
    assert!(
        order[2].contains("__WRIT__") && order[3].contains("__READ__"),
        "{order:?}"
    );
    assert!(
        lock(&c1)
            .write_lock()
            .try_acquire(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!writer.is_finished() && !late_reader.is_finished());

    // Readers leave: the writer gets it, alone.
    r1.release().await.unwrap();
    assert!(!writer.is_finished());
    r2.release().await.unwrap();
    let w = within("the writer", writer).await.unwrap();
    assert!(paths::normalize(paths::node_name(w.path())).starts_with("__WRIT__"));
    assert!(!late_reader.is_finished());
    w.release().await.unwrap();
    let r3 = within("the late reader", late_reader).await.unwrap();
    r3.release().await.unwrap();
}

async fn writers_never_overlap_readers_or_each_other(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let readers = Arc::new(AtomicUsize::new(0));
    let writers = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let client = connect(&cs).await;
        let (readers, writers) = (readers.clone(), writers.clone());
        tasks.push(tokio::spawn(async move {
            let rw = ReadWriteLock::new(&client, "/locks/rw-mixed").unwrap();
            for round in 0..6 {
                if (i + round) % 3 == 0 {
                    let guard = rw.write_lock().acquire().await.unwrap();
                    assert_eq!(writers.fetch_add(1, Ordering::SeqCst), 0, "two writers");
                    assert_eq!(
                        readers.load(Ordering::SeqCst),
                        0,
                        "a reader beside a writer"
                    );
                    client.sync("/").await.unwrap();
                    assert_eq!(
                        readers.load(Ordering::SeqCst),
                        0,
                        "a reader beside a writer"
                    );
                    writers.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await.unwrap();
                } else {
                    let guard = rw.read_lock().acquire().await.unwrap();
                    readers.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(
                        writers.load(Ordering::SeqCst),
                        0,
                        "a writer beside a reader"
                    );
                    client.sync("/").await.unwrap();
                    assert_eq!(
                        writers.load(Ordering::SeqCst),
                        0,
                        "a writer beside a reader"
                    );
                    readers.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await.unwrap();
                }
            }
            client.close().await;
        }));
    }
    for task in tasks {
        within("the read/write workers", task).await.unwrap();
    }
}
