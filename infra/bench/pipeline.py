#!/usr/bin/env python3
"""The local stack end to end: throughput, memory and the cost model (issue 12), as three BENCHMARKS.md sections.

    python3 infra/bench/pipeline.py [--seconds 30] [--rate 5250] [--rate-connections 64] [--connections 32]
                                    [--memory-leads 200000] [--cost-leads 300] [--moto-python PYTHON]
                                    [--skip throughput,memory,cost]

Needs the release builds of leadhub-local and leadhub-loadgen (infra/bench/run.sh builds them). Each run is
`target/release/leadhub-loadgen` (infra/bench/loadgen: it starts leadhub-local, is the buyer, counts every lead):

- throughput, two runs on the memory backend for --seconds after a 2 s warm-up: sustained, --rate leads per
  second offered open loop over --rate-connections connections (the target: delivered at that rate with the
  backlog flat); and capacity, --connections closed-loop connections (as fast as the stack answers);
- memory: the memory backend, --memory-leads leads, the stack's peak RSS (VmHWM) at the end;
- cost: DynamoDB and SQS on moto (started here on loopback with --moto-python), --cost-leads leads over 4
  connections; the adapters count every request (GET /_local/usage) and the stack times every invocation.

Writes target/bench/{pipeline,memory,cost}.{json,md}. Exits 1 if any run lost a lead.
"""

import argparse
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "bench"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
LOADGEN = TARGET / "release" / "leadhub-loadgen"
LOCAL = Path(os.environ.get("LEADHUB_LOCAL_BIN", TARGET / "release" / "leadhub-local"))

# AWS list prices, us-east-1, on-demand (https://aws.amazon.com/{lambda,api-gateway,sqs,dynamodb,cloudwatch}/pricing/).
PRICES = {
    "lambda_gb_s_arm64": 0.0000133334,   # USD per GB-second, arm64
    "lambda_request": 0.20 / 1e6,        # USD per invocation
    "apigw_http_request": 1.00 / 1e6,    # HTTP API, first 300 million a month
    "sqs_request": 0.40 / 1e6,           # standard queue, per 64 KiB request
    "dynamodb_wru": 0.625 / 1e6,         # on-demand write request unit
    "dynamodb_rru": 0.125 / 1e6,         # on-demand read request unit
    "dynamodb_gb_month": 0.25,           # standard table class storage
    "logs_gb": 0.50,                     # CloudWatch Logs ingestion
}
# What Lambda itself writes per invocation (START, END and REPORT lines), bytes.
LAMBDA_LOG_BYTES_PER_INVOCATION = 300

TARGETS = {
    "delivered_per_s": 5000,
    "rss_mib": None,  # no number in the issue: bounded, reported after 200,000 leads
    "usd_per_million": 10.0,
}


def verdict_at_least(figure, target):
    if figure >= target:
        return "met"
    return f"missed by {100 * (target - figure) / target:.0f}%"


def verdict_at_most(figure, target):
    if figure <= target:
        return "met"
    return f"missed by {100 * (figure - target) / target:.0f}%"


def loadgen(name, extra, stack_args=()):
    out = OUT / f"loadgen-{name}.json"
    work = OUT / f"loadgen-{name}"
    cmd = [str(LOADGEN), "--local", str(LOCAL), "--work-dir", str(work), "--out", str(out), *extra]
    for arg in stack_args:
        cmd.append(f"--stack-arg={arg}")
    print("+", " ".join(cmd), flush=True)
    started = time.time()
    rc = subprocess.call(cmd, cwd=ROOT)
    result = json.loads(out.read_text()) if out.exists() else None
    if result is None:
        sys.exit(f"pipeline: {name}: leadhub-loadgen wrote no result (exit {rc}); see {work}")
    result["command"] = " ".join(cmd[0:1] + [c.replace(str(ROOT) + "/", "") for c in cmd[1:]]).replace(str(ROOT) + "/", "")
    result["wall_s"] = time.time() - started
    result["exit"] = rc
    return result


