#!/usr/bin/env python3
"""BENCHMARKS.md from the sections in target/bench (infra/bench/run.sh calls this last).

Every section is a script's own Markdown (target/bench/NAME.md, beside its raw NAME.json): this adds the
command line, the machine, the targets at a glance and the time the run took, then the sections in order.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "bench"
SECTIONS = ["peers", "handler", "pipeline", "memory", "coldstart", "size", "cost"]
# Findings of a profiling run that is not part of run.sh, added to the end of their section: the pipeline's
# (perf of leadhub-local under leadhub-loadgen) and the cold start's (`bash infra/bench/coldstart-profile.sh`).
PROFILES = {
    "pipeline": ROOT / "infra" / "bench" / "profile.md",
    "coldstart": ROOT / "infra" / "bench" / "coldstart-profile.md",
}


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False).stdout.strip()
    except OSError:
        return "not found"


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "rustc": sh("rustc", "--version"),
        "node": sh("node", "--version"),
        "python": platform.python_version(),
    }


def verdicts(text):
    """(figure, value, target, verdict) of every table row of a section with a target and a verdict: each
    column headed verdict, with the nearest column before it headed target."""
    rows = []
    header = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: ") or len(cells) != len(header):
            continue
        for v, name in enumerate(header):
            if not name.startswith("verdict"):
                continue
            targets = [t for t in range(1, v) if header[t].startswith("target")]
            if not targets or cells[v] in ("", "-", "—") or not re.search(r"met|missed", cells[v]):
                continue
            t = targets[-1]
            value = cells[t + 1] if t + 1 < v else cells[t - 1]
            named = header[t + 1] if t + 1 < v else header[t - 1]
            rows.append((f"{cells[0]} ({named})", value, cells[t], cells[v]))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--command", required=True)
    ap.add_argument("--load-before", default="")
    ap.add_argument("--load-after", default="")
    ap.add_argument("--build-seconds", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()

    m = machine()
    commit = sh("git", "rev-parse", "--short", "HEAD")
    dirty = " (with uncommitted changes)" if sh("git", "status", "--porcelain", "--untracked-files=no") else ""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# leadhub benchmarks",
        "",
        "Written by one command, with every figure of one run; rerun it to check them:",
        "",
        "```",
        args.command,
        "```",
        "",
        f"- run: {now}, commit `{commit}`{dirty}, {args.seconds // 60} min {args.seconds % 60} s in all, of which "
        f"{args.build_seconds} s release build (cargo reuses target/release; from nothing it takes about 25 min)",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; load average "
        f"{args.load_before} before, {args.load_after} after (a shared machine: compare ratios taken in the same "
        "run, not absolute times across runs)",
        f"- tools: {m['rustc']}, node {m['node']}, python {m['python']}",
        "",
        "Each section says how it was measured and the command that reruns it alone. Targets are the ones issue 12 "
        "set; where one is missed the section says by how much and where the time (or the bytes) go.",
        "",
    ]
    bodies = []
    glance = []
    for name in SECTIONS:
        path = OUT / f"{name}.md"
        if not path.exists():
            bodies.append(f"## {name}\n\nNot measured in this run (no target/bench/{name}.md).\n")
            continue
        text = path.read_text().strip() + "\n"
        note = PROFILES.get(name)
        if note and note.exists():
            # What profiling showed, from a separate run (perf is not part of run.sh): its date is in its text.
            text += "\n" + note.read_text().strip() + "\n"
        bodies.append(text)
        title = text.splitlines()[0].lstrip("# ").strip()
        for row in verdicts(text):
            glance.append((title, row))
    if glance:
        parts += ["## Targets at a glance", "", "| Section | Figure | Value | Target | Verdict |", "|---|---|---:|---:|---|"]
        for title, (figure, value, target, verdict) in glance:
            parts.append(f"| {title} | {figure} | {value} | {target} | {verdict} |")
        cost = OUT / "cost.json"
        if cost.exists():
            model = json.loads(cost.read_text()).get("model", {})
            for label, key in (("all in, as measured on moto", "usd_per_million"),
                               ("all in, Lambda at AWS's latency", "usd_per_million_at_aws_latency")):
                if key in model:
                    usd = model[key]
                    verdict = "met" if usd < 10 else f"missed by {100 * (usd - 10) / 10:.0f}%"
                    parts.append(f"| Cost per million leads | {label} | US$ {usd:.2f} | < US$ 10 | {verdict} |")
        parts.append("")
    parts += bodies
    Path(args.out).write_text("\n".join(parts))
    summary = {"commit": commit, "machine": m, "seconds": args.seconds, "sections": [
        n for n in SECTIONS if (OUT / f"{n}.md").exists()]}
    (OUT / "report.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
