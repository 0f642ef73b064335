//! SASL `DIGEST-MD5` logins against Apache ZooKeeper 3.8 with JAAS `DigestLoginModule` users
//! and the `sasl` authentication provider. Apache only: zk-server-lite has no SASL.

use std::time::Duration;

use zk_client::{Acl, Client, CreateMode, CreateOptions, Error, Id, Perms, SessionState};
use zk_testkit::{ApacheConfig, ApacheSasl, ApacheServer, FaultProxy, init_tracing};

use crate::{WAIT, connect, wait_state, within};

const SESSION_TIMEOUT: Duration = Duration::from_secs(20);

async fn start_sasl() -> ApacheServer {
    init_tracing();
    let sasl = ApacheSasl::new()
        .user("bob", "bobsecret")
        .user("alice", "alicesecret");
    match ApacheServer::start_with(ApacheConfig::new().sasl(sasl)).await {
        Ok(server) => server,
        Err(e) => panic!("cannot start Apache ZooKeeper with SASL: {e}"),
    }
}

/// Connects with a SASL login; fail-fast so a refused login comes back at once.
async fn try_login(connect_string: &str, user: &str, password: &str) -> Result<Client, Error> {
    within(
        &format!("a SASL login as {user} at {connect_string}"),
        Client::builder(connect_string)
            .sasl_digest(user, password)
            .session_timeout(SESSION_TIMEOUT)
            .connect_timeout(WAIT)
            .fail_fast(true)
            .connect(),
    )
    .await
}

async fn login(connect_string: &str, user: &str, password: &str) -> Client {
    match try_login(connect_string, user, password).await {
        Ok(client) => client,
        Err(e) => panic!("cannot log in as {user} at {connect_string}: {e}"),
    }
}

fn only_bob() -> CreateOptions {
    CreateOptions::new(CreateMode::Persistent)
        .acl(vec![Acl::new(Perms::ALL, Id::new("sasl", "bob"))])
}

async fn is_sasl_user(client: &Client, user: &str) -> bool {
    let ids = client.who_am_i().await.unwrap();
    ids.iter()
        .any(|id| id.auth_scheme == "sasl" && id.user == user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_login_is_the_sasl_identity_for_acls() {
    let server = start_sasl().await;
    let bob = login(&server.connect_string(), "bob", "bobsecret").await;
    assert!(
        is_sasl_user(&bob, "bob").await,
        "{:?}",
        bob.who_am_i().await
    );

    bob.create("/sasl", b"secret", only_bob()).await.unwrap();
    let (acl, _) = bob.get_acl("/sasl").await.unwrap();
    assert_eq!(acl, [Acl::new(Perms::ALL, Id::new("sasl", "bob"))]);

    // No SASL: no access.
    let anonymous = connect(&server.connect_string()).await;
    assert_eq!(anonymous.get_data("/sasl").await, Err(Error::NoAuth));
    // Another SASL user: no access either.
    let alice = login(&server.connect_string(), "alice", "alicesecret").await;
    assert!(is_sasl_user(&alice, "alice").await);
    assert_eq!(alice.get_data("/sasl").await, Err(Error::NoAuth));

    let (data, _) = bob.get_data("/sasl").await.unwrap();
    assert_eq!(&data[..], b"secret");
    bob.delete("/sasl", None).await.unwrap();
    for client in [bob, anonymous, alice] {
        client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sasl_login_ends_in_auth_failed() {
    let server = start_sasl().await;
    // (An unknown user is refused too, but Apache 3.8's `SaslServerCallbackHandler` keeps
    // the last known user name across logins and checks an unknown one against that user's
    // password, so "mallory" with bob's password would pass after bob's attempt: a server
    // quirk, not a client matter. Hence a password nobody has.)
    for (user, password) in [("bob", "wrong"), ("mallory", "nobody-has-this")] {
        match try_login(&server.connect_string(), user, password).await {
            Err(Error::AuthFailed) => {}
            Ok(client) => {
                client.close().await;
                panic!("{user}/{password} was accepted");
            }
            Err(other) => panic!("{user}/{password}: expected AuthFailed, got {other:?}"),
        }
    }
    // Not fail-fast: the refusal is terminal all the same, no retry loop until the timeout.
    let refused = within(
        "a refused login without fail-fast",
        Client::builder(server.connect_string())
            .sasl_digest("bob", "wrong")
            .connect_timeout(WAIT)
            .connect(),
    )
    .await;
    assert!(matches!(refused, Err(Error::AuthFailed)), "{refused:?}");
    // The server is fine afterwards.
    let bob = login(&server.connect_string(), "bob", "bobsecret").await;
    assert!(is_sasl_user(&bob, "bob").await);
    bob.close().await;

    // A server without SASL sends no challenge: a clear refusal too, not a hang.
    let plain = ApacheServer::start().await.unwrap();
    let result = try_login(&plain.connect_string(), "bob", "bobsecret").await;
    assert!(matches!(result, Err(Error::AuthFailed)), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_logs_in_again_after_a_cut_and_a_server_restart() {
    let mut server = start_sasl().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let through_proxy = proxy.addr().to_string();
    let bob = within(
        "a SASL login through the proxy",
        Client::builder(&through_proxy)
            .sasl_digest("bob", "bobsecret")
            .session_timeout(SESSION_TIMEOUT)
            .connect_timeout(WAIT)
            .reconnect_delay(Duration::ZERO)
            .connect(),
    )
    .await
    .unwrap();
    let session = bob.session_id();
    bob.create("/again", b"v", only_bob()).await.unwrap();
    let mut changes = bob.state_changes();

    // The server forgets a connection's identities with the connection: reading the node
    // again proves the new connection logged in before the read was sent.
    proxy.cut_all().await;
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    let queued = bob.get_data("/again");
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert_eq!(
        &within("the queued read", queued).await.unwrap().0[..],
        b"v"
    );
    assert!(is_sasl_user(&bob, "bob").await);

    server.restart().await.unwrap();
    wait_state(&mut changes, "Reconnected after the restart", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert_eq!(bob.session_id(), session, "the same session");
    assert_eq!(&bob.get_data("/again").await.unwrap().0[..], b"v");
    assert!(is_sasl_user(&bob, "bob").await);
    bob.delete("/again", None).await.unwrap();
    bob.close().await;
}
