//! What a user's own integration test looks like with zk-testkit: a small service (a
//! "billing" worker that, while it is the leader, settles invoices one at a time under a
//! lock) tested (a) against the embedded zk-server-lite and (b) against ZooKeeper in a
//! container, each with a fault injected: the leader's process dies (its session closes) and
//! the other instance must take over; in the container the server is also stopped and
//! started under both instances, which must carry on with their sessions.
//!
//! ```sh
//! cargo run -p zk-examples --example testing_your_service            # embedded + both local images
//! cargo run -p zk-examples --example testing_your_service -- embedded # no Docker
//! ```
//!
//! In a service's repository the same code sits in `tests/*.rs` as `#[tokio::test]`s (see
//! the README, "Testing your service"). Exits non-zero if an expectation fails.

use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions};
use zk_recipes::{LeaderLatch, Mutex};
use zk_testkit::TestServer;
use zk_testkit::containers::{ServerImage, ZkContainer, ZkServerLite, ZooKeeper};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service under test: one instance of a billing worker.
struct Billing {
    client: Client,
    latch: LeaderLatch,
    lock: Mutex,
}

impl Billing {
    async fn start(connect_string: &str, id: &str) -> Result<Billing, BoxError> {
        let client = Client::builder(connect_string)
            .session_timeout(Duration::from_secs(10))
            .connect()
            .await?;
        let mut latch = LeaderLatch::new(&client, "/billing/leader", id)?;
        latch.start()?;
        let lock = Mutex::new(&client, "/billing/settle-lock")?;
        Ok(Billing {
            client,
            latch,
            lock,
        })
    }

    /// Settles one invoice if this instance leads: +1 on `/billing/settled`, under the lock.
    async fn settle_one(&self) -> Result<bool, BoxError> {
        if !self.latch.has_leadership() {
            return Ok(false);
        }
        let guard = self.lock.acquire().await?;
        let (data, stat) = match self.client.get_data("/billing/settled").await {
            Ok(found) => found,
            Err(zk_client::Error::NoNode) => {
                let persistent = CreateOptions::new(CreateMode::Persistent);
                self.client
                    .create("/billing/settled", b"0", &persistent)
                    .await?;
                self.client.get_data("/billing/settled").await?
            }
            Err(e) => return Err(e.into()),
        };
        let settled: u64 = std::str::from_utf8(&data)?.parse()?;
        let next = (settled + 1).to_string();
        self.client
            .set_data("/billing/settled", next.as_bytes(), Some(stat.version))
            .await?;
        guard.release().await?;
        Ok(true)
    }
}

/// The test body, the same for every server: two instances, one leads and settles; the
/// leader dies; the other takes over and settles.
async fn leader_dies_and_the_other_takes_over(connect_string: &str) -> Result<(), BoxError> {
    let a = Billing::start(connect_string, "a").await?;
    let b = Billing::start(connect_string, "b").await?;
    let bound = Duration::from_secs(60);
    // Exactly one leads.
    zk_testkit::try_wait_until(bound, "a leader", || async {
        a.latch.has_leadership() != b.latch.has_leadership()
    })
    .await?;
    let (leader, follower) = if a.latch.has_leadership() {
        (a, b)
    } else {
        (b, a)
    };
    check(leader.settle_one().await?, "the leader settles")?;
    check(!follower.settle_one().await?, "the follower does not")?;

    // Fault: the leader's process dies (its session closes with it).
    leader.client.close().await;
    drop(leader);
    follower.latch.await_leadership_timeout(bound).await?;
    check(follower.settle_one().await?, "the new leader settles")?;
    let (data, _) = follower.client.get_data("/billing/settled").await?;
    check(&data[..] == b"2", "two invoices settled, once each")?;
    follower.client.close().await;
    Ok(())
}

/// In a container the whole server can be stopped and started under the service.
async fn survives_a_server_restart<I: ServerImage>(zk: &ZkContainer<I>) -> Result<(), BoxError> {
    let a = Billing::start(&zk.connect_string(), "a").await?;
    a.latch
        .await_leadership_timeout(Duration::from_secs(60))
        .await?;
    check(a.settle_one().await?, "settles before the restart")?;
    zk.stop().await?;
    zk.start_again().await?;
    zk_testkit::try_wait_until(
        Duration::from_secs(60),
        "settling after the restart",
        || async { matches!(a.settle_one().await, Ok(true)) },
    )
    .await?;
    a.client.close().await;
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), BoxError> {
    if ok {
        println!("  ok: {what}");
        Ok(())
    } else {
        Err(format!("expected: {what}").into())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let only_embedded = std::env::args().nth(1).as_deref() == Some("embedded");

    println!("(a) embedded zk-server-lite");
    let server = TestServer::embedded().await?;
    leader_dies_and_the_other_takes_over(&server.connect_string()).await?;

    if only_embedded {
        return Ok(());
    }
    println!("(b) zk-server-lite in a container");
    let zk = ZkContainer::start(ZkServerLite::default()).await?;
    leader_dies_and_the_other_takes_over(&zk.connect_string()).await?;
    survives_a_server_restart(&zk).await?;

    // A user with a registry writes ZooKeeper::official("3.8"); this repository's CI has no
    // registry and builds the same contract locally.
    println!("(c) Apache ZooKeeper in a container");
    let zk = ZkContainer::start(ZooKeeper::local_build()).await?;
    leader_dies_and_the_other_takes_over(&zk.connect_string()).await?;
    survives_a_server_restart(&zk).await?;
    println!("all ok");
    Ok(())
}
