#!/usr/bin/env bash
# Issue 12, handler core: ingest's work per lead without I/O, per vertical (shared/examples/handler_core.rs:
# parse + validate + normalise, the stored DynamoDB item and the validate queue's message, or the 400 with
# every error), then HELOC beside Node.js (ajv, zod) and Python (pydantic) through peers.sh (agreement on every
# fixture and fuzzed variants first: exit 1 if any peer disagrees).
#
#   bash infra/bench/handler.sh                  # both; a few minutes
#   HANDLER_MS=500 HANDLER_ROUNDS=5 bash infra/bench/handler.sh   # handler-core loop length and rounds
#   PEERS_MS=1000 PEERS_ROUNDS=7 bash infra/bench/handler.sh      # the peers' (passed to peers.sh)
#   PEERS=0 bash infra/bench/handler.sh          # the handler core alone
#
# Writes target/bench/handler.json + handler.md ("## Handler core") and target/bench/peers.json + peers.md
# ("## HELOC beside Node.js and Python"). Needs cargo and python3 (and for the peers node >= 20 with npm).

set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

echo "==> leadhub: release build of the handler_core and heloc_verdicts examples"
(cd "$ROOT" && cargo build -q -p leadhub --release --example handler_core --example heloc_verdicts)

echo "==> handler core, every vertical (${HANDLER_ROUNDS:-5} rounds of ${HANDLER_MS:-500} ms per loop)"
"$TARGET/release/examples/handler_core" --list > "$OUT/handler-fixtures.jsonl"
load_before="$(cut -d' ' -f1 /proc/loadavg)"
"$TARGET/release/examples/handler_core" "${HANDLER_MS:-500}" "${HANDLER_ROUNDS:-5}" > "$OUT/handler-runs.jsonl"
load_after="$(cut -d' ' -f1 /proc/loadavg)"
python3 "$BENCH/handler_report.py" "$OUT/handler-runs.jsonl" "$OUT/handler-fixtures.jsonl" \
    "$load_before" "$load_after" "$(nproc)" "$OUT/handler.json" "$OUT/handler.md"
cat "$OUT/handler.md"

if [[ "${PEERS:-1}" != "0" ]]; then
    PEERS_MS="${PEERS_MS:-1000}" PEERS_ROUNDS="${PEERS_ROUNDS:-7}" bash "$BENCH/peers.sh"
    cat "$OUT/peers.md"
fi
