//! The same recipes against zk-server-lite (in process): mutual exclusion and the leader
//! latch hand-over.

use zk_server_lite::Server;

async fn start_lite() -> Server {
    zk_testkit::init_tracing();
    Server::builder().start().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutex_contenders_never_overlap_on_server_lite() {
    let server = start_lite().await;
    crate::lock::no_overlap(&server.connect_string(), 4, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_latch_hands_over_on_server_lite() {
    let server = start_lite().await;
    crate::leader_latch::one_leader_and_hand_over(&server.connect_string()).await;
}
