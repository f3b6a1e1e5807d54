#!/usr/bin/env bash
# Cold start and size of the four functions (issue 12): build the release bootstraps and the bench
# (infra/bench/coldstart: the Runtime API emulator + driver `runtime-api`, and `hello-lambda`), run the
# cold-start measurement, then the size measurement.
#
#   bash infra/bench/coldstart.sh                 # both (about 2-3 minutes once built)
#   bash infra/bench/coldstart.sh --cold-only     # only the cold start
#   bash infra/bench/coldstart.sh --size-only     # only the size
#   COLDSTART_ROUNDS=10 COLDSTART_INVOCATIONS=10000 COLDSTART_LONG_ROUNDS=3 bash infra/bench/coldstart.sh
#   LEADHUB_BENCH_PROFILE=myprofile bash infra/bench/coldstart.sh   # another cargo profile (default release)
#
# Needs: cargo, python3 (the zips). Linux (/proc/PID/status for the peak RSS).
# Results: target/bench/coldstart.json + coldstart.md ("## Cold start") and target/bench/size.json + size.md
# ("## Size").

set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/../.." && pwd)"
cd "$ROOT"

COLD=1
SIZE=1
case "${1:-}" in
    --cold-only) SIZE=0 ;;
    --size-only) COLD=0 ;;
    "") ;;
    *) echo "usage: bash infra/bench/coldstart.sh [--cold-only | --size-only]" >&2; exit 2 ;;
esac

PROFILE="${LEADHUB_BENCH_PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/$PROFILE"
OUT_DIR="$ROOT/target/bench"
mkdir -p "$OUT_DIR"

# Two builds: the functions on their own resolve their features as `cargo build --release -p <function>` does;
# built with the bench crate, they would get its features too (axum's hyper server).
echo "==> cargo build --profile $PROFILE -p ingest -p validate -p dispatch -p callback"
cargo build --profile "$PROFILE" -p ingest -p validate -p dispatch -p callback
echo "==> cargo build --profile $PROFILE -p leadhub-coldstart"
cargo build --profile "$PROFILE" -p leadhub-coldstart

if [[ $COLD -eq 1 ]]; then
    echo "==> cold start: runtime-api (the Runtime API emulator and driver) in $BIN_DIR"
    "$BIN_DIR/runtime-api" \
        --bin-dir "$BIN_DIR" \
        --config infra/config.example.toml \
        --heloc infra/examples/heloc.json \
        --rounds "${COLDSTART_ROUNDS:-10}" \
        --invocations "${COLDSTART_INVOCATIONS:-10000}" \
        --long-rounds "${COLDSTART_LONG_ROUNDS:-3}" \
        --out-dir "$OUT_DIR" \
        --command "bash infra/bench/coldstart.sh --cold-only"
    cat "$OUT_DIR/coldstart.md"
fi

if [[ $SIZE -eq 1 ]]; then
    echo "==> size: the bootstraps in $BIN_DIR and their zips"
    python3 "$BENCH/size.py" --bin-dir "$BIN_DIR" --out-dir "$OUT_DIR" \
        --command "bash infra/bench/coldstart.sh --size-only"
    cat "$OUT_DIR/size.md"
fi
