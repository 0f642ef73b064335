//! Service discovery on Curator's `curator-x-discovery` layout: three instances of a service
//! register (one client each, as three processes would), a caller picks round-robin through a
//! watch-driven provider, one instance dies (its client is closed, so its session and its
//! ephemeral node go), and the caller stops picking it without asking anyone.
//!
//! ```sh
//! cargo run -p zk-examples --example service_discovery                     # embedded zk-server-lite
//! cargo run -p zk-examples --example service_discovery -- 127.0.0.1:2181   # a real ensemble
//! ```
//!
//! Exits non-zero if the picks are not what round-robin over the live instances gives (the
//! whole run is bounded to 10 s).

#[path = "common/mod.rs"]
mod common;

use zk_client::Client;
use zk_recipes::discovery::{ProviderStrategy, ServiceDiscovery, ServiceInstance, UriSpec};

use common::Failure;

#[tokio::main]
async fn main() {
    common::run_bounded(run()).await;
}

async fn run() -> Result<(), Failure> {
    let target = common::target().await?;
    let connect_string = target.connect_string.clone();
    let base = format!("/zk-examples/services-{}", common::unique());
    let uri = UriSpec::parse("{scheme}://{address}:{port}")?;

    // Three instances, each on its own session.
    let mut servers = Vec::new();
    for (id, port) in [("orders-1", 8081), ("orders-2", 8082), ("orders-3", 8083)] {
        let client = Client::connect(&connect_string).await?;
        let discovery = ServiceDiscovery::new(&client, &base)?;
        let instance = ServiceInstance::new("orders")
            .id(id)
            .address("127.0.0.1")
            .port(port)
            .uri_spec(uri.clone());
        let path = discovery.register(&instance).await?;
        println!("{id} registered at {path}: {}", instance.to_json());
        servers.push(client);
    }

    // The caller: a round-robin provider over a cache of the instances.
    let caller = Client::connect(&connect_string).await?;
    let discovery = ServiceDiscovery::new(&caller, &base)?;
    let provider = discovery
        .provider("orders")
        .strategy(ProviderStrategy::RoundRobin)
        .start()
        .await?;
    let picks = pick(&provider, 6)?;
    expect(
        &picks,
        &[
            "orders-1", "orders-2", "orders-3", "orders-1", "orders-2", "orders-3",
        ],
    )?;

    // orders-2 dies: its session ends and its node goes; the cache follows the watch.
    let dead = servers.remove(1);
    dead.close().await;
    println!("orders-2 crashed");
    let mut changes = provider.cache().changes();
    while provider.cache().instances().len() != 2 {
        changes.next().await?;
    }
    let picks = pick(&provider, 4)?;
    expect(&picks, &["orders-1", "orders-3", "orders-1", "orders-3"])?;
    println!("the caller no longer picks orders-2");

    for client in servers {
        client.close().await;
    }
    caller.close().await;
    Ok(())
}

/// `count` picks, printed; the ids.
fn pick(
    provider: &zk_recipes::discovery::ServiceProvider,
    count: usize,
) -> Result<Vec<String>, Failure> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let instance = provider.instance()?.ok_or("no instance to call")?;
        println!(
            "caller: calling {} at {}",
            instance.id,
            instance.uri().unwrap_or_default()
        );
        ids.push(instance.id);
    }
    Ok(ids)
}

/// Round-robin may start anywhere in the cycle: compare as rotations.
fn expect(picks: &[String], want: &[&str]) -> Result<(), Failure> {
    let unique: std::collections::BTreeSet<&str> = want.iter().copied().collect();
    let period = unique.len();
    let ok = picks.len() == want.len()
        && (0..period).any(|shift| {
            picks
                .iter()
                .enumerate()
                .all(|(i, id)| id == want[(i + shift) % period])
        });
    if ok {
        Ok(())
    } else {
        Err(format!("picked {picks:?}, expected round-robin over {unique:?}").into())
    }
}
