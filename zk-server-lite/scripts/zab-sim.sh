#!/usr/bin/env bash
# Runs the Zab cluster simulator over many seeds for a bounded time (CI runs 150).
#   zk-server-lite/scripts/zab-sim.sh [seconds=600] [first-seed=1000] [seeds-per-batch=500]
# A failing seed prints its replay command:
#   ZAB_SIM_SEED=<n> cargo test -p zk-server-lite --test zab_sim -- replay --nocapture
set -euo pipefail
cd "$(dirname "$0")/../.."
budget=${1:-600}
seed=${2:-1000}
batch=${3:-500}
end=$(( $(date +%s) + budget ))
cargo test --release -q -p zk-server-lite --test zab_sim --no-run
while [ "$(date +%s)" -lt "$end" ]; do
  echo "seeds $seed..$((seed + batch - 1))"
  ZAB_SIM_START=$seed ZAB_SIM_SEEDS=$batch \
    cargo test --release -q -p zk-server-lite --test zab_sim -- seeds --nocapture 2>&1 \
    | grep -E "seeds from|failed at|replay:" || { echo "FAILED (see above)"; exit 1; }
  seed=$((seed + batch))
done
echo "no failure up to seed $((seed - 1))"
