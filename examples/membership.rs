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

#[path = "common/mod.rs"]
mod common;

use tokio::sync::mpsc;
use zk_client::Client;
use zk_recipes::GroupMember;

use common::Failure;

#[tokio::main]
async fn main() {
    common::run_bounded(run()).await;
}

async fn run() -> Result<(), Failure> {
    let target = common::target().await?;
    let connect_string = target.connect_string.clone();
    let path = format!("/zk-examples/group-{}", common::unique());

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