def accounting(r):
    refused = sum(r["refused_at_ingest"].values())
    return (
        f"posted {r['posted']:,} = accepted {r['accepted']:,} + refused at ingest {refused:,} + failed requests "
        f"{r['failed_requests']:,}; accepted = delivered {r['delivered']:,} + rejected {r['rejected']:,} + lost "
        f"{r['lost']:,} (repeat deliveries {r['repeat_deliveries']:,})"
    )


def backlog_trend(series):
    """Backlog growth in leads per second over the counted window (least squares)."""
    points = [(p["t"], p["backlog"]) for p in series]
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mb = sum(b for _, b in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (b - mb) for t, b in points) / den if den else 0.0


def flat(trend, rate):
    """The backlog is flat when its least-squares trend is within 2% of the rate leads came in at."""
    return abs(trend) < 0.02 * max(rate, 1)


def signed(x):
    """A rate with its sign, and 0 (not -0) when it rounds to nothing."""
    return "0" if round(x) == 0 else f"{x:+,.0f}"


def run_rows(r, run):
    """What both throughput runs end their table with (latencies, lost leads, CPU), then the accounting
    and the second-by-second series."""
    every = max(1, len(r["series"]) // 10)
    lines = [
        f"| ingest latency p50 / p99 | {r['ingest_ms']['p50']:.2f} / {r['ingest_ms']['p99']:.2f} ms | | |",
        f"| post to delivery p50 / p99 | {r['end_to_end_ms']['p50']:.1f} / {r['end_to_end_ms']['p99']:.1f} ms | | |",
        f"| lost leads, {run} run | {r['lost']} | 0 | {'met' if r['lost'] == 0 else 'missed'} |",
        f"| stack CPU per delivered lead | {r['stack_cpu_us_per_delivered_lead']:,.0f} µs | | |",
        f"| CPU used in the window: stack / load generator and buyer | {r['cpu_s_in_window']['stack']:.1f} / "
        f"{r['cpu_s_in_window']['loadgen']:.1f} s of {2 * r['window_s']:.0f} | | |",
        "",
        f"Every lead counted: {accounting(r)}.",
        "",
        "Second by second (every %d s): t, accepted, delivered, backlog" % every,
        "",
        "```",
    ]
    for p in r["series"][::every]:
        lines.append(f"{p['t']:6.1f} s  {p['accepted']:>8,}  {p['delivered']:>8,}  {p['backlog']:>7,}")
    return lines + ["```", ""]


def throughput_section(sustained, capacity, profile_note):
    """Two runs: open loop at the offered rate (the target: delivered at that rate, backlog flat), and
    closed loop (as fast as the stack answers: its capacity, where ingest outruns delivery)."""
    lines = [
        "## Pipeline throughput",
        "",
        "The local stack (`leadhub-local`, embedded store and queues, release build) under "
        "`leadhub-loadgen`: HELOC leads (infra/examples/heloc.json, a unique email each) over keep-alive "
        "connections, routed to one webhook buyer on loopback that `leadhub-loadgen` itself serves (it answers "
        "200 to every delivery and records each lead id once). Load generator, stack and buyer share this "
        "machine's cores. Two runs: **sustained**, leads offered at a fixed rate (open loop: lead n is due n / "
        "rate seconds after the load starts, whatever the answers), which is what the target is about; and "
        "**capacity**, each connection posting its next lead as soon as the last is answered (closed loop), "
        "which shows how far ingest and delivery each go.",
        "",
    ]
    if sustained:
        r = sustained
        trend = backlog_trend(r["series"])
        lines += [
            f"### Sustained: {r['rate']:,.0f} leads/s offered",
            "",
            f"{r['connections']} connections for {r['window_s']:.0f} s after a {r['warmup_s']} s warm-up; the "
            f"rate is the target plus 5%. Rerun alone: `{r['command']}`",
            "",
            "| Figure | Value | Target | Verdict |",
            "|---|---:|---:|---|",
            f"| leads offered per second | {r['rate']:,.0f} ({r['posted_late']:,} posted over 100 ms late) | | |",
            f"| leads accepted per second (202) | {r['accepted_per_s']:,.0f} | | |",
            f"| leads delivered per second, end to end, sustained | {r['delivered_per_s']:,.0f} | ≥ 5,000 | "
            f"{verdict_at_least(r['delivered_per_s'], TARGETS['delivered_per_s'])} |",
            f"| backlog trend over the window | {signed(trend)} leads/s | flat | "
            f"{'met' if flat(trend, r['accepted_per_s']) else f'missed: grew {trend:,.0f} leads/s'} |",
            f"| backlog when the load stopped | {r['backlog_at_stop']:,} leads | | |",
        ] + run_rows(r, "sustained")
    if capacity:
        r = capacity
        trend = backlog_trend(r["series"])
        lines += [
            f"### Capacity: {r['connections']} closed-loop connections",
            "",
            f"{r['window_s']:.0f} s after a {r['warmup_s']} s warm-up. Rerun alone: `{r['command']}`",
            "",
            "| Figure | Value | Target | Verdict |",
            "|---|---:|---:|---|",
            f"| leads accepted per second (202) | {r['accepted_per_s']:,.0f} | | |",
            f"| leads delivered per second, end to end | {r['delivered_per_s']:,.0f} | | |",
            f"| backlog trend over the window (ingest outrunning delivery) | {signed(trend)} leads/s | | |",
            f"| backlog when the load stopped | {r['backlog_at_stop']:,} leads | | |",
            f"| drain after the load stopped | {r['drain_s']:.1f} s | | |",
        ] + run_rows(r, "capacity")
    if profile_note:
        lines += [profile_note, ""]
    return "\n".join(lines)


def memory_section(r):
    mib = lambda kib: kib / 1024
    lines = [
        "## Memory on the local stack",
        "",
        f"The same stack and buyer, {r['posted']:,} leads posted from {r['connections']} connections, then drained; "
        "peak resident set (VmHWM of /proc/PID/status) of the `leadhub-local` process, which holds the store, the "
        "queues and every sandbox. Arguments to the stack: "
        + (" ".join(f"`{a}`" for a in r["stack_args"]) or "none")
        + ".",
        "",
        f"Rerun alone: `{r['command']}`",
        "",
        "| Figure | Value |",
        "|---|---:|",
        f"| resident when ready | {mib(r['rss_kib']['ready']):.1f} MiB |",
        f"| resident when the load stopped | {mib(r['rss_kib']['at_stop']):.1f} MiB |",
        f"| resident after the drain | {mib(r['rss_kib']['end']):.1f} MiB |",
        f"| peak resident over the run | {mib(r['rss_kib']['peak']):.1f} MiB |",
        f"| leads delivered / lost | {r['delivered']:,} / {r['lost']} |",
        "",
        f"Every lead counted: {accounting(r)}.",
        "",
    ]
    ttl = next((a for a in r["stack_args"] if a.endswith("s") and a[:-1].isdigit()), None)
    load_s = r["window_s"] + r["warmup_s"]
    if ttl and load_s < int(ttl[:-1]):
        lines += [
            f"The load lasted {load_s:.0f} s, less than the {ttl} the stack keeps each lead: nothing had expired "
            f"yet, so this is what {r['posted']:,} leads cost held at once "
            f"(about {(r['rss_kib']['peak'] - r['rss_kib']['ready']) / max(r['posted'], 1):.1f} KiB each), not the "
            "ceiling a longer run settles at; with a TTL the store sweeps expired leads and their items (tests in "
            "shared/src/store/memory/tests.rs), but the ceiling a run longer than the TTL settles at is not measured here.",
            "",
        ]
    return "\n".join(lines)


def template_memory_mb():
    text = (ROOT / "template.yaml").read_text()
    found = re.findall(r"MemorySize:\s*(\d+)", text)
    return int(found[0]) if found else 128


AWS_CALL_MS = 5.0  # a DynamoDB or SQS single-item call in-region (AWS quotes single-digit milliseconds)


def cost_model(r, memory_run=None):
    usage = r["usage"] or {}
    delivered = max(r["delivered"], 1)
    functions = usage.get("functions", {})
    requests = usage.get("aws_requests", {})
    memory_gb = template_memory_mb() / 1024
    per_lead = {}
    rows = []
    # Lambda
    invocations = sum(f["invocations"] for f in functions.values())
    billed_ms = sum(f["billed_ms"] for f in functions.values())
    for name, f in sorted(functions.items()):
        rows.append((f"Lambda {name}: {f['invocations'] / delivered:.2f} invocations, "
                     f"{f['billed_ms'] / delivered:.2f} billed ms per lead", None))
    lambda_duration = billed_ms / delivered / 1000 * memory_gb * PRICES["lambda_gb_s_arm64"]
    # The same at AWS's latency: the handlers' own time on the memory backend (no network to a store) plus each
    # counted DynamoDB and SQS call at AWS_CALL_MS, one after another (an upper bound: a batch's records and a
    # record's independent calls overlap).
    calls_per_lead = sum(op["requests"] for svc in requests.values() for op in svc.values()) / delivered
    own_ms = None
    if memory_run and memory_run.get("usage"):
        mf = memory_run["usage"].get("functions", {})
        own_ms = sum(f["busy_ms"] for f in mf.values()) / max(memory_run["delivered"], 1)
    aws_ms = (own_ms or 0.0) + calls_per_lead * AWS_CALL_MS
    lambda_duration_aws = aws_ms / 1000 * memory_gb * PRICES["lambda_gb_s_arm64"]
    lambda_requests = invocations / delivered * PRICES["lambda_request"]
    ingest = functions.get("ingest", {}).get("invocations", 0)
    apigw = ingest / delivered * PRICES["apigw_http_request"]
    sqs = requests.get("SQS", {})
    sqs_requests = sum(op["requests"] for op in sqs.values())
    dynamo = requests.get("DynamoDB", {})
    wru = sum(op["write_units"] for op in dynamo.values())
    rru = sum(op["read_units"] for op in dynamo.values())
    dynamo_requests = sum(op["requests"] for op in dynamo.values())
    table = r.get("stored") or {"items": 0, "bytes": 0, "index_bytes": 0}
    stored_bytes = (table["bytes"] + table["index_bytes"]) / delivered
    retention_months = 180 / 30
    storage = stored_bytes / 1e9 * retention_months * PRICES["dynamodb_gb_month"]
    calls = sum(op["requests"] for svc in requests.values() for op in svc.values())
    latency = sum(op.get("latency_ms", 0) for svc in requests.values() for op in svc.values())
    log_bytes = r.get("log_bytes", 0) / delivered + invocations / delivered * LAMBDA_LOG_BYTES_PER_INVOCATION
    logs = log_bytes / 1e9 * PRICES["logs_gb"]
    items = [
        ("API Gateway HTTP API", f"{ingest / delivered:.2f} requests × $1.00/M", apigw),
        ("Lambda requests", f"{invocations / delivered:.2f} invocations × $0.20/M", lambda_requests),
        ("Lambda duration (arm64)", f"{billed_ms / delivered:.2f} billed ms × {memory_gb * 1024:.0f} MB × "
         f"$0.0000133334/GB-s", lambda_duration),
        ("SQS", f"{sqs_requests / delivered:.2f} requests × $0.40/M", sqs_requests / delivered * PRICES["sqs_request"]),
        ("DynamoDB writes", f"{wru / delivered:.2f} WRU × $0.625/M", wru / delivered * PRICES["dynamodb_wru"]),
        ("DynamoDB reads", f"{rru / delivered:.2f} RRU × $0.125/M", rru / delivered * PRICES["dynamodb_rru"]),
        ("DynamoDB storage, 180 days' retention", f"{stored_bytes / 1024:.2f} KiB stored ({table['items'] / delivered:.1f} "
         "items, index copies included) × 6 months × $0.25/GB-month", storage),
        ("CloudWatch Logs", f"{log_bytes / 1024:.2f} KiB × $0.50/GB", logs),
    ]
    total = sum(cost for _, _, cost in items)
    total_aws = total - lambda_duration + lambda_duration_aws
    return {
        "per_lead": {
            "invocations": {k: v["invocations"] / delivered for k, v in functions.items()},
            "billed_ms": {k: v["billed_ms"] / delivered for k, v in functions.items()},
            "sqs_requests": {k: v["requests"] / delivered for k, v in sqs.items()},
            "dynamodb_requests": {k: v["requests"] / delivered for k, v in dynamo.items()},
            "wru": wru / delivered, "rru": rru / delivered,
            "dynamodb_requests_total": dynamo_requests / delivered,
        },
        "items": [{"item": i, "arithmetic": a, "usd_per_million": c * 1e6} for i, a, c in items],
        "usd_per_million": total * 1e6,
        "usd_per_million_at_aws_latency": total_aws * 1e6,
        "lambda_ms_at_aws_latency": aws_ms,
        "handler_own_ms": own_ms,
        "calls_per_lead": calls_per_lead,
        "memory_mb": memory_gb * 1024,
        "aws_call_ms": latency / calls if calls else 0.0,
        "stored": table,
        "rows": rows,
    }


def cost_section(r, model):
    lines = [
        "## Cost per million leads",
        "",
        f"From a run on the AWS adapters: DynamoDB and SQS served by moto on loopback, {r['posted']:,} HELOC leads "
        f"over {r['connections']} connections to the same webhook buyer. The adapters counted every request "
        "(an SDK interceptor, `leadhub::sdk::usage`: capacity units estimated from the bytes on the wire, "
        "rounded up as DynamoDB does, so upper bounds) and the stack timed every invocation (a request for "
        "ingest, a batch of up to 10 messages for validate and dispatch; billed as Lambda bills, rounded up to "
        f"the millisecond), each divided by the {r['delivered']:,} leads delivered. Lambda at the template's "
        f"{model['memory_mb']:.0f} MB, arm64; us-east-1 on-demand list prices. Durations include moto's answer "
        f"times in place of DynamoDB's and SQS's: moto took {model['aws_call_ms']:.1f} ms per call on average in this "
        "run (DynamoDB and SQS answer single-item calls in single-digit milliseconds), so the Lambda line is an upper "
        "bound. Storage is the table as it stood after the run (scanned: DynamoDB's item sizes, 100 bytes of "
        "overhead per item, the index's copies), kept for the 180 days of `lead_retention_days`.",
        "",
        f"Rerun alone: `{r['command']}` (with moto on the endpoint)",
        "",
        "| Item | Per lead × price | US$ per million leads |",
        "|---|---|---:|",
    ]
    for item in model["items"]:
        lines.append(f"| {item['item']} | {item['arithmetic']} | {item['usd_per_million']:.3f} |")
    total = model["usd_per_million"]
    total_aws = model["usd_per_million_at_aws_latency"]
    own = model["handler_own_ms"]
    lines += [
        f"| **All in, as measured on moto** | | **{total:.2f}** (target < 10: "
        f"{verdict_at_most(total, TARGETS['usd_per_million'])}) |",
        f"| **All in, Lambda at AWS's latency** | {model['lambda_ms_at_aws_latency']:.1f} billed ms: "
        + (f"{own:.2f} ms of the handlers' own (memory run) + " if own is not None else "")
        + f"{model['calls_per_lead']:.1f} calls × {AWS_CALL_MS:.0f} ms | **{total_aws:.2f}** (target < 10: "
        f"{verdict_at_most(total_aws, TARGETS['usd_per_million'])}) |",
        "",
        "Where the money goes: DynamoDB writes are billed by the whole item's size on every update (each status "
        "change rewrites the lead item, which carries the normalised lead, the lead as posted, its timeline and its "
        "deliveries), and storage is that item and its index copy for 180 days. Keeping the lead's body in an item "
        "of its own, written once, and a small status item that the updates rewrite, is what would bring both down.",
        "",
        "Per lead, as counted: "
        + "; ".join(
            f"{name} {n:.2f}" for name, n in sorted(model["per_lead"]["dynamodb_requests"].items())
        )
        + " DynamoDB requests; "
        + "; ".join(f"{name} {n:.2f}" for name, n in sorted(model["per_lead"]["sqs_requests"].items()))
        + " SQS requests (the local pollers' ReceiveMessage and DeleteMessage calls stand in for Lambda's event "
        "source mapping, which also polls and deletes, in batches).",
        "",
    ]
    for text, _ in model["rows"]:
        lines.append(f"- {text}")
    lines.append("")
    return "\n".join(lines)


def value_size(v):
    """DynamoDB's size of one attribute value (its documented rules, approximately for numbers)."""
    (kind, x), = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        return len(x.lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: e}) for e in x)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in x)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in x.items())
    return 0


