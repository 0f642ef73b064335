#!/usr/bin/env bash
# Long runs of the storage-fault loop (tests/crash_faults.rs): crash a durable server on a
# simulated disk at random points, in batches of seeds, until a seed fails or the range ends.
#
#   zk-server-lite/scripts/fault-loop.sh [FIRST_SEED] [LAST_SEED] [BATCH]
#
# Defaults: seeds 0..100000 in batches of 500, release build. A failing seed prints its
# replay command (ZK_FAULT_SEEDS=<seed> cargo nextest run -p zk-server-lite --test crash_faults).
set -euo pipefail
first=${1:-0}
last=${2:-100000}
batch=${3:-500}
cd "$(dirname "$0")/../.."
seed=$first
while [ "$seed" -lt "$last" ]; do
    end=$(( seed + batch < last ? seed + batch : last ))
    echo "seeds $seed..$end"
    ZK_FAULT_SEEDS="$seed..$end" cargo test --release -q -p zk-server-lite --test crash_faults -- --nocapture
    seed=$end
done
echo "all seeds $first..$last passed"
