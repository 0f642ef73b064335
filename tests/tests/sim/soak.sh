#!/usr/bin/env bash
# Runs simulation seeds for a bounded time (release build): soak.sh [seconds] [first seed]
# Prints every failing seed with its replay command.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export SIM_BUDGET_SECS="${1:-600}"
export SIM_FROM="${2:-$((RANDOM * 1000))}"
exec cargo test --release -p zk-testkit --test sim soak -- --ignored --nocapture
