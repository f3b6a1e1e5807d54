#!/usr/bin/env python3
"""Where each bootstrap's cold start spends its CPU: perf samples of the cold-start harness, by phase.

infra/bench/coldstart-profile.sh runs the harness (runtime-api: every bootstrap started against the Runtime
API emulator, one invocation each) under `perf record -g --call-graph dwarf` on the `profiling` build (the
release profile with symbols), then this reads `perf script` and puts every sample of each bootstrap's
process (its worker threads too) in the first phase, in the order below, whose marker is on its stack.

    python3 infra/bench/coldstart_profile.py --script target/bench/coldstart-perf.txt --starts 20 \
        --out target/bench/coldstart-profile.md

CPU per start is samples x sampling period / starts: perf's own unwinding inflates every figure alike, so
read the shares and the differences from hello-lambda, not the absolute milliseconds.
"""

import argparse
import collections
import json
import re
from pathlib import Path

BOOTSTRAPS = ["hello-lambda", "ingest", "validate", "dispatch", "callback"]

# (phase, markers): a sample goes to the first phase with any marker in its stack (symbols or DSOs).
PHASES = [
    ("the first invocation: HTTPS connector and trust store (first SDK call)",
     ["create_rustls_client_config", "mozilla_pem_bundle", "mozilla_tls_context", "rustls_native_certs"]),
    ("the first invocation: the handler", [
        "ingest::Ingest", "validate::Validate", "dispatch::Dispatch", "callback::Callback", "hello_lambda::hello"]),
    ("configuration: LEADHUB_CONFIG_FILE parsed and checked", ["leadhub::config::Config", "leadhub::settings::"]),
    ("SDK: DynamoDB client (endpoint partitions, rules)", ["aws_sdk_dynamodb::client::Client"]),
    ("SDK: SQS client (endpoint partitions, rules)", ["aws_sdk_sqs::client::Client"]),
    ("SDK: aws-config load (environment, profile files, providers)", ["aws_config::"]),
    ("outbound HTTP client (reqwest) built", ["reqwest::"]),
    ("logging set-up (tracing)", ["leadhub::telemetry", "tracing_subscriber::"]),
    ("tokio runtime built (worker threads, CPU quota)", ["tokio::runtime::builder::Builder::build"]),
    ("the first invocation: SDK request (orchestrator, signing, connect attempt)",
     ["aws_smithy_runtime::client::orchestrator", "aws_smithy_http_client::", "aws_sigv4::"]),
    ("lambda_runtime: Runtime API client, requests for work", ["lambda_runtime"]),
    ("HTTP connections (hyper: the Runtime API's, the SDK's)", ["hyper::", "hyper_util::"]),
    ("dynamic loader: relocations, shared libraries", ["_dl_", "ld-linux"]),
    ("main, other", ["::main"]),
    ("exec and process set-up (kernel, libc, page faults)", [""]),
]


def samples(path):
    """(pid, comm, period, frames) per sample of `perf script -F comm,pid,tid,period,ip,sym,dso`."""
    head = re.compile(r"^(\S.*?)\s+(\d+)/(\d+)\s+(\d+)\s*$")
    block = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.strip():
                block.append(line.rstrip("\n"))
                continue
            if block:
                yield from parse(block, head)
            block = []
    if block:
        yield from parse(block, head)


def parse(block, head):
    m = head.match(block[0])
    if not m:
        return
    comm, pid, tid, period = m.group(1).strip(), int(m.group(2)), int(m.group(3)), int(m.group(4))
    yield pid, tid, comm, period, "\n".join(block[1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", required=True, help="perf script output")
    ap.add_argument("--starts", type=int, required=True, help="how many times each bootstrap was started")
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="bash infra/bench/coldstart-profile.sh")
    args = ap.parse_args()

    rows = list(samples(args.script))
    # A process is named by its main thread (pid == tid); its workers (tokio-rt-worker) count with it.
    names = {pid: comm for pid, tid, comm, _, _ in rows if pid == tid}
    ns = collections.defaultdict(collections.Counter)
    for pid, _, _, period, stack in rows:
        name = names.get(pid)
        if name not in BOOTSTRAPS:
            continue
        for phase, markers in PHASES:
            if any(marker in stack for marker in markers):
                ns[name][phase] += period
                break
    missing = [b for b in BOOTSTRAPS if b not in ns]
    if missing:
        raise SystemExit(f"coldstart_profile.py: no samples of {', '.join(missing)} in {args.script}")

    per_start = {b: {p: ns[b][p] / args.starts / 1e6 for p, _ in PHASES} for b in BOOTSTRAPS}
    totals = {b: sum(per_start[b].values()) for b in BOOTSTRAPS}
    header = "| Phase | " + " | ".join(BOOTSTRAPS) + " |"
    lines = [
        f"CPU per start, ms (perf samples x period / {args.starts} starts), by phase; `{args.command}`:",
        "",
        header,
        "|---|" + "---:|" * len(BOOTSTRAPS),
    ]
    for phase, _ in PHASES:
        if all(per_start[b][phase] < 0.005 for b in BOOTSTRAPS):
            continue
        lines.append(f"| {phase} | " + " | ".join(f"{per_start[b][phase]:.2f}" for b in BOOTSTRAPS) + " |")
    lines.append("| **all** | " + " | ".join(f"**{totals[b]:.2f}**" for b in BOOTSTRAPS) + " |")
    lines.append("| all / hello-lambda | " + " | ".join(
        f"{totals[b] / totals['hello-lambda']:.2f}x" for b in BOOTSTRAPS) + " |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"starts": args.starts, "ms_per_start": per_start, "total_ms_per_start": totals}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