def stored(port, table):
    """Items, their bytes (with DynamoDB's 100 bytes of overhead each) and the index copies (gsi1 projects
    ALL attributes), as the table holds them at the end of the run."""
    import boto3  # moto's own dependency, in the same venv

    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    items = size = indexed = 0
    kwargs = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        for item in page["Items"]:
            bytes_ = sum(len(k.encode()) + value_size(v) for k, v in item.items()) + 100
            items += 1
            size += bytes_
            if "gsi1pk" in item:
                indexed += bytes_
        if "LastEvaluatedKey" not in page:
            return {"items": items, "bytes": size, "index_bytes": indexed}
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(python):
    port = free_port()
    log = open(OUT / "moto_server.log", "w")
    proc = subprocess.Popen([python, str(ROOT / "infra" / "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            return proc, port
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"pipeline: moto did not start (log {OUT / 'moto_server.log'})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--connections", type=int, default=32, help="closed-loop connections (capacity, memory)")
    ap.add_argument("--rate", type=float, default=TARGETS["delivered_per_s"] * 1.05,
                    help="leads per second offered in the sustained run (default: the target plus 5%%)")
    ap.add_argument("--rate-connections", type=int, default=64, help="connections of the sustained run")
    ap.add_argument("--memory-leads", type=int, default=200_000)
    ap.add_argument("--memory-stack-args", default=os.environ.get("PIPELINE_MEMORY_STACK_ARGS", "--lead-ttl 60s"),
                    help="arguments for leadhub-local in the memory run, space-separated (default: keep each lead "
                         "60 s (the shortest it takes), as the table's TTL would after lead_retention_days)")
    ap.add_argument("--cost-leads", type=int, default=300)
    ap.add_argument("--moto-python", default=sys.executable)
    ap.add_argument("--skip", default="")
    ap.add_argument("--profile-note", default="", help="a Markdown paragraph on where the time goes")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    OUT.mkdir(parents=True, exist_ok=True)
    lost = 0

    if "throughput" not in skip:
        sustained = loadgen("sustained", ["--seconds", str(args.seconds), "--connections",
                                          str(args.rate_connections), "--rate", str(args.rate)])
        capacity = loadgen("throughput", ["--seconds", str(args.seconds), "--connections", str(args.connections)])
        lost += sustained["lost"] + capacity["lost"]
        (OUT / "pipeline.json").write_text(json.dumps({"sustained": sustained, "capacity": capacity}, indent=2) + "\n")
        # infra/bench/profile.md, the committed profile, report.py adds to the section.
        (OUT / "pipeline.md").write_text(throughput_section(sustained, capacity, args.profile_note))

    if "memory" not in skip:
        r = loadgen("memory", ["--leads", str(args.memory_leads), "--connections", str(args.connections)],
                    args.memory_stack_args.split())
        lost += r["lost"]
        (OUT / "memory.json").write_text(json.dumps(r, indent=2) + "\n")
        (OUT / "memory.md").write_text(memory_section(r))

    if "cost" not in skip:
        proc, port = start_moto(args.moto_python)
        prefix = f"bench{int(time.time())}"
        try:
            r = loadgen("cost", ["--leads", str(args.cost_leads), "--connections", "4", "--warmup", "0"],
                        ["--backend", "aws", "--endpoint", f"http://127.0.0.1:{port}", "--prefix", prefix])
            r["stored"] = stored(port, f"{prefix}-leads")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
        lost += r["lost"]
        memory_run = None
        if (OUT / "memory.json").exists():
            memory_run = json.loads((OUT / "memory.json").read_text())
        model = cost_model(r, memory_run)
        r["model"] = model
        (OUT / "cost.json").write_text(json.dumps(r, indent=2) + "\n")
        (OUT / "cost.md").write_text(cost_section(r, model))

    if lost:
        sys.exit(f"pipeline: {lost} leads lost")


if __name__ == "__main__":
    main()
