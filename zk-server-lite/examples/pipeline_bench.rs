//! A rough pipelined throughput probe with raw zk-proto frames (not the client benchmark of
//! the client issue): `cargo run --release -p zk-server-lite --example pipeline_bench --
//! [host:port] [connections] [requests per connection]`. Without an address it starts an
//! in-memory server in-process. Prints getData and setData rates.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::records::*;
use zk_proto::{Decode, Request, frame};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WINDOW: usize = 200;

async fn read_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Bytes, BoxError> {
    loop {
        if let Some(p) = frame::parse(buf, usize::MAX >> 1)? {
            return Ok(p);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err("connection closed".into());
        }
    }
}

async fn session(addr: SocketAddr) -> Result<(TcpStream, BytesMut), BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut out = BytesMut::new();
    frame::encode_frame(
        &mut out,
        usize::MAX >> 1,
        &ConnectRequest::new_session(30_000, 0, false),
    )?;
    stream.write_all(&out).await?;
    let mut buf = BytesMut::new();
    read_frame(&mut stream, &mut buf).await?;
    Ok((stream, buf))
}

/// Sends `n` copies of `req` with up to WINDOW in flight; returns when all are answered.
async fn pipeline(addr: SocketAddr, req: Request, n: usize) -> Result<(), BoxError> {
    let (mut stream, mut buf) = session(addr).await?;
    let mut xid = 0;
    let mut in_flight = VecDeque::new();
    let mut sent = 0;
    let mut done = 0;
    let mut out = BytesMut::new();
    while done < n {
        out.clear();
        while sent < n && in_flight.len() < WINDOW {
            xid += 1;
            frame::encode_frame(
                &mut out,
                usize::MAX >> 1,
                &(&RequestHeader::new(xid, req.op_code()), &req),
            )?;
            in_flight.push_back(xid);
            sent += 1;
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        let p = read_frame(&mut stream, &mut buf).await?;
        let h = ReplyHeader::decode(&mut &p[..])?;
        if h.xid == -1 {
            continue;
        }
        if h.err != 0 {
            return Err(format!("error {}", h.err).into());
        }
        in_flight.pop_front();
        done += 1;
    }
    Ok(())
}

async fn rate(addr: SocketAddr, conns: usize, per: usize, req: Request) -> Result<f64, BoxError> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(pipeline(addr, req.clone(), per)));
    }
    for t in tasks {
        t.await??;
    }
    Ok((conns * per) as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (addr, _server) = match args.next() {
        Some(a) => (a.parse::<SocketAddr>()?, None),
        None => {
            let s = zk_server_lite::Server::builder().start().await?;
            (s.addr(), Some(s))
        }
    };
    let conns: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let per: usize = args.next().map_or(Ok(20_000), |s| s.parse())?;
    let path = format!("/bench-{}", std::process::id());
    let (mut stream, _) = session(addr).await?;
    let mut out = BytesMut::new();
    let create = Request::Create(CreateRequest {
        path: path.clone(),
        data: Some(Bytes::from(vec![b'x'; 100])),
        acl: OPEN_ACL_UNSAFE.clone(),
        flags: 0,
    });
    frame::encode_frame(
        &mut out,
        usize::MAX >> 1,
        &(&RequestHeader::new(1, create.op_code()), &create),
    )?;
    stream.write_all(&out).await?;
    let mut buf = BytesMut::new();
    read_frame(&mut stream, &mut buf).await?;

    let get = Request::GetData(GetDataRequest {
        path: path.clone(),
        watch: false,
    });
    let set = Request::SetData(SetDataRequest {
        path,
        data: Some(Bytes::from(vec![b'y'; 100])),
        version: -1,
    });
    // Warm-up, then measure.
    rate(addr, conns, per / 10 + 1, get.clone()).await?;
    let reads = rate(addr, conns, per, get).await?;
    let writes = rate(addr, conns, per / 4 + 1, set).await?;
    println!(
        "{addr}: {conns} connections, window {WINDOW}: getData {reads:.0}/s, setData {writes:.0}/s"
    );
    Ok(())
}
