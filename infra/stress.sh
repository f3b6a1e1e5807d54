#!/usr/bin/env bash
# Flakiness hunt: run every test (moto-backed ones included) RUNS times while busy loops load each core, and
# list what failed in each run. Not part of CI; run after `bash infra/test.sh` has set up .venv.
#
#   bash infra/stress.sh [RUNS]        # default 5; logs in target/infra-stress/run-N.log
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-5}"
VENV="$ROOT/.venv"
WORK="$ROOT/target/infra-stress"
mkdir -p "$WORK"
[[ -x "$VENV/bin/python" ]] || { echo "no $VENV: run bash infra/test.sh once first" >&2; exit 2; }

PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
"$VENV/bin/python" "$ROOT/infra/moto_server.py" -H 127.0.0.1 -p "$PORT" >"$WORK/moto_server.log" 2>&1 &
MOTO_PID=$!
LOAD_PIDS=()
cleanup() {
    kill "${LOAD_PIDS[@]}" 2>/dev/null
    kill "$MOTO_PID" 2>/dev/null
}
trap cleanup EXIT
sleep 3

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" LEADHUB_TEST_AWS_ENDPOINT="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
cd "$ROOT" || exit 2
cargo test --workspace --lib --bins --tests --examples --no-run -q || exit 2

failed_runs=0
for run in $(seq 1 "$RUNS"); do
    LOAD_PIDS=()
    for _ in $(seq 1 "$(nproc)"); do
        (while :; do :; done) &
        LOAD_PIDS+=($!)
    done
    cargo test --workspace --lib --bins --tests --examples -q -- --include-ignored >"$WORK/run-$run.log" 2>&1
    rc=$?
    kill "${LOAD_PIDS[@]}" 2>/dev/null
    wait "${LOAD_PIDS[@]}" 2>/dev/null
    failures="$(grep -h '^    [a-z_:0-9]*$' "$WORK/run-$run.log" | tr -d ' ' | tr '\n' ' ')"
    echo "run $run: exit $rc ${failures:+failed: $failures}"
    [[ $rc -eq 0 ]] || failed_runs=$((failed_runs + 1))
done
echo "$failed_runs of $RUNS runs failed (logs: $WORK)"
[[ $failed_runs -eq 0 ]]
