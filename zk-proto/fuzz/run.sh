#!/usr/bin/env bash
# Runs every zk-proto fuzz target for a bounded time and prints, per target, the executions
# and whether a crash was found. Usage: zk-proto/fuzz/run.sh [seconds per target, default 60]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The stable toolchain builds it with
# RUSTC_BOOTSTRAP=1 (cargo fuzz needs -Zsanitizer); no nightly toolchain is required.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
python3 seed_corpus.py
cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O
status=0
for target in frame request reply records; do
  log="$(mktemp)"
  if cargo fuzz run -O "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | grep -o '[0-9]*' || echo "?")
  echo "fuzz $target: ${secs}s, $runs executions, coverage $cov edges, $result"
  if [ "$result" = CRASH ]; then grep -E 'panicked|ERROR|SUMMARY' "$log" | head -n 10; ls artifacts/"$target" 2>/dev/null; fi
  rm -f "$log"
done
exit $status
