//! Memory per watch in the watch tables: adds 200,000 distinct data watches (paths like
//! Apache's probe: `/bench/node-00000001`, ten connections) to a `WatchManager` and prints
//! the resident-memory growth per watch (Linux: `/proc/self/statm`).
//!
//! `cargo run --release -p zk-server-lite --example watch_memory`

use zk_server_lite::watches::WatchManager;

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    const N: u64 = 200_000;
    let paths: Vec<String> = (0..N).map(|i| format!("/bench/node-{i:08}")).collect();
    let Some(before) = rss_bytes() else {
        eprintln!("needs /proc/self/statm (Linux)");
        return;
    };
    let mut watches = WatchManager::new();
    for (i, path) in paths.iter().enumerate() {
        watches.add_data_watch(path, 1 + i as u64 % 10);
    }
    let after = rss_bytes().unwrap_or(before);
    println!(
        "{} watches: +{:.1} MB resident, {:.0} bytes per watch (path {} bytes)",
        watches.watch_count(),
        (after - before) as f64 / 1e6,
        (after - before) as f64 / N as f64,
        paths[0].len()
    );
}
