#!/usr/bin/env bash
# leadhub: run every test.
#
#   bash infra/test.sh                      # fmt, clippy, all tests (incl. AWS adapter tests on moto), sam validate
#   LEADHUB_SAM_BUILD=1 bash infra/test.sh  # ... and also `sam build` (x86_64) and check the four bootstraps
#                                           # (the default when CI=true; LEADHUB_SAM_BUILD=0 skips it)
#
# Needs only: rustup Rust stable (with rustfmt + clippy), Python >= 3.10 with pip, git.
# Everything else (moto, aws-sam-cli, cfn-lint, cargo-lambda, zig) comes from PyPI into ./.venv, pinned in
# infra/requirements-test.txt. Services bind to 127.0.0.1 only; no AWS account is used.
#
# Environment knobs:
#   PYTHON=python3.11       interpreter used to create .venv (default: python3)
#   LEADHUB_SAM_BUILD=1     run `sam build --parameter-overrides Architecture=x86_64` too (default 1 when CI=true)
#   LEADHUB_SKIP_CARGO=1    skip fmt/clippy/test (template-only iteration)
#   LEADHUB_LAMBDA_WATCH=0  skip the cargo lambda watch + pump check on moto
#   CI=true                 same behaviour; nothing here ever prompts (stdin is closed for tools)

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
REQS="$ROOT/infra/requirements-test.txt"
STAMP="$VENV/.leadhub-requirements.sha256"
WORK="$ROOT/target/infra-test"          # logs and scratch; /target is gitignored
PYTHON="${PYTHON:-python3}"

mkdir -p "$WORK"

# ------------------------------------------------------------------ step bookkeeping
CURRENT_STEP=""
STEP_START=0
SUMMARY=()
MOTO_PID=""

now() { date +%s; }

step() {
    finish_step
    CURRENT_STEP="$1"
    STEP_START="$(now)"
    if [[ -t 1 ]]; then
        printf '\n\033[1m==> [%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$CURRENT_STEP"
    else
        printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$CURRENT_STEP"
    fi
}

finish_step() {
    if [[ -n "$CURRENT_STEP" ]]; then
        SUMMARY+=("ok    $(($(now) - STEP_START))s  $CURRENT_STEP")
        CURRENT_STEP=""
    fi
}

skip_step() {
    finish_step
    SUMMARY+=("skip      $1")
}

die() {
    echo "error: $*" >&2
    exit 1
}

# Run a long command as its own process group in the background and wait for it, so that INT/TERM
# reach our traps at once (bash defers traps while a foreground child runs) and the whole tree
# (cargo, rustc, test binaries) can be stopped. stdin is closed: nothing may prompt.
CHILD_PID=""
if command -v setsid >/dev/null 2>&1; then SETSID=(setsid -w); else SETSID=(); fi
run() {
    "${SETSID[@]}" "$@" </dev/null &
    CHILD_PID=$!
    local rc=0
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}

