#!/usr/bin/env bash
# One run, one client, two servers: bench_client against Apache ZooKeeper 3.8 (booted by the
# bench, full JIT, fsync on) and against the zk-server-lite binary (durable data dir, fsync
# on), then the start-up times of zk-server-lite. Prints JSON lines.
# Usage: bash examples/bench_servers.sh [--only zk-rs]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p zk-server-lite -p zk-examples --example bench_client --example server_start
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
CFG
target/release/zk-server-lite "$dir/zoo.cfg" >"$dir/lite.log" 2>&1 &
lite=$!
trap 'kill $lite 2>/dev/null; rm -rf "$dir"' EXIT
target/release/examples/bench_client "$@"
target/release/examples/bench_client "127.0.0.1:$port" --label zk-server-lite "$@"
target/release/examples/server_start
