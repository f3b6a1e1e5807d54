#!/usr/bin/env bash
# Every benchmark of issue 12, written to BENCHMARKS.md at the repository's root:
#
#   bash infra/bench/run.sh            # install what is missing, build (release), run everything, write BENCHMARKS.md
#   BENCH_QUICK=1 bash infra/bench/run.sh   # shorter runs (a smoke test of the command, figures not worth keeping)
#
# Sections, each its own script that can also run alone (each writes target/bench/NAME.json and NAME.md):
#   handler core per vertical, HELOC beside Node.js and Python   infra/bench/handler.sh (peers must agree: exit 1)
#   pipeline throughput, memory, cost per million leads          infra/bench/pipeline.py (a lost lead: exit 1)
#   cold start and size                                          infra/bench/coldstart.sh
#
# Needs cargo, node >= 20 with npm, python3 >= 3.10; installs the rest (npm packages, a venv in infra/bench/.venv
# with pydantic and moto), each only when its pinned list changed. The release build is the slow part the first
# time (about 25 minutes on 2 cores from nothing; cargo reuses target/release afterwards).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/../.." && pwd)"
OUT="$ROOT/target/bench"
VENV="$BENCH/.venv"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
cd "$ROOT"
STARTED=$(date +%s)
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
COMMAND="${CARGO_TARGET_DIR:+CARGO_TARGET_DIR=$CARGO_TARGET_DIR }${BENCH_QUICK:+BENCH_QUICK=$BENCH_QUICK }bash infra/bench/run.sh"

step() { echo; echo "==> $*"; }
elapsed() { echo $(( $(date +%s) - STARTED )); }

step "venv $VENV: moto for the cost run (pydantic is the handler script's)"
if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
STAMP="$VENV/.leadhub-pipeline-requirements.sha256"
want="$( (cat "$BENCH/requirements-pipeline.txt"; "$VENV/bin/python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "requirements-pipeline.txt unchanged (stamp $STAMP); skipping pip"
else
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -q \
        -r "$BENCH/requirements-pipeline.txt"
    echo "$want" > "$STAMP"
fi

# One cargo invocation per group, as the scripts run them (the functions must resolve their features as their
# own deployed builds do); the scripts' own builds then find everything up to date.
step "release build"
build_started=$(date +%s)
cargo build --release -p leadhub-local
cargo build --release -p leadhub-loadgen
cargo build --release -p ingest -p validate -p dispatch -p callback
cargo build --release -p leadhub-coldstart
cargo build --release -p leadhub --example handler_core --example heloc_verdicts
BUILD_S=$(( $(date +%s) - build_started ))
echo "release build: ${BUILD_S} s"

if [[ -n "${BENCH_QUICK:-}" ]]; then
    PIPELINE_ARGS=(--seconds 5 --memory-leads 20000 --cost-leads 200)
    export PEERS_MS=300 PEERS_ROUNDS=2 PEERS_FUZZ=50 HANDLER_MS=200 HANDLER_ROUNDS=2 COLDSTART_ROUNDS=2 COLDSTART_INVOCATIONS=1000 COLDSTART_LONG_ROUNDS=1
else
    PIPELINE_ARGS=()
fi

step "handler core and the HELOC peers"
bash "$BENCH/handler.sh"

step "cold start and size"
bash "$BENCH/coldstart.sh"

step "pipeline: throughput, memory, cost"
"$VENV/bin/python" "$BENCH/pipeline.py" --moto-python "$VENV/bin/python" "${PIPELINE_ARGS[@]}"

step "BENCHMARKS.md"
"$VENV/bin/python" "$BENCH/report.py" \
    --command "$COMMAND" \
    --load-before "$LOAD_BEFORE" \
    --load-after "$(cut -d' ' -f1-3 /proc/loadavg)" \
    --build-seconds "$BUILD_S" \
    --seconds "$(elapsed)" \
    --out "$ROOT/BENCHMARKS.md"
echo "wrote BENCHMARKS.md in $(elapsed) s"
