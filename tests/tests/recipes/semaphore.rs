//! `Semaphore`: never more holders than leases, timeouts leave nothing behind, Curator's
//! layout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use zk_recipes::{Semaphore, paths};

use crate::{connect, start, within};
use zk_testkit::ServerKind;

for_each_server!(never_more_holders_than_leases,);

async fn never_more_holders_than_leases(kind: ServerKind) {
    const LEASES: usize = 2;
    let server = start(kind).await;
    let cs = server.connect_string();
    let observer = connect(&cs).await;
    let path = "/semaphores/slots";
    let holders = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let client = connect(&cs).await;
        let (holders, peak) = (holders.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let semaphore = Semaphore::new(&client, path, LEASES).unwrap();
            for _ in 0..3 {
                let lease = semaphore.acquire().await.unwrap();
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(now <= LEASES, "{now} holders of {LEASES} leases");
                peak.fetch_max(now, Ordering::SeqCst);
                client.sync("/").await.unwrap();
                holders.fetch_sub(1, Ordering::SeqCst);
                lease.release().await.unwrap();
            }
            client.close().await;
        }));
    }
    for task in tasks {
        within("the semaphore users", task).await.unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) >= 1);
    assert!(
        observer
            .get_children("/semaphores/slots/leases")
            .await
            .unwrap()
            .is_empty()
    );

    // Both leases taken: a timed-out try leaves no lease node and no internal lock node.
    let semaphore = Semaphore::new(&observer, path, LEASES).unwrap();
    let a = semaphore.acquire().await.unwrap();
    let b = semaphore.acquire().await.unwrap();
    for lease in [&a, &b] {
        let name = paths::node_name(lease.path());
        assert!(paths::normalize(name).starts_with("lease-"), "{name}");
    }
    assert!(
        semaphore
            .try_acquire(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(semaphore.participants().await.unwrap().len(), 2);
    assert!(
        observer
            .get_children("/semaphores/slots/locks")
            .await
            .unwrap()
            .is_empty()
    );
    a.release().await.unwrap();
    let c = within("a freed lease", semaphore.acquire()).await.unwrap();
    b.release().await.unwrap();
    c.release().await.unwrap();
}
