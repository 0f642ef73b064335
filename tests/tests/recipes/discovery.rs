//! Service discovery beside Curator 5.4's `curator-x-discovery` (Java, from the Debian jars)
//! on the same base path: each side sees the other's instances with the same fields (our
//! JSON is Curator's byte for byte), both sides' watch-driven caches follow registrations,
//! unregistrations and session expiries, and our instances come back after our session is
//! lost and we register again on a new client. Plus our provider's strategies and
//! down-instance marking. On Apache ZooKeeper and on zk-server-lite.

use std::collections::BTreeSet;
use std::time::Duration;

use zk_recipes::discovery::serde_json::json;
use zk_recipes::discovery::{
    DownInstancePolicy, ProviderStrategy, ServiceDiscovery, ServiceInstance, UriSpec,
};
use zk_testkit::{FaultProxy, ServerKind, wait_until};

use crate::jvm::{Participant, compiled, java_ready};
use crate::{WAIT, connect, connect_with, start, within};

for_each_server!(
    curator_and_rust_discover_each_other_across_session_expiries,
    provider_strategies_and_down_instances,
);

const BASE: &str = "/services";

fn ids(instances: &[ServiceInstance]) -> String {
    let ids: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    if ids.is_empty() {
        "-".to_owned()
    } else {
        ids.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// Waits until `cache` holds exactly `want` (comma-separated ids).
async fn await_cache(cache: &zk_recipes::discovery::ServiceCache, want: &str) {
    let mut changes = cache.changes();
    within(&format!("our cache to hold {want}"), async {
        while ids(&cache.instances()) != want {
            changes.next().await.unwrap();
        }
    })
    .await;
}

async fn curator_and_rust_discover_each_other_across_session_expiries(kind: ServerKind) {
    if !java_ready() {
        return;
    }
    let classes = compiled().await;
    let server = start(kind).await;
    let cs = server.connect_string();
    // Our first session goes through a proxy, to be expired by stalling it (both servers).
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let observer = connect(&cs).await;

    let mut java = Participant::spawn(&classes, "CuratorDiscoveryParticipant", &[&cs, BASE]);
    java.expect("READY").await;

    // Ours, seen by Java with every field.
    let discovery = ServiceDiscovery::new(&client, BASE).unwrap();
    let ours = ServiceInstance::new("orders")
        .id("rust-1")
        .address("10.0.0.1")
        .port(8080)
        .payload(json!("r"))
        .uri_spec(UriSpec::parse("{scheme}://{address}:{port}").unwrap());
    let path = discovery.register(&ours).await.unwrap();
    assert_eq!(path, "/services/orders/rust-1");
    let (data, stat) = observer.get_data(&path).await.unwrap();
    assert_eq!(data.as_ref(), ours.to_json().as_bytes());
    assert_eq!(stat.ephemeral_owner, client.session_id());
    java.send("query orders");
    assert_eq!(
        java.expect("INSTANCE ").await,
        format!(
            "rust-1 10.0.0.1 8080 null r DYNAMIC {} http://10.0.0.1:8080",
            ours.registration_time_utc
        )
    );
    java.expect("END").await;

    // Theirs, seen by us with every field; their JSON is ours byte for byte.
    java.send("register orders java-1 10.0.0.2 8081 j");
    let stored = java.expect("REGISTERED ").await;
    let theirs = ServiceInstance::from_json(stored.as_bytes()).unwrap();
    assert_eq!(theirs.to_json(), stored);
    let found = discovery
        .instance("orders", "java-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, theirs);
    assert_eq!(
        (found.address.as_deref(), found.port, found.ssl_port),
        (Some("10.0.0.2"), Some(8081), None)
    );
    assert_eq!(found.payload, Some(json!("j")));
    assert_eq!(found.uri().as_deref(), Some("http://10.0.0.2:8081"));
    assert_eq!(
        ids(&discovery.instances("orders").await.unwrap()),
        "java-1,rust-1"
    );
    assert_eq!(discovery.names().await.unwrap(), ["orders"]);
    java.send("names");
    assert_eq!(java.expect("NAMES ").await, "orders");

    // Both caches see both; our round-robin provider hands out both in turn.
    java.send("await orders java-1,rust-1");
    java.expect("CACHED ").await;
    let provider = discovery
        .provider("orders")
        .strategy(ProviderStrategy::RoundRobin)
        .start()
        .await
        .unwrap();
    let picks: BTreeSet<String> = (0..4)
        .map(|_| provider.instance().unwrap().unwrap().id)
        .collect();
    assert_eq!(picks.into_iter().collect::<Vec<_>>(), ["java-1", "rust-1"]);

    // Java's session expires: Curator registers again on its new session, our cache follows.
    let java_node = "/services/orders/java-1";
    let old_owner = observer
        .exists(java_node)
        .await
        .unwrap()
        .unwrap()
        .ephemeral_owner;
    java.send("expire");
    java.expect("EXPIRED").await;
    wait_until(WAIT, "Curator to register again on its new session", || {
        let observer = observer.clone();
        async move {
            observer
                .exists(java_node)
                .await
                .unwrap()
                .is_some_and(|s| s.ephemeral_owner != old_owner)
        }
    })
    .await;
    await_cache(provider.cache(), "java-1,rust-1").await;

    // Our session expires: Java's cache loses our instance, our provider says why it
    // cannot answer; on a new client we register again and Java sees us back.
    proxy.stall();
    java.send("await orders java-1");
    java.expect("CACHED ").await;
    proxy.unstall();
    let mut changes = provider.cache().changes();
    within("our cache to end with its session", async {
        while changes.next().await.is_ok() {}
    })
    .await;
    assert!(provider.cache().is_ended());
    let err = provider.instance().unwrap_err();
    assert!(err.is_session_lost(), "{err}");
    assert!(
        err.to_string().contains("new Client"),
        "the error says what to do: {err}"
    );
    let fresh = connect(&cs).await;
    discovery.reregister_on(&fresh).await.unwrap();
    java.send("await orders java-1,rust-1");
    java.expect("CACHED ").await;
    let provider = discovery.provider("orders").start().await.unwrap();
    assert_eq!(ids(&provider.all_instances().unwrap()), "java-1,rust-1");

    // Unregistrations, both ways.
    discovery.unregister(&ours).await.unwrap();
    java.send("await orders java-1");
    java.expect("CACHED ").await;
    java.send("unregister orders java-1");
    java.expect("UNREGISTERED").await;
    await_cache(provider.cache(), "-").await;
    java.send("quit");
    java.expect("DONE").await;
    java.finish().await;
}

/// Round-robin cycles in id order, random stays among those up, sticky keeps its choice
/// until it goes, and instances with enough noted errors are skipped.
async fn provider_strategies_and_down_instances(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let client = connect(&cs).await;
    let discovery = ServiceDiscovery::new(&client, BASE).unwrap();
    let instances: Vec<ServiceInstance> = ["a", "b", "c"]
        .iter()
        .map(|id| ServiceInstance::new("web").id(*id).address("127.0.0.1"))
        .collect();
    for instance in &instances {
        discovery.register(instance).await.unwrap();
    }

    let rr = discovery.provider("web").start().await.unwrap();
    let picks: Vec<String> = (0..6).map(|_| rr.instance().unwrap().unwrap().id).collect();
    assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);

    // Two errors (the default threshold) mark "b" down; one error on "c" does not.
    rr.note_error(&instances[1]);
    assert_eq!(ids(&rr.all_instances().unwrap()), "a,b,c");
    rr.note_error(&instances[1]);
    rr.note_error(&instances[2]);
    assert_eq!(ids(&rr.all_instances().unwrap()), "a,c");
    for _ in 0..6 {
        assert_ne!(rr.instance().unwrap().unwrap().id, "b");
    }

    let random = discovery
        .provider("web")
        .strategy(ProviderStrategy::Random)
        .down_instance_policy(DownInstancePolicy {
            timeout: Duration::from_secs(600),
            error_threshold: 1,
        })
        .start()
        .await
        .unwrap();
    random.note_error(&instances[0]);
    for _ in 0..20 {
        assert_ne!(random.instance().unwrap().unwrap().id, "a");
    }

    let sticky = discovery
        .provider("web")
        .strategy(ProviderStrategy::sticky(ProviderStrategy::RoundRobin))
        .start()
        .await
        .unwrap();
    let first = sticky.instance().unwrap().unwrap();
    for _ in 0..5 {
        assert_eq!(sticky.instance().unwrap().unwrap().id, first.id);
    }
    // Its instance goes: the cache follows, sticky moves on and stays again.
    discovery.unregister(&first).await.unwrap();
    let remaining: String = instances
        .iter()
        .filter(|i| i.id != first.id)
        .map(|i| i.id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    await_cache(sticky.cache(), &remaining).await;
    let second = sticky.instance().unwrap().unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(sticky.instance().unwrap().unwrap().id, second.id);

    // A node that is not an instance is skipped, not fatal.
    client
        .create(
            "/services/web/junk",
            b"not json",
            &zk_client::CreateOptions::new(zk_client::CreateMode::Ephemeral),
        )
        .await
        .unwrap();
    assert_eq!(ids(&discovery.instances("web").await.unwrap()), remaining);
    discovery.close().await.unwrap();
    await_cache(sticky.cache(), "-").await;
}
