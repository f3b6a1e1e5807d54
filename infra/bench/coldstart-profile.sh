#!/usr/bin/env bash
# Where each bootstrap's cold start spends its CPU, by phase (target/bench/coldstart-profile.md).
#
#   bash infra/bench/coldstart-profile.sh            # COLDSTART_PROFILE_STARTS (default 20) starts each
#
# Builds the `profiling` profile (release with symbols, root Cargo.toml) of the four functions and the
# cold-start harness, runs the harness (one invocation per start, no long runs) under
# `perf record -F 20000 -g --call-graph dwarf,16384`, and sorts the samples of each bootstrap's process by phase
# (infra/bench/coldstart_profile.py). Needs Linux perf (Debian: linux-perf) and perf_event_paranoid <= 2.
# Not part of infra/bench/run.sh: perf is not on every machine, and its unwinding takes minutes.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/../.." && pwd)"
cd "$ROOT"

if ! command -v perf >/dev/null; then
    echo "coldstart-profile.sh: needs perf (Debian: apt-get install linux-perf)" >&2
    exit 1
fi
STARTS="${COLDSTART_PROFILE_STARTS:-20}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/profiling"
OUT_DIR="$ROOT/target/bench"
WORK="$OUT_DIR/coldstart-profile"
mkdir -p "$WORK"

echo "==> cargo build --profile profiling -p ingest -p validate -p dispatch -p callback"
cargo build --profile profiling -p ingest -p validate -p dispatch -p callback
echo "==> cargo build --profile profiling -p leadhub-coldstart"
cargo build --profile profiling -p leadhub-coldstart

echo "==> perf record: $STARTS starts of each bootstrap in $BIN_DIR"
perf record -F 20000 -g --call-graph dwarf,16384 -o "$WORK/perf.data" -- \
    "$BIN_DIR/runtime-api" \
        --bin-dir "$BIN_DIR" \
        --config infra/config.example.toml \
        --heloc infra/examples/heloc.json \
        --rounds "$STARTS" --invocations 1 --long-rounds 0 \
        --out-dir "$WORK" >/dev/null
echo "==> perf script (unwinding; a few minutes)"
perf script -i "$WORK/perf.data" -F comm,pid,tid,period,ip,sym,dso > "$WORK/perf.txt" 2>/dev/null
python3 "$BENCH/coldstart_profile.py" --script "$WORK/perf.txt" --starts "$STARTS" \
    --out "$OUT_DIR/coldstart-profile.md"
