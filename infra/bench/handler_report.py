#!/usr/bin/env python3
"""target/bench/handler.json and handler.md from shared/examples/handler_core.rs's output (infra/bench/handler.sh).

    python3 handler_report.py RUNS.jsonl FIXTURES.jsonl LOAD_BEFORE LOAD_AFTER CORES OUT.json OUT.md
"""

import json
import sys
from pathlib import Path


def main(runs, fixtures, load_before, load_after, cores, out_json, out_md):
    results = [json.loads(line) for line in Path(runs).read_text().splitlines() if line.strip()]
    listed = [json.loads(line) for line in Path(fixtures).read_text().splitlines() if line.strip()]
    saved = {"results": results, "fixtures": listed, "load_average": [float(load_before), float(load_after)],
             "cores": int(cores)}
    Path(out_json).write_text(json.dumps(saved, indent=2) + "\n")
    r0 = results[0]
    rows = [
        "## Handler core",
        "",
        "Rerun alone: `PEERS=0 bash infra/bench/handler.sh` (release build of shared/examples/handler_core.rs, "
        f"then `handler_core {r0['ms_per_loop']} {r0['rounds']}`). One unit of work is what ingest does to one "
        "body between reading it and its two AWS calls: `Vertical::parse_with` (JSON parse, the vertical's rules, "
        "the control-character check, normalisation, the posted text kept as `original`), then for a valid lead "
        "the `LeadRecord` (a new lead id from the OS random generator, times, retention; mortgage: the SSN's "
        "keyed hash), the DynamoDB item `DynamoStore::create_lead` writes (`store::dynamodb::lead_item`) and the "
        "`ValidateJob` message, and for an invalid one the 400 answer with every field error. Fixtures: HELOC's "
        "are infra/bench/fixtures/heloc; the others are infra/examples/<vertical>.json and variants made from it "
        "(listed in target/bench/handler.json; each gets the verdict its name says, checked before timing). "
        f"Medians of {r0['rounds']} rounds of {r0['ms_per_loop']} ms per loop, the verticals interleaved, one "
        "core; leads/s per core = 1e9 / ns per lead.",
        "",
        "| vertical | fixtures (valid / invalid) | µs/lead, valid | leads/s per core, valid | µs/lead, mix "
        "| leads/s per core, mix | target | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        target, verdict = "none set per vertical", "—"
        if r["vertical"] == "heloc":
            target, verdict = "≥ 3× fastest Node.js peer, ≥ 10× pydantic", "see HELOC beside Node.js and Python"
        rows.append(
            f"| {r['vertical']} | {r['valid_fixtures']} / {r['invalid_fixtures']} | {r['valid_ns_median'] / 1000:.2f} "
            f"| {1e9 / r['valid_ns_median']:,.0f} | {r['mix_ns_median'] / 1000:.2f} | {1e9 / r['mix_ns_median']:,.0f} "
            f"| {target} | {verdict} |"
        )
    rows += ["", f"Machine: {cores} cores, 1-minute load average {load_before} before and {load_after} after "
             "(other work on the machine slows every figure alike).", ""]
    Path(out_md).write_text("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
