//! In-process fake servers that break the protocol: the client must report an error and
//! never panic or hang.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use zk_client::{Client, Error, SessionState};

use crate::{WAIT, within};

/// A valid `ConnectResponse` frame: protocol 0, timeout 6000 ms, session 0x42, 16-byte
/// password, read-only false.
fn connect_response() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&6000i32.to_be_bytes());
    body.extend_from_slice(&0x42i64.to_be_bytes());
    body.extend_from_slice(&16i32.to_be_bytes());
    body.extend_from_slice(&[9u8; 16]);
    body.push(0);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Reads one length-prefixed frame (to consume the client's ConnectRequest).
async fn read_frame(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let len = stream.read_i32().await.unwrap();
    let mut buf = vec![0; usize::try_from(len).unwrap()];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_handshake_is_an_error() {
    zk_testkit::init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            // A negative length, then junk.
            let _ = stream.write_all(&[0xff, 0xff, 0xff, 0x00, 1, 2, 3]).await;
        }
    });
    let result = within(
        "connect to a garbage server",
        Client::builder(addr.to_string())
            .fail_fast(true)
            .connect_timeout(WAIT)
            .connect(),
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");

    // Without fail-fast, the connect timeout bounds the wait.
    let result = within(
        "connect timeout",
        Client::builder(addr.to_string())
            .connect_timeout(Duration::from_secs(2))
            .connect(),
    )
    .await;
    assert_eq!(result.unwrap_err(), Error::Timeout);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_handshake_drops_the_connection() {
    zk_testkit::init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let _ = read_frame(&mut stream).await;
            stream.write_all(&connect_response()).await.unwrap();
            if first {
                first = false;
                // Wait for a request, answer with a reply for an xid nobody asked for.
                let _ = read_frame(&mut stream).await;
                let mut reply = Vec::new();
                reply.extend_from_slice(&16i32.to_be_bytes());
                reply.extend_from_slice(&999i32.to_be_bytes());
                reply.extend_from_slice(&1i64.to_be_bytes());
                reply.extend_from_slice(&0i32.to_be_bytes());
                stream.write_all(&reply).await.unwrap();
            } else {
                // Then a frame whose body is truncated garbage.
                let _ = read_frame(&mut stream).await;
                stream.write_all(&[0, 0, 0, 3, 1, 2, 3]).await.unwrap();
            }
            // Keep the socket open until the client hangs up.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    });
    let client = within(
        "connect to the fake server",
        Client::builder(addr.to_string())
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(WAIT)
            .connect(),
    )
    .await
    .unwrap();
    assert_eq!(client.session_id(), 0x42);
    let mut changes = client.state_changes();
    let err = within("reply to the first request", client.exists("/a"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::ConnectionLoss {
            outcome_unknown: false
        }
    );
    let err = within("reply to the second request", client.exists("/a"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    crate::wait_state(&mut changes, "suspension", |s| s == SessionState::Suspended).await;
    client.close().await;
    assert!(client.state().is_terminal());
    server.abort();
}
