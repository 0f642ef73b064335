//! A ZooKeeper session spoken with nothing but `zk-proto` and a TCP socket: handshake,
//! create, a watched read, the notification a write fires, a transaction with a failing op,
//! and close. It shows what the client crate does under the hood.
//!
//! ```sh
//! cargo run -p zk-examples --example raw_session                 # boots a private Apache ZooKeeper
//! cargo run -p zk-examples --example raw_session -- 127.0.0.1:2181 # or uses yours
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use zk_proto::frame::FrameCodec;
use zk_proto::records::*;
use zk_proto::{CreateMode, Decode, ErrorCode, Request, Response, decode_reply_frame};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One connection: sends requests with increasing xids and reads their replies, printing
/// watch notifications that arrive in between.
struct RawSession {
    framed: Framed<TcpStream, FrameCodec>,
    xid: i32,
}

impl RawSession {
    async fn connect(addr: SocketAddr) -> Result<(Self, ConnectResponse), Error> {
        let stream = TcpStream::connect(addr).await?;
        let mut framed = Framed::new(stream, FrameCodec::new());
        framed
            .send(ConnectRequest::new_session(10_000, 0, false))
            .await?;
        let payload = framed
            .next()
            .await
            .ok_or("server closed during handshake")??;
        let response = ConnectResponse::decode_exact(payload)?;
        Ok((Self { framed, xid: 0 }, response))
    }

    /// Sends `request` and returns its reply, printing any notification that comes first.
    async fn call(&mut self, request: Request) -> Result<(ErrorCode, Response), Error> {
        self.xid += 1;
        let op = request.op_code();
        let header = RequestHeader::new(self.xid, op);
        self.framed.send((&header, &request)).await?;
        loop {
            let payload = tokio::time::timeout(Duration::from_secs(10), self.framed.next())
                .await?
                .ok_or("server closed the connection")??;
            let (reply, body) = decode_reply_frame(payload, |_| Some(op))?;
            if let Response::Notification(event) = &body {
                println!("  <- notification: {:?} on {}", event.event(), event.path);
                continue;
            }
            if reply.xid != self.xid {
                return Err(format!("reply xid {} for request {}", reply.xid, self.xid).into());
            }
            return Ok((reply.error_code()?, body));
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Use the address given, or boot a private Apache ZooKeeper 3.8 (Debian's jars).
    let _server;
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(addr) => addr.parse()?,
        None => {
            println!("booting Apache ZooKeeper from /usr/share/java/zookeeper.jar ...");
            let server = zk_testkit::ApacheServer::start().await?;
            let addr = server.addr();
            _server = server;
            addr
        }
    };

    let (mut zk, session) = RawSession::connect(addr).await?;
    println!(
        "connected to {addr}: session 0x{:x}, negotiated timeout {} ms",
        session.session_id, session.time_out
    );

    let path = format!("/raw-demo-{:x}", session.session_id);
    let create = Request::Create2(CreateRequest {
        path: path.clone(),
        data: Some(Bytes::from_static(b"hello")),
        acl: OPEN_ACL_UNSAFE.clone(),
        flags: CreateMode::Ephemeral.into(),
    });
    if let (ErrorCode::Ok, Response::Create2(created)) = zk.call(create).await? {
        println!(
            "create2 {} -> czxid 0x{:x}",
            created.path, created.stat.czxid
        );
    }

    let get = Request::GetData(GetDataRequest {
        path: path.clone(),
        watch: true,
    });
    if let (ErrorCode::Ok, Response::GetData(got)) = zk.call(get).await? {
        let data = got.data.unwrap_or_default();
        println!("getData (watch) -> {:?}", String::from_utf8_lossy(&data));
    }

    // The write fires the data watch: the notification arrives before the reply.
    let set = Request::SetData(SetDataRequest {
        path: path.clone(),
        data: Some(Bytes::from_static(b"world")),
        version: 0,
    });
    let (err, _) = zk.call(set).await?;
    println!("setData version 0 -> {err}");

    // A transaction whose second op fails: nothing is applied, each op reports its result.
    let multi = Request::Multi(MultiRequest {
        ops: vec![
            MultiOp::SetData(SetDataRequest {
                path: path.clone(),
                data: None,
                version: 1,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: path.clone(),
                version: 42,
            }),
        ],
    });
    if let (_, Response::Multi(results)) = zk.call(multi).await? {
        if let Some((index, code)) = results.first_error() {
            let code = ErrorCode::try_from(code).map_or(code.to_string(), |c| c.to_string());
            println!("multi [setData, check version 42] -> op {index} failed: {code}");
        }
    }

    let (err, _) = zk.call(Request::CloseSession).await?;
    println!("closeSession -> {err}; the ephemeral {path} is gone with the session");
    Ok(())
}
