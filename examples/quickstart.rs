//! Quick start: connect, create, read with a watch, see the watch fire, use a transaction,
//! and follow a subtree with a persistent recursive watch.
//!
//! ```sh
//! cargo run -p zk-examples --example quickstart                         # embedded zk-server-lite
//! cargo run -p zk-examples --example quickstart -- 127.0.0.1:2181  # a real ensemble
//! ```

use zk_client::{AddWatchMode, Client, CreateMode, CreateOptions, Error};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A connect string from the command line, or an in-process zk-server-lite.
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

    let client = Client::connect(&connect_string).await?;
    println!(
        "connected: session {:#x}, state {:?}",
        client.session_id(),
        client.state()
    );

    // Create a node; NodeExists is an ordinary, typed error.
    let persistent = CreateOptions::new(CreateMode::Persistent);
    match client.create("/app", b"", &persistent).await {
        Ok((path, _)) => println!("created {path}"),
        Err(Error::NodeExists) => println!("/app exists already"),
        Err(e) => return Err(e.into()),
    }

    // Follow everything below /app with a persistent recursive watch (ZooKeeper 3.6+).
    let mut changes = client
        .add_watch("/app", AddWatchMode::PersistentRecursive)
        .await?;

    // Read with a one-shot watch, change the data, and see the watch fire.
    client.create("/app/config", b"v1", &persistent).await?;
    let (data, stat, watcher) = client.get_data_watch("/app/config").await?;
    println!(
        "/app/config = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );
    client
        .set_data("/app/config", b"v2", Some(stat.version))
        .await?;
    let event = watcher.await;
    println!("one-shot watch: {:?} on {}", event.event_type, event.path);

    // An ephemeral sequential member node: gone when the session ends.
    let ephemeral = CreateOptions::new(CreateMode::EphemeralSequential);
    let (member, _) = client.create("/app/member-", b"me", &ephemeral).await?;
    println!("joined as {member}");

    // A transaction: all or nothing.
    let results = client
        .transaction()
        .check("/app/config", Some(1))
        .set_data("/app/config", b"v3", Some(1))
        .create("/app/audit", b"config v3", &persistent)
        .commit()
        .await?;
    println!("transaction committed {} ops", results.len());

    for _ in 0..5 {
        if let Some(event) = changes.next().await {
            println!("recursive watch: {:?} on {}", event.event_type, event.path);
        }
    }

    // Clean up and end the session (the ephemeral member goes with it).
    for path in ["/app/audit", "/app/config"] {
        client.delete(path, None).await?;
    }
    client.close().await;
    println!("closed; {member} is gone with the session");
    Ok(())
}
