//! zk-client against ZooKeeper in Docker containers (zk-testkit's `containers` module), each
//! test against both images: Apache ZooKeeper 3.8 with the official image's contract (built
//! without a registry by `tests/container/build-image.sh`) and zk-server-lite in a
//! `FROM scratch` image (`tests/container/build-lite-image.sh`). The faults only a container
//! gives: `docker pause` (the whole server frozen, its sockets still open) and stop/start of
//! the server with its data.
//!
//! Without Docker or the images these tests print a SKIPPED line and pass, unless
//! `ZK_REQUIRE_CONTAINERS` is set (as `.ci/test` does): then they fail.

use std::time::Duration;

use zk_client::{CreateMode, CreateOptions, EventType, SessionState};
use zk_testkit::containers::{ServerImage, ZkContainer, start_or_skip};

use crate::{connect, connect_with, wait_state, within};

fn persistent() -> CreateOptions {
    CreateOptions::new(CreateMode::Persistent)
}

/// One test per image: `apache::name` and `lite::name`.
macro_rules! for_each_image {
    ($($name:ident),* $(,)?) => {
        mod apache {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(zk_testkit::containers::ZooKeeper::local_build()).await;
                }
            )*
        }
        mod lite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(zk_testkit::containers::ZkServerLite::default()).await;
                }
            )*
        }
    };
}

for_each_image!(
    crud_and_a_watch_against_a_containerized_server,
    a_paused_server_suspends_the_session_and_unpausing_resumes_it,
    a_stopped_and_started_container_keeps_data_and_session,
);

async fn start<I: ServerImage>(test: &str, image: I) -> Option<ZkContainer<I>> {
    let name = format!("{test} ({}:{})", image.name(), image.tag());
    start_or_skip(&name, image).await
}

async fn crud_and_a_watch_against_a_containerized_server<I: ServerImage>(image: I) {
    let Some(zk) = start("crud_and_a_watch_against_a_containerized_server", image).await else {
        return;
    };
    let srvr = zk.four_letter_word("srvr").await.unwrap();
    assert!(srvr.contains("Mode: standalone"), "srvr: {srvr:?}");
    let client = connect(&zk.connect_string()).await;
    client.create("/c", b"one", &persistent()).await.unwrap();
    let (data, stat, watcher) = client.get_data_watch("/c").await.unwrap();
    assert_eq!(&data[..], b"one");
    client
        .set_data("/c", b"two", Some(stat.version))
        .await
        .unwrap();
    let event = within("the data watch", watcher).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/c")
    );
    assert_eq!(&client.get_data("/c").await.unwrap().0[..], b"two");
    client.delete("/c", None).await.unwrap();
    assert_eq!(client.exists("/c").await.unwrap(), None);
    client.close().await;
}

async fn a_paused_server_suspends_the_session_and_unpausing_resumes_it<I: ServerImage>(image: I) {
    let Some(zk) = start(
        "a_paused_server_suspends_the_session_and_unpausing_resumes_it",
        image,
    )
    .await
    else {
        return;
    };
    // The pause must end before the server would expire the session: the server's clock
    // runs on while it is frozen. The client suspends after 2/3 of the timeout without a
    // reply, so 15 s leaves about 5 s for unpausing and reconnecting (no random reconnect
    // delay here, to keep that margin for a slow machine).
    let client = zk_client::Client::builder(zk.connect_string())
        .session_timeout(Duration::from_secs(15))
        .reconnect_delay(Duration::ZERO)
        .connect_timeout(zk_testkit::harness::WAIT)
        .connect()
        .await
        .unwrap();
    let session = client.session_id();
    client.create("/p", b"before", &persistent()).await.unwrap();
    let (_, _, watcher) = client.get_data_watch("/p").await.unwrap();
    let mut changes = client.state_changes();

    zk.pause().await.unwrap();
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    zk.unpause().await.unwrap();
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert_eq!(client.session_id(), session);

    // The session works and its watch survived the freeze.
    let other = connect(&zk.connect_string()).await;
    other.set_data("/p", b"after", None).await.unwrap();
    let event = within("the watch after the pause", watcher).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/p")
    );
    other.close().await;
    client.close().await;
}

async fn a_stopped_and_started_container_keeps_data_and_session<I: ServerImage>(image: I) {
    let Some(zk) = start(
        "a_stopped_and_started_container_keeps_data_and_session",
        image,
    )
    .await
    else {
        return;
    };
    let client = connect_with(&zk.connect_string(), Duration::from_secs(20)).await;
    let session = client.session_id();
    client
        .create("/kept", b"data", &persistent())
        .await
        .unwrap();
    let mut changes = client.state_changes();

    within("docker stop", zk.stop()).await.unwrap();
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    assert!(!zk.is_running().await.unwrap());
    within("docker start", zk.start_again()).await.unwrap();
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert_eq!(client.session_id(), session);
    assert_eq!(&client.get_data("/kept").await.unwrap().0[..], b"data");
    client.close().await;
}
