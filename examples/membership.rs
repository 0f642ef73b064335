//! Group membership: workers join a group (`GroupMember`, one ephemeral node each with a
//! payload), one leaves cleanly, one crashes (its client is closed, so its session and its
//! node go), and a watcher on its own client prints every member set it sees.
//!
//! ```sh
//! cargo run -p zk-examples --example membership                     # embedded zk-server-lite
//! cargo run -p zk-examples --example membership -- 127.0.0.1:2181   # a real ensemble
//! ```
//!
//! Exits non-zero if the watcher does not see the expected member sets (the whole run is
//! bounded to 10 s).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use zk_client::Client;
use zk_recipes::GroupMember;

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() {
    match tokio::time::timeout(Duration::from_secs(10), run()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("FAILED: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("FAILED: timed out after 10 s");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<(), Failure> {
    let _server;
    let connect_string = match std::env::args().nth(1) {
        Some(hosts) => hosts,
        None => {
            let server = zk_server_lite::Server::builder().start().await?;
            println!("started an embedded zk-server-lite on {}", server.addr());
            let hosts = server.connect_string();
            _server = server;
            hosts
        }
    };
    let path = format!("/zk-examples/group-{}", unique());

    // The watcher: a children watch on the group, re-armed after each change.
    let watcher = Client::connect(&connect_string).await?;
    zk_recipes::paths::ensure_path(&watcher, &path).await?;
    let (sets_tx, mut sets) = mpsc::unbounded_channel::<Vec<String>>();
    {
        let (watcher, path) = (watcher.clone(), path.clone());
        tokio::spawn(async move {
            let mut last = None;
            while let Ok((mut children, _, fired)) = watcher.get_children_watch(&path).await {
                children.sort();
                if last.as_ref() != Some(&children) {
                    println!("watcher: members = {children:?}");
                    last = Some(children.clone());
                    if sets_tx.send(children).is_err() {
                        return;
                    }
                }
                if fired.await.is_session_event() {
                    return;
                }
            }
        });
    }
    expect(&mut sets, &[]).await?;

    let mut clients = Vec::new();
    let mut members = Vec::new();
    for (id, address) in [
        ("a", "10.0.0.1:80"),
        ("b", "10.0.0.2:80"),
        ("c", "10.0.0.3:80"),
    ] {
        let client = Client::connect(&connect_string).await?;
        members.push(GroupMember::join(&client, &path, id, address.as_bytes()).await?);
        println!("worker {id} joined");
        clients.push(client);
    }
    expect(&mut sets, &["a", "b", "c"]).await?;
    let payloads = members[0].members().await?;
    println!(
        "payloads: {}",
        payloads
            .iter()
            .map(|(id, p)| format!("{id}={}", String::from_utf8_lossy(p)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let c = members.pop().ok_or("no member c")?;
    let b = members.pop().ok_or("no member b")?;
    b.leave().await?;
    println!("worker b left");
    expect(&mut sets, &["a", "c"]).await?;

    let c_lost = c.lost();
    clients[2].close().await;
    println!("worker c crashed (its session is gone)");
    expect(&mut sets, &["a"]).await?;
    c_lost.await;
    println!("worker c was told its membership ended");

    let a = members.pop().ok_or("no member a")?;
    a.leave().await?;
    println!("worker a left");
    expect(&mut sets, &[]).await?;

    drop(c);
    for client in clients.iter().chain([&watcher]) {
        client.close().await;
    }
    println!("OK: the watcher saw every join, the clean leave and the crash");
    Ok(())
}

/// Waits until the watcher reports exactly `want`.
async fn expect(
    sets: &mut mpsc::UnboundedReceiver<Vec<String>>,
    want: &[&str],
) -> Result<(), Failure> {
    while let Some(set) = sets.recv().await {
        if set.iter().map(String::as_str).eq(want.iter().copied()) {
            return Ok(());
        }
    }
    Err(format!("the watcher stopped before seeing {want:?}").into())
}

/// A suffix so that runs against a shared ensemble do not meet.
fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}
