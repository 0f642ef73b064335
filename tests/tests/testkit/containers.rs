//! The `containers` module against the locally built images (`.ci/setup` builds both): the
//! official image's `ZOO_*` contract, a 3-container Apache ensemble partitioned under a
//! client, clean-up of containers left by killed test processes, and the error for a
//! missing image.
//!
//! Without Docker or the images these tests print a SKIPPED line and pass, unless
//! `ZK_REQUIRE_CONTAINERS` is set (as `.ci/test` does): then they fail.

use std::collections::HashMap;
use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions, SessionState};
use zk_testkit::containers::{
    ContainerError, LABEL, ZkContainer, ZkServerLite, ZooKeeper, ZooKeeperEnsemble, docker,
    remove_orphans, skip_or_panic, start_or_skip,
};
use zk_testkit::harness::{WAIT, within};
use zk_testkit::testcontainers::bollard;
use zk_testkit::testcontainers::bollard::query_parameters::CreateContainerOptions;
use zk_testkit::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_variables_configure_the_apache_image_like_the_official_one() {
    let image = ZooKeeper::local_build()
        .tick_time(Duration::from_millis(400))
        .extended_types(true)
        .session_timeouts(None, Some(Duration::from_secs(30)));
    let Some(zk) = start_or_skip("zoo_variables_configure_the_apache_image", image).await else {
        return;
    };
    let conf = zk.four_letter_word("conf").await.unwrap();
    assert!(conf.contains("tickTime=400"), "conf: {conf}");
    assert!(conf.contains("maxSessionTimeout=30000"), "conf: {conf}");
    // extendedTypesEnabled from ZOO_CFG_EXTRA: a TTL node can be created.
    let client = zk_testkit::harness::connect(&zk.connect_string()).await;
    let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(60));
    client.create("/ttl", b"", &ttl).await.unwrap();
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_cfg_settings_configure_the_lite_image() {
    let image = ZkServerLite::default()
        .tick_time(Duration::from_millis(400))
        .extended_types(true);
    let Some(zk) = start_or_skip("zoo_cfg_settings_configure_the_lite_image", image).await else {
        return;
    };
    let client = zk_testkit::harness::connect(&zk.connect_string()).await;
    let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(60));
    client.create("/ttl", b"", &ttl).await.unwrap();
    client.close().await;
}

/// The member serving a client is cut off the ensemble's network: the client moves to
/// another member with the same session, the rest elect a leader, and the member comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_member_loses_its_client_to_the_others_with_the_session() {
    let test = "a_partitioned_member_loses_its_client_to_the_others_with_the_session";
    let image = ZooKeeper::local_build();
    let ensemble = match ZooKeeperEnsemble::start(3, image).await {
        Ok(ensemble) => ensemble,
        Err(e) => return skip_or_panic::<()>(test, e).unwrap_or(()),
    };
    assert_eq!(ensemble.len(), 3);
    assert!(ensemble.leader().await.is_some());

    let client = Client::builder(ensemble.connect_string())
        .session_timeout(Duration::from_secs(20))
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    let session = client.session_id();
    client
        .create("/kept", b"v", &CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    let serving = client
        .connected_server()
        .and_then(|server| ensemble.member_at(server.addr))
        .expect("connected to a member");
    let mut changes = client.state_changes();

    ensemble.disconnect(serving).await.unwrap();
    within("the client to suspend", async {
        loop {
            match changes.next().await {
                Some(SessionState::Suspended) => break,
                Some(_) => continue,
                None => panic!("state stream ended"),
            }
        }
    })
    .await;
    within("the client to reconnect", async {
        loop {
            match changes.next().await {
                Some(SessionState::Reconnected) => break,
                Some(_) => continue,
                None => panic!("state stream ended"),
            }
        }
    })
    .await;
    assert_eq!(client.session_id(), session);
    let now = client
        .connected_server()
        .and_then(|server| ensemble.member_at(server.addr));
    assert!(
        now.is_some_and(|m| m != serving),
        "serving member {now:?}, was {serving}"
    );
    assert_eq!(&client.get_data("/kept").await.unwrap().0[..], b"v");
    client.set_data("/kept", b"w", None).await.unwrap();

    // The partitioned member serves again once back on the network.
    ensemble.connect(serving).await.unwrap();
    wait_until(WAIT, "the partitioned member rejoins", || async {
        ensemble.member(serving).unwrap().mode().await.is_some()
    })
    .await;
    ensemble.wait_for_leader(WAIT).await.unwrap();
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_of_dead_test_processes_are_removed() {
    let test = "containers_of_dead_test_processes_are_removed";
    let docker = match docker().await {
        Ok(docker) => docker,
        Err(e) => return skip_or_panic::<()>(test, e).unwrap_or(()),
    };
    let (name, tag) = zk_testkit::containers::LITE_IMAGE;
    if docker
        .inspect_image(&format!("{name}:{tag}"))
        .await
        .is_err()
    {
        // Let the normal start report the missing image (skip or fail).
        let _ = start_or_skip(test, ZkServerLite::default()).await;
        return;
    }
    // A process that has exited: its pid labels a container it "leaked".
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let created = docker
        .create_container(
            None::<CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(format!("{name}:{tag}")),
                labels: Some(HashMap::from([(LABEL.to_owned(), dead_pid.to_string())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // And a container of this (live) process, which must stay.
    let live = ZkContainer::start(ZkServerLite::default()).await.unwrap();

    remove_orphans().await;
    let leaked = docker.inspect_container(&created.id, None).await;
    assert!(leaked.is_err(), "the leaked container is still there");
    assert!(live.is_running().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_an_error_that_says_how_to_get_it() {
    let test = "a_missing_image_is_an_error_that_says_how_to_get_it";
    // A registry that refuses at once: the pull fails fast, the image stays missing.
    let image = ZkServerLite::default().with_image("127.0.0.1:1/zk-rs/missing", "none");
    match ZkContainer::start(image).await {
        Err(ContainerError::ImageUnavailable {
            image, how_to_get, ..
        }) => {
            assert_eq!(image, "127.0.0.1:1/zk-rs/missing:none");
            assert!(how_to_get.contains("build-lite-image.sh"), "{how_to_get}");
        }
        Err(e @ ContainerError::NoDocker(_)) => {
            skip_or_panic::<()>(test, e);
        }
        other => panic!("expected ImageUnavailable, got {other:?}"),
    }
}