stop_child() {
    if [[ -n "$CHILD_PID" ]] && kill -0 "$CHILD_PID" 2>/dev/null; then
        echo "stopping $CHILD_PID and its children" >&2
        if [[ ${#SETSID[@]} -gt 0 ]]; then kill -TERM -- "-$CHILD_PID" 2>/dev/null || true; fi
        kill -TERM "$CHILD_PID" 2>/dev/null || true
        wait "$CHILD_PID" 2>/dev/null || true
    fi
    CHILD_PID=""
}

LOCAL_PID=""
stop_local() {
    if [[ -n "$LOCAL_PID" ]] && kill -0 "$LOCAL_PID" 2>/dev/null; then
        kill "$LOCAL_PID" 2>/dev/null || true
        wait "$LOCAL_PID" 2>/dev/null || true
    fi
    LOCAL_PID=""
}

stop_moto() {
    if [[ -n "$MOTO_PID" ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    MOTO_PID=""
}

on_exit() {
    local rc=$?
    set +e
    stop_child
    stop_local
    stop_moto
    local failed="$CURRENT_STEP"
    if [[ $rc -eq 0 ]]; then
        finish_step
    elif [[ -n "$failed" ]]; then
        SUMMARY+=("FAIL  $(($(now) - STEP_START))s  $failed")
    fi
    echo
    echo "==================== leadhub infra/test.sh summary ===================="
    local line
    for line in "${SUMMARY[@]}"; do echo "  $line"; done
    if [[ $rc -eq 0 ]]; then
        echo "  RESULT: all steps passed"
    else
        echo "  RESULT: FAILED (exit $rc)${failed:+ in step: $failed}"
        [[ -s "$WORK/moto_server.log" ]] && echo "  moto log: $WORK/moto_server.log"
    fi
    echo "======================================================================="
    exit "$rc"
}
trap on_exit EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# ------------------------------------------------------------------ (a) tools
step "check toolchain (cargo, rustfmt, clippy, $PYTHON)"
command -v cargo >/dev/null || die "cargo not found: install Rust stable with rustup"
cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3.11)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); aws-sam-cli, moto and cfn-lint need Python >= 3.10"
cargo --version
"$PYTHON" --version

step "python venv .venv + infra/requirements-test.txt"
if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "existing .venv is broken (interpreter moved?); recreating"
    rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
want="$("$VENV/bin/python" - "$REQS" <<'EOF'
import hashlib, sys
h = hashlib.sha256(open(sys.argv[1], "rb").read())
h.update(sys.version.encode())
print(h.hexdigest())
EOF
)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "requirements unchanged (stamp $STAMP); skipping pip"
else
    # pip's own cache (~/.cache/pip) is reused across runs and venvs.
    run "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -q \
        -r "$REQS"
    echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
# The partner receiver of the notification tests verifies with PyPI's standardwebhooks from this venv.
export LEADHUB_PYTHON="$VENV/bin/python"
# cargo-lambda (sam build) cross-links through cargo-zigbuild, which needs zig: point it at the
# zig binary shipped by the `ziglang` wheel (it would otherwise look for `zig` on PATH or `python3 -m ziglang`).
CARGO_ZIGBUILD_ZIG_PATH="$("$VENV/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')"
export CARGO_ZIGBUILD_ZIG_PATH
export SAM_CLI_TELEMETRY=0
echo "moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)'), $(sam --version), cfn-lint $(cfn-lint --version | awk '{print $2}'), $(cargo lambda --version), zig $("$CARGO_ZIGBUILD_ZIG_PATH" version)"

# ------------------------------------------------------------------ (b) moto
step "start moto_server on 127.0.0.1"
free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_for_moto() { # port pid
    "$VENV/bin/python" - "$1" "$2" <<'EOF'
import os, sys, time, urllib.error, urllib.request
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(2)  # moto died (port taken?)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # any HTTP answer means it is up
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
}
MOTO_PORT=""
for attempt in 1 2 3; do
    port="$(free_port)"
    # moto's server with DynamoDB calls serialised, as real DynamoDB serialises the writes to an item
    # (see the file's docstring).
    "${SETSID[@]}" "$VENV/bin/python" "$ROOT/infra/moto_server.py" -H 127.0.0.1 -p "$port" \
        >"$WORK/moto_server.log" 2>&1 </dev/null &
    MOTO_PID=$!
    if wait_for_moto "$port" "$MOTO_PID"; then
        MOTO_PORT="$port"
        break
    fi
    echo "moto_server did not come up on port $port (attempt $attempt); log:" >&2
    tail -n 20 "$WORK/moto_server.log" >&2 || true
    stop_moto
done
[[ -n "$MOTO_PORT" ]] || die "could not start moto_server"
echo "moto_server pid $MOTO_PID at http://127.0.0.1:$MOTO_PORT (log: $WORK/moto_server.log)"

# ------------------------------------------------------------------ (c) environment
# Never reach a real account: fake static credentials, no profiles, no instance metadata.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI
export AWS_CONFIG_FILE="$WORK/aws-config-none"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials-none"
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export LEADHUB_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"

# ------------------------------------------------------------------ (d) cargo
if [[ "${LEADHUB_SKIP_CARGO:-0}" == "1" ]]; then
    skip_step "cargo fmt / clippy / test (LEADHUB_SKIP_CARGO=1)"
else
    step "cargo fmt --all --check"
    run cargo fmt --all --check

    step "cargo clippy --workspace --all-targets -- -D warnings"
    run cargo clippy --workspace --all-targets -- -D warnings

    step "cargo test --workspace --lib --bins --tests --examples -- --include-ignored (AWS adapters on moto)"
    # Every log line the e2e tests capture is also kept here, for the PII scan below.
    export LEADHUB_TEST_LOG_FILE="$WORK/e2e-logs.jsonl"
    rm -f "$LEADHUB_TEST_LOG_FILE"
    run cargo test --workspace --lib --bins --tests --examples -- --include-ignored

    step "cargo test --workspace --benches (each benchmark runs once)"
    run cargo test --workspace --benches
fi

# ------------------------------------------------------------------ (d2) schemathesis
# The local stack (memory backend, sandbox buyers) on a free port; schemathesis generates requests from the
# OpenAPI document it serves and checks that no answer is a 5xx or breaks the document.
if [[ "${LEADHUB_SKIP_CARGO:-0}" == "1" ]]; then
    skip_step "schemathesis (LEADHUB_SKIP_CARGO=1)"
else
    step "schemathesis against leadhub-local's /v1/openapi.json"
    run cargo build -q -p leadhub-local
    LOCAL_PORT="$(free_port)"
    LOCAL_SECRET="st-$(date +%s%N)"
    LEADHUB_ADDR="127.0.0.1:$LOCAL_PORT" LEADHUB_DEMO_KEY=pk_schemathesis LEADHUB_DEMO_SECRET="$LOCAL_SECRET" \
        RUST_LOG=warn "$ROOT/target/debug/leadhub-local" >"$WORK/leadhub-local.log" 2>&1 </dev/null &
    LOCAL_PID=$!
    "$VENV/bin/python" - "$LOCAL_PORT" <<'EOF' || die "leadhub-local did not come up (log: $WORK/leadhub-local.log)"
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/openapi.json", timeout=1).read()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
    run schemathesis run "http://127.0.0.1:$LOCAL_PORT/v1/openapi.json" --url "http://127.0.0.1:$LOCAL_PORT" \
        --auth "pk_schemathesis:$LOCAL_SECRET" \
        --checks all \
        --exclude-checks positive_data_acceptance,use_after_free,ensure_resource_availability,object_level_authorization \
        --max-examples "${LEADHUB_SCHEMATHESIS_EXAMPLES:-100}" --seed 20261121 --generation-database none

    # A partner's generated client, on the same stack: openapi-python-client must take the whole served
    # document without a warning, and its client posts one lead of each vertical (202 each).
    step "openapi-python-client: a client generated from the served document posts all four verticals"
    run "$VENV/bin/python" "$ROOT/infra/openapi_client_check.py" --base-url "http://127.0.0.1:$LOCAL_PORT" \
        --key pk_schemathesis --secret "$LOCAL_SECRET" --work "$WORK/openapi-client"
    stop_local
fi

# ------------------------------------------------------------------ (d3) cargo lambda watch + pump on moto
# The README's "cargo lambda watch" section, run: the four functions under `cargo lambda watch`, fed by
# `leadhub-admin pump` (Lambda's event source mappings, locally), on moto; a lead ends delivered at the
# sandbox webhook buyer and a poisoned message ends in the dead-letter queue (infra/lambda_watch_check.py).
if [[ "${LEADHUB_SKIP_CARGO:-0}" == "1" || "${LEADHUB_LAMBDA_WATCH:-1}" == "0" ]]; then
    skip_step "cargo lambda watch + pump on moto (LEADHUB_LAMBDA_WATCH=0 or LEADHUB_SKIP_CARGO=1)"
else
    step "cargo lambda watch + leadhub-admin pump on moto: a lead delivered, a poisoned message dead-lettered"
    run cargo build -p leadhub-admin -p leadhub-sandbox -p leadhub-local
    run "$VENV/bin/python" "$ROOT/infra/lambda_watch_check.py" --moto "http://127.0.0.1:$MOTO_PORT" \
        --bin "$ROOT/target/debug" --work "$WORK/lambda-watch"
fi

# ------------------------------------------------------------------ (d4) PII scan
# After every test that used moto: no SSN in any item or log, no sealed SSN left for a screened lead, no
# email or phone outside a lead item or in any log (infra/pii_scan.py).
if [[ "${LEADHUB_SKIP_CARGO:-0}" == "1" ]]; then
    skip_step "PII scan of the moto table and the captured logs (LEADHUB_SKIP_CARGO=1)"
else
    step "PII scan: every item on moto and every captured log (infra/pii_scan.py)"
    logs=("$WORK/e2e-logs.jsonl")
    [[ -f "$WORK/leadhub-local.log" ]] && logs+=("$WORK/leadhub-local.log")
    while IFS= read -r -d '' f; do logs+=("$f"); done < <(find "$WORK/lambda-watch" -name '*.log' -print0 2>/dev/null)
    run "$VENV/bin/python" "$ROOT/infra/pii_scan.py" --endpoint "http://127.0.0.1:$MOTO_PORT" --logs "${logs[@]}"
fi

# ------------------------------------------------------------------ (e) template
step "sam validate --lint"
run sam validate --lint --template-file "$ROOT/template.yaml"

step "template: one least-privilege role per function, queue settings (infra/check_template.py)"
run "$VENV/bin/python" "$ROOT/infra/check_template.py" "$ROOT/template.yaml"

# ------------------------------------------------------------------ (f) sam build (optional)
if [[ "${CI:-}" == "true" ]]; then
    SAM_BUILD_DEFAULT=1
else
    SAM_BUILD_DEFAULT=0
fi
if [[ "${LEADHUB_SAM_BUILD:-$SAM_BUILD_DEFAULT}" == "1" ]]; then
    step "sam build --parameter-overrides Architecture=x86_64"
    # Compiles into the workspace's shared target dir (target/x86_64-unknown-linux-gnu/release via
    # cargo lambda + zig); artifacts go to .aws-sam/build (gitignored).
    run sam build --template-file "$ROOT/template.yaml" --build-dir "$ROOT/.aws-sam/build" \
        --parameter-overrides Architecture=x86_64

    step "check .aws-sam/build/*Function/bootstrap"
    missing=0
    for fn in IngestFunction ValidateFunction DispatchFunction CallbackFunction; do
        f="$ROOT/.aws-sam/build/$fn/bootstrap"
        if [[ -x "$f" ]]; then
            echo "ok  $fn/bootstrap ($(wc -c <"$f") bytes)"
        else
            echo "MISSING $f" >&2
            missing=1
        fi
    done
    [[ $missing -eq 0 ]] || die "sam build did not produce all four bootstraps"
else
    skip_step "sam build (set LEADHUB_SAM_BUILD=1)"
fi

stop_moto
finish_step
