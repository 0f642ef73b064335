//! zk-client over TLS against Apache ZooKeeper 3.8's `secureClientPort` (Netty connection
//! factory, PEM key and trust stores, certificates made per test by `zk_testkit::tls`).
//! Apache only: zk-server-lite has no TLS.

use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions, Error, EventType, SessionState, TlsConfig};
use zk_testkit::tls::{Identity, TestCa};
use zk_testkit::{
    ApacheClientAuth, ApacheConfig, ApacheEnsemble, ApacheServer, ApacheTls, init_tracing,
};

use crate::{WAIT, wait_state, within};

const SESSION_TIMEOUT: Duration = Duration::from_secs(20);

/// A CA and a server certificate for `names`.
fn pki(names: &[&str]) -> (TestCa, Identity) {
    let ca = TestCa::new("zk-testkit CA").unwrap();
    let server = ca.issue_server(names).unwrap();
    (ca, server)
}

async fn start_tls(tls: ApacheTls) -> ApacheServer {
    init_tracing();
    match ApacheServer::start_with(ApacheConfig::new().tls(tls)).await {
        Ok(server) => server,
        Err(e) => panic!("cannot start Apache ZooKeeper with TLS: {e}"),
    }
}

fn trusting(ca: &TestCa) -> TlsConfig {
    TlsConfig::builder()
        .ca_pem(ca.cert_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

/// Connects over TLS; fail-fast, so a TLS failure comes back after one round.
async fn try_connect(connect_string: &str, tls: TlsConfig) -> Result<Client, Error> {
    within(
        &format!("a TLS connect to {connect_string}"),
        Client::builder(connect_string)
            .tls(tls)
            .session_timeout(SESSION_TIMEOUT)
            .connect_timeout(WAIT)
            .fail_fast(true)
            .connect(),
    )
    .await
}

async fn connect(connect_string: &str, tls: TlsConfig) -> Client {
    match try_connect(connect_string, tls).await {
        Ok(client) => client,
        Err(e) => panic!("cannot connect over TLS to {connect_string}: {e}"),
    }
}

/// The TLS error of a connect that must fail.
async fn tls_error(connect_string: &str, tls: TlsConfig) -> String {
    match try_connect(connect_string, tls).await {
        Ok(client) => {
            client.close().await;
            panic!("TLS connect to {connect_string} succeeded; it must fail");
        }
        Err(Error::Tls(message)) => message,
        Err(other) => panic!("expected a TLS error from {connect_string}, got {other:?}"),
    }
}

fn persistent() -> CreateOptions {
    CreateOptions::new(CreateMode::Persistent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connect_create_get_set_delete_and_watch() {
    let (ca, server_id) = pki(&["localhost", "127.0.0.1"]);
    let server = start_tls(ApacheTls::new(ca.cert_pem(), &server_id)).await;
    // The IP literal is checked against the certificate's IP address, the name against its
    // DNS name.
    let by_ip = server.secure_connect_string("127.0.0.1").unwrap();
    let by_name = server.secure_connect_string("localhost").unwrap();
    let client = connect(&by_ip, trusting(&ca)).await;
    let other = connect(&by_name, trusting(&ca)).await;

    client.create("/tls", b"v1", persistent()).await.unwrap();
    let (data, stat) = client.get_data("/tls").await.unwrap();
    assert_eq!(&data[..], b"v1");
    let (_, _, watcher) = client.get_data_watch("/tls").await.unwrap();
    other
        .set_data("/tls", b"v2", Some(stat.version))
        .await
        .unwrap();
    let event = within("the data watch over TLS", watcher).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/tls")
    );
    let (data, _) = client.get_data("/tls").await.unwrap();
    assert_eq!(&data[..], b"v2");
    client.delete("/tls", None).await.unwrap();
    assert_eq!(other.exists("/tls").await.unwrap(), None);
    // No client certificate: the session is only identified by its address.
    let who = client.who_am_i().await.unwrap();
    assert!(who.iter().all(|c| c.auth_scheme != "x509"), "{who:?}");

    // The plain client port does not speak TLS: a clear error, not a hang.
    let plain = tls_error(&server.connect_string(), trusting(&ca)).await;
    assert!(
        plain.contains("TLS handshake failed") && plain.contains("secureClientPort"),
        "{plain}"
    );

    client.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_an_untrusted_server_certificate_fails_fast() {
    let (ca, server_id) = pki(&["localhost", "127.0.0.1"]);
    let server = start_tls(ApacheTls::new(ca.cert_pem(), &server_id)).await;
    let stranger = TestCa::new("another CA").unwrap();
    let message = tls_error(
        &server.secure_connect_string("127.0.0.1").unwrap(),
        trusting(&stranger),
    )
    .await;
    assert!(
        message.contains("not signed by a trusted CA") && message.contains("UnknownIssuer"),
        "{message}"
    );
    // The failure names the server it happened with.
    assert!(
        message.contains(&server.secure_addr().unwrap().to_string()),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_hostname_mismatch_fails_unless_verification_is_off() {
    // A certificate for the name only: connecting by IP does not match it.
    let (ca, server_id) = pki(&["localhost"]);
    let server = start_tls(ApacheTls::new(ca.cert_pem(), &server_id)).await;
    let by_ip = server.secure_connect_string("127.0.0.1").unwrap();

    let message = tls_error(&by_ip, trusting(&ca)).await;
    assert!(message.contains("not valid for the host name"), "{message}");

    // The name it was issued for works...
    let by_name = connect(
        &server.secure_connect_string("localhost").unwrap(),
        trusting(&ca),
    )
    .await;
    by_name.create("/named", b"", persistent()).await.unwrap();

    // ... and so does the IP once host names are not verified.
    let lenient = TlsConfig::builder()
        .ca_pem(ca.cert_pem().as_bytes())
        .unwrap()
        .verify_hostname(false)
        .build()
        .unwrap();
    let client = connect(&by_ip, lenient).await;
    assert!(client.exists("/named").await.unwrap().is_some());

    // Without hostname verification the chain is still verified: another CA fails.
    let stranger = TestCa::new("another CA").unwrap();
    let lenient_stranger = TlsConfig::builder()
        .ca_pem(stranger.cert_pem().as_bytes())
        .unwrap()
        .verify_hostname(false)
        .build()
        .unwrap();
    let message = tls_error(&by_ip, lenient_stranger).await;
    assert!(message.contains("not signed by a trusted CA"), "{message}");

    client.close().await;
    by_name.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_and_authenticates_it_as_x509() {
    let (ca, server_id) = pki(&["localhost", "127.0.0.1"]);
    let server =
        start_tls(ApacheTls::new(ca.cert_pem(), &server_id).client_auth(ApacheClientAuth::Need))
            .await;
    let connect_string = server.secure_connect_string("127.0.0.1").unwrap();

    // Without a client certificate the server refuses the handshake.
    let message = tls_error(&connect_string, trusting(&ca)).await;
    assert!(
        message.contains("TLS handshake failed") && message.contains("client certificate"),
        "{message}"
    );

    // A certificate from another CA is refused too.
    let stranger = TestCa::new("another CA").unwrap();
    let foreign = stranger.issue_client("intruder").unwrap();
    let with_foreign = TlsConfig::builder()
        .ca_pem(ca.cert_pem().as_bytes())
        .unwrap()
        .client_identity_pem(foreign.cert_pem.as_bytes(), foreign.key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let message = tls_error(&connect_string, with_foreign).await;
    assert!(message.contains("TLS handshake failed"), "{message}");

    // With one the CA issued, the session is authenticated as x509 with the subject DN.
    let identity = ca.issue_client("app-1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.path().join("ca.pem"),
        dir.path().join("client.pem"),
        dir.path().join("client-key.pem"),
    );
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    std::fs::write(&cert_file, &identity.cert_pem).unwrap();
    std::fs::write(&key_file, &identity.key_pem).unwrap();
    let mutual = TlsConfig::builder()
        .ca_pem_file(&ca_file)
        .unwrap()
        .client_identity_pem_files(&cert_file, &key_file)
        .unwrap()
        .build()
        .unwrap();
    let client = connect(&connect_string, mutual).await;
    let who = client.who_am_i().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "x509" && c.user == identity.subject_dn),
        "expected x509 {} in {who:?}",
        identity.subject_dn
    );
    client.create("/mtls", b"ok", persistent()).await.unwrap();
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_session_survives_a_server_restart() {
    let (ca, server_id) = pki(&["localhost", "127.0.0.1"]);
    let mut server = start_tls(ApacheTls::new(ca.cert_pem(), &server_id)).await;
    let connect_string = server.secure_connect_string("localhost").unwrap();
    let client = connect(&connect_string, trusting(&ca)).await;
    let session = client.session_id();
    client.create("/kept", b"data", persistent()).await.unwrap();
    client
        .create("/eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, _, watcher) = client.get_data_watch("/kept").await.unwrap();
    let mut changes = client.state_changes();

    within("the restart", server.restart()).await.unwrap();
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    // Same session, re-attached over TLS: its ephemeral node and watch live on.
    assert_eq!(client.session_id(), session);
    let (data, _) = client.get_data("/kept").await.unwrap();
    assert_eq!(&data[..], b"data");
    let other = connect(&connect_string, trusting(&ca)).await;
    let stat = other.exists("/eph").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session);
    other.set_data("/kept", b"after", None).await.unwrap();
    let event = within("the watch re-armed over TLS", watcher).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/kept")
    );
    client.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_ensemble_fails_over_to_another_member_with_the_same_session() {
    init_tracing();
    let (ca, server_id) = pki(&["localhost", "127.0.0.1"]);
    let config = ApacheConfig::new().tls(ApacheTls::new(ca.cert_pem(), &server_id));
    let mut ensemble = match ApacheEnsemble::start_with(3, config).await {
        Ok(ensemble) => ensemble,
        Err(e) => panic!("cannot start a TLS ensemble: {e}"),
    };
    let connect_string = ensemble.secure_connect_string("127.0.0.1");
    let client = connect(&connect_string, trusting(&ca)).await;
    let session = client.session_id();
    client
        .create("/eph", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut changes = client.state_changes();

    // Kill the member serving the session: the client moves to another over TLS.
    let serving = client.connected_server().unwrap();
    let secure = ensemble.secure_addrs();
    let victim = secure.iter().position(|a| *a == serving.addr).unwrap();
    within("killing the serving member", ensemble.kill(victim))
        .await
        .unwrap();
    wait_state(&mut changes, "Suspended", |s| s == SessionState::Suspended).await;
    wait_state(&mut changes, "Reconnected", |s| {
        s == SessionState::Reconnected
    })
    .await;
    assert_eq!(client.session_id(), session);
    let now = client.connected_server().unwrap();
    assert_ne!(now.addr, serving.addr);
    assert!(secure.contains(&now.addr));
    let stat = client.exists("/eph").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session);
    client.close().await;
    assert_eq!(client.connected_server(), None);
}
