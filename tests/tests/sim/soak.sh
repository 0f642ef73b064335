#!/usr/bin/env bash
# Runs simulation seeds for a bounded time: soak.sh [seconds] [first seed]. Debug build (the
# one CI already has; a seed takes about 60 ms there).
# Prints every failing seed with its replay command.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export SIM_BUDGET_SECS="${1:-600}"
export SIM_FROM="${2:-$((RANDOM * 1000))}"
exec cargo test -p zk-testkit --test sim soak -- --ignored --nocapture
