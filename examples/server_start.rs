//! Start-up time of zk-server-lite: in-process (`Server::builder().start()`) and as a cold
//! binary, each measured to the first served request (a session handshake answered), as
//! JSON lines with the median and worst of the runs.
//!
//! ```sh
//! cargo build --release -p zk-server-lite
//! cargo run --release -p zk-examples --example server_start
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use zk_proto::Decode;
use zk_proto::frame::FrameCodec;
use zk_proto::records::{ConnectRequest, ConnectResponse};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Opens a session on `addr` (retrying while the port is not listening yet).
async fn first_handshake(addr: SocketAddr, deadline: Instant) -> Result<(), Error> {
    loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let mut framed = Framed::new(stream, FrameCodec::new());
                framed
                    .send(ConnectRequest::new_session(10_000, 0, false))
                    .await?;
                let payload = framed.next().await.ok_or("closed during handshake")??;
                ConnectResponse::decode_exact(payload)?;
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_micros(200)).await,
        }
    }
}

fn report(what: &str, mut micros: Vec<u128>) {
    micros.sort_unstable();
    let median = micros[micros.len() / 2];
    let worst = micros[micros.len() - 1];
    println!(
        "{{\"what\":\"{what}\",\"runs\":{},\"median_ms\":{:.2},\"max_ms\":{:.2}}}",
        micros.len(),
        median as f64 / 1000.0,
        worst as f64 / 1000.0
    );
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // In-process, in memory.
    let mut runs = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let server = zk_server_lite::Server::builder().start().await?;
        first_handshake(server.addr(), Instant::now() + Duration::from_secs(10)).await?;
        runs.push(t0.elapsed().as_micros());
        server.stop().await;
    }
    report("in_process_start_to_first_handshake", runs);

    // The binary, cold, with a data directory (durable).
    let bin = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("zk-server-lite"))
        .ok_or("no target directory")?;
    if !bin.exists() {
        return Err(format!(
            "{} missing: cargo build --release -p zk-server-lite",
            bin.display()
        )
        .into());
    }
    let mut runs = Vec::new();
    for _ in 0..10 {
        let dir = tempfile_dir()?;
        let port = free_port()?;
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
                dir.join("data").display()
            ),
        )?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new(&bin)
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        first_handshake(addr, Instant::now() + Duration::from_secs(10)).await?;
        runs.push(t0.elapsed().as_micros());
        child.kill().await?;
        std::fs::remove_dir_all(&dir)?;
    }
    report("binary_cold_start_to_first_handshake", runs);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!(
        "zk-server-start-{}-{}",
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
