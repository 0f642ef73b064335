//! Do operator commands stall clients? One client sets 200,000 distinct watches; another
//! reads `/` in a loop (one request in flight) for two seconds, first alone, then while a
//! third task runs `wchp`, `wchc`, `dump` or `cons` back to back. Prints the reader's rate
//! and slowest reply for each.
//!
//! `cargo run --release -p zk-server-lite --example four_letter_stall [WATCHES]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::records::{ConnectRequest, ExistsRequest, GetDataRequest, RequestHeader};
use zk_proto::{Request, frame};
use zk_server_lite::Server;

type Error = Box<dyn std::error::Error>;

/// A bare client: frames out, frames in, replies in order.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    xid: i32,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Result<Raw, Error> {
        let mut raw = Raw {
            stream: TcpStream::connect(addr).await?,
            buf: BytesMut::new(),
            xid: 0,
        };
        raw.send_payload(&ConnectRequest::new_session(30_000, 0, false))
            .await?;
        raw.recv().await?;
        Ok(raw)
    }

    async fn send_payload(
        &mut self,
        payload: &(impl zk_proto::Encode + ?Sized),
    ) -> Result<(), Error> {
        let mut out = BytesMut::new();
        frame::encode_frame(&mut out, 1 << 30, payload)?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    async fn send(&mut self, req: &Request) -> Result<(), Error> {
        self.xid += 1;
        let header = RequestHeader::new(self.xid, req.op_code());
        self.send_payload(&(&header, req)).await
    }

    async fn recv(&mut self) -> Result<(), Error> {
        loop {
            if frame::parse(&mut self.buf, 1 << 30)?.is_some() {
                return Ok(());
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("closed".into());
            }
        }
    }
}

async fn four_letter(addr: SocketAddr, cmd: &str) -> Result<usize, Error> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(cmd.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(out.len())
}

/// Reads `/` for `for_how_long`; (reads per second, slowest reply).
async fn read_rate(addr: SocketAddr, for_how_long: Duration) -> Result<(f64, Duration), Error> {
    let mut raw = Raw::connect(addr).await?;
    let req = Request::GetData(GetDataRequest {
        path: "/".into(),
        watch: false,
    });
    let start = Instant::now();
    let mut n = 0u64;
    let mut slowest = Duration::ZERO;
    while start.elapsed() < for_how_long {
        let t = Instant::now();
        raw.send(&req).await?;
        raw.recv().await?;
        slowest = slowest.max(t.elapsed());
        n += 1;
    }
    Ok((n as f64 / start.elapsed().as_secs_f64(), slowest))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let watches: usize = std::env::args().nth(1).map_or(Ok(200_000), |a| a.parse())?;
    let server = Server::builder().start().await?;
    let addr = server.addr();
    let mut watcher = Raw::connect(addr).await?;
    // exists on a missing node sets a data watch; pipelined in batches.
    for batch in (0..watches).collect::<Vec<_>>().chunks(1000) {
        for i in batch {
            let req = Request::Exists(ExistsRequest {
                path: format!("/bench/node-{i:08}"),
                watch: true,
            });
            watcher.send(&req).await?;
        }
        for _ in batch {
            watcher.recv().await?;
        }
    }
    let window = Duration::from_secs(2);
    let (base, base_max) = read_rate(addr, window).await?;
    println!("{watches} watches; reads alone: {base:.0}/s (slowest {base_max:?})");
    for cmd in ["wchp", "wchc", "dump", "cons"] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let looper = tokio::spawn(async move {
            let mut runs = 0u32;
            let mut bytes = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                bytes = four_letter(addr, cmd).await.unwrap_or(0);
                runs += 1;
            }
            (runs, bytes)
        });
        let (rate, max) = read_rate(addr, window).await?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (runs, bytes) = looper.await?;
        println!(
            "reads while {cmd} loops: {rate:.0}/s ({:.0}% of alone, slowest {max:?}); {cmd} ran {runs} times, {bytes} bytes each",
            100.0 * rate / base
        );
    }
    server.stop().await;
    Ok(())
}
