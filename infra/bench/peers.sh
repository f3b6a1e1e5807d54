#!/usr/bin/env bash
# leadhub's HELOC handler core beside Node.js (ajv, zod) and Python (pydantic): install the peers, build
# leadhub's example, self-test the check, check that every peer agrees with leadhub on every fixture (exit 1
# if not), then time all four (see infra/bench/peers.py's header for how).
#
#   bash infra/bench/peers.sh                    # install + self-test + agreement + timing
#   PEERS_TIME=0 bash infra/bench/peers.sh       # ... without the timing
#   PEERS_MS=1500 PEERS_ROUNDS=5 bash infra/bench/peers.sh   # loop length and interleaved rounds (defaults)
#   PEERS_FUZZ=300 PEERS_SEED=1 bash infra/bench/peers.sh    # fuzzed variants checked besides the fixtures
#
# Needs: cargo, node >= 20 with npm, python3 >= 3.10. npm ci runs only when package-lock.json (or node's version)
# changed, pip only when requirements.txt (or python's version) changed: stamps in node_modules and .venv.
# Results: target/bench/peers.json and the Markdown table on stdout.

set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/../.." && pwd)"
NODE_DIR="$BENCH/peers/node"
VENV="$BENCH/.venv"
PYTHON="${PYTHON:-python3}"


echo "==> node peers: npm ci ($NODE_DIR)"
NODE_STAMP="$NODE_DIR/node_modules/.leadhub-lock.sha256"
want="$( (cat "$NODE_DIR/package-lock.json"; node --version) | sha256sum | cut -d' ' -f1)"
if [[ -f "$NODE_STAMP" && "$(cat "$NODE_STAMP")" == "$want" ]]; then
    echo "package-lock.json unchanged (stamp $NODE_STAMP); skipping npm ci"
else
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    echo "$want" > "$NODE_STAMP"
fi

echo "==> python peer: venv $VENV + requirements.txt"
if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "existing venv is broken (interpreter moved?); recreating"
    rm -rf "$VENV"
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PY_STAMP="$VENV/.leadhub-requirements.sha256"
want="$( (cat "$BENCH/requirements.txt"; "$VENV/bin/python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [[ -f "$PY_STAMP" && "$(cat "$PY_STAMP")" == "$want" ]]; then
    echo "requirements unchanged (stamp $PY_STAMP); skipping pip"
else
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -q -r "$BENCH/requirements.txt"
    echo "$want" > "$PY_STAMP"
fi

echo "==> leadhub: release build of the heloc_verdicts example"
(cd "$ROOT" && cargo build -q -p leadhub --release --example heloc_verdicts)

echo "==> fixtures in step with make_heloc.py"
"$VENV/bin/python" "$BENCH/fixtures/make_heloc.py" --check

echo "==> self-test of the agreement check"
"$VENV/bin/python" "$BENCH/peers.py" --self-test

echo "==> agreement: every peer, every fixture"
"$VENV/bin/python" "$BENCH/peers.py" check

echo "==> agreement: ${PEERS_FUZZ:-300} fuzzed variants of the example"
"$VENV/bin/python" "$BENCH/peers.py" fuzz "${PEERS_FUZZ:-300}" --seed "${PEERS_SEED:-1}"

if [[ "${PEERS_TIME:-1}" != "0" ]]; then
    echo "==> timing (${PEERS_ROUNDS:-5} interleaved rounds, ${PEERS_MS:-1500} ms per loop)"
    "$VENV/bin/python" "$BENCH/peers.py" time --ms "${PEERS_MS:-1500}" --rounds "${PEERS_ROUNDS:-5}"
fi
