#!/usr/bin/env python3
"""leadhub's HELOC handler core (seed 001) beside the stacks a team would otherwise write it in: Node.js with
ajv and with zod, Python with pydantic. Part of issue 12 (benchmarks). Entry point: infra/bench/peers.sh
(installs the peers, builds leadhub's example, runs the self-test, the agreement check and the timing).

    python3 infra/bench/peers.py check             # every implementation on every fixture; exit 1 on any difference
    python3 infra/bench/peers.py time [--ms 1500] [--rounds 5] [--out target/bench/peers.json]
    python3 infra/bench/peers.py fuzz [N] [--seed S]  # the same check on N random variants of the example
    python3 infra/bench/peers.py table FILE.json   # the Markdown table of saved timing results
    python3 infra/bench/peers.py --self-test       # the check reports wrong answers (and accepts equal ones)

Fixtures: infra/bench/fixtures/heloc/*.json (written by fixtures/make_heloc.py): valid and invalid request
bodies covering every rule. The expected answer of each comes from leadhub itself
(shared/examples/heloc_verdicts.rs over `Vertical::Heloc.parse`): the verdict, the sorted set of "field:code"
errors and, when valid, the normalised lead. `check` fails unless every peer gives the same three on every
fixture (leads compared as JSON values: key order and 1800 vs 1800.0 do not matter, true vs 1 does), and unless
leadhub accepts exactly the `valid-*` fixtures.

Timing, the same for all four implementations. Each implementation has the same command line
(`IMPL --time MS VALID_FILE FILES...`) and the same in-process loop: the bodies are read into memory first; one
unit of work is one body in (bytes or text, as a Lambda receives it), parsed as JSON, validated, and either
the normalised lead serialised to JSON text or the list of field errors out. It warms up for MS/2 ms on the
valid example and MS/2 ms on the fixture mix, then loops over the valid example alone for MS ms and over all
fixtures in turn for MS ms, reading its monotonic clock (Rust `Instant`, Node `process.hrtime.bigint()`,
Python `time.perf_counter_ns()`) once per pass, and prints nanoseconds per lead for each. `time` runs that
process ROUNDS times per implementation, interleaved (one round runs each implementation once, the order
rotating), and reports the median of the rounds. leadhub's side is the release build of the example (the
release profile the Lambdas ship with). One loop runs on one core, so leads/s per core = 1e9 / ns per lead.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = HERE / "fixtures" / "heloc"
VALID_EXAMPLE = ROOT / "infra" / "examples" / "heloc.json"
NODE = HERE / "peers" / "node"
PYTHON = os.environ.get("PEERS_PYTHON", str(HERE / ".venv" / "bin" / "python"))
LEADHUB = os.environ.get(
    "PEERS_LEADHUB",
    str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "examples" / "heloc_verdicts"),
)

# name, label for the table, command prefix
IMPLEMENTATIONS = [
    ("leadhub", "leadhub (Rust, serde_json)", [LEADHUB]),
    ("node-ajv", "Node.js + ajv, JSON.stringify", ["node", str(NODE / "heloc_ajv.mjs")]),
    ("node-zod", "Node.js + zod, JSON.stringify", ["node", str(NODE / "heloc_zod.mjs")]),
    ("python-pydantic", "Python + pydantic, model_dump_json", [PYTHON, str(HERE / "peers" / "python" / "heloc_pydantic.py")]),
]


def fixtures():
    files = sorted(FIXTURES.glob("*.json"))
    if not files:
        sys.exit(f"no fixtures in {FIXTURES} (python3 {HERE / 'fixtures' / 'make_heloc.py'})")
    return files


# Timed only (not in the agreement check): leadhub through its serde_json::Value parser alone, as before
# HELOC's fast path: the "before" figure, in the same run.
VALUE_PATH = ("leadhub-value-path", "leadhub, Value path only (before the fast path)", [LEADHUB])
TIMED = IMPLEMENTATIONS + [VALUE_PATH]

# The targets (issue 12): leadhub's HELOC time per lead against the fastest Node.js peer and pydantic.
TARGETS = [("fastest Node.js peer (ajv, zod)", ("node-ajv", "node-zod"), 3.0),
           ("Python + pydantic", ("python-pydantic",), 10.0)]


def run(command, args, env=None):
    done = subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, check=False,
                          env=None if env is None else {**os.environ, **env})
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def verdicts(command, files):
    """fixture name -> {"valid", "errors", "normalised"}."""
    out = {}
    for line in run(command, files).splitlines():
        record = json.loads(line)
        out[record["fixture"]] = record
    return out


def canonical(value):
    """A JSON value in a form where equal JSON values are equal: numbers by value, never equal to booleans."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", float(value) if abs(value) < 2**53 else value)
    if isinstance(value, list):
        return ("array", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, canonical(v)) for k, v in value.items())))
    raise TypeError(f"not a JSON value: {value!r}")


def differences(expected, got, implementation):
    """Every way `got` (one implementation's verdicts) differs from leadhub's `expected`, as text."""
    diffs = []
    for name in sorted(set(expected) | set(got)):
        want, have = expected.get(name), got.get(name)
        if want is None or have is None:
            diffs.append(f"{implementation}: {name}: {'no answer' if have is None else 'not a fixture of leadhub'}")
            continue
        if bool(have.get("valid")) is not bool(want["valid"]) or not isinstance(have.get("valid"), bool):
            diffs.append(f"{implementation}: {name}: verdict valid={have.get('valid')!r}, leadhub valid={want['valid']}")
        missing = sorted(set(want["errors"]) - set(have.get("errors") or []))
        extra = sorted(set(have.get("errors") or []) - set(want["errors"]))
        if missing or extra:
            diffs.append(f"{implementation}: {name}: errors missing {missing}, extra {extra}")
        if canonical(have.get("normalised")) != canonical(want.get("normalised")):
            diffs.append(
                f"{implementation}: {name}: normalised lead differs\n"
                f"    leadhub: {json.dumps(want.get('normalised'), sort_keys=True)}\n"
                f"    {implementation}: {json.dumps(have.get('normalised'), sort_keys=True)}"
            )
    return diffs


def fixture_names_hold(expected):
    """leadhub accepts exactly the valid-* fixtures (the fixture set tests what its names say)."""
    wrong = [n for n, r in expected.items() if r["valid"] is not n.startswith("valid-")]
    return [f"leadhub: {n}: valid={expected[n]['valid']}, but the fixture's name says otherwise" for n in sorted(wrong)]


def check():
    files = fixtures()
    expected = verdicts(IMPLEMENTATIONS[0][2], files)
    problems = fixture_names_hold(expected)
    for name, _, command in IMPLEMENTATIONS[1:]:
        problems += differences(expected, verdicts(command, files), name)
    valid = sum(r["valid"] for r in expected.values())
    if problems:
        print("\n".join(problems))
        print(f"DISAGREEMENT: {len(problems)} difference(s) over {len(files)} fixtures")
        return 1
    names = ", ".join(n for n, _, _ in IMPLEMENTATIONS[1:])
    print(f"agreement: {names} give leadhub's verdict, error set and normalised lead on all "
          f"{len(files)} fixtures ({valid} valid, {len(files) - valid} invalid)")
    return 0


# Values the fuzzer puts in random fields of the example: every kind of JSON value, the seed's enums, edges of
# each rule (blank, padded, too long in chars and in UTF-16 units, whole floats, Unicode spaces, BOM, C1).
FUZZ_VALUES = [
    None, "", "  ", " x ", "condo", "multiUnit", "investment", "vacant", "longTerm", "shortTerm",
    "primaryResidence", 0, -1, 1, 2, 3, 4, 5, 2.0, 2.5, 1e20, -0.0, 0.0, 1800, True, False, [], {}, [1], {"a": 1},
    "fl", "ZZ", "33606-1234", "33606 1234", "3360", "727 555 0134", "+1 (727) 555-0134", "1-727-555-0134",
    "++17275550134", "a@b.co", "a@b", "A.B@x.xn--p1ai", "Jane\u00a0", "\ufeffJane", "x" * 256,
    " " + "y" * 255 + " ", "\U0001f600" * 200, "\U0001f600" * 256, "A\u0085", "\u2028", "2", "1800", "a\u0000",
]


def fuzz(count, seed):
    """`count` random variants of the example (1-4 fields set, replaced or removed): every peer must agree."""
    import copy
    import random

    rng = random.Random(seed)
    example = json.loads(VALID_EXAMPLE.read_text())
    paths = [["propertyUnits"], ["statedInformation", "monthlyRentalIncome"], ["statedInformation", "rentalOccupancy"],
             ["address", "county"], ["residentialAddress", "unitNumber"], ["unknown"], ["contactInfo", "unknown"]]

    def collect(value, path):
        for key, item in value.items():
            paths.append(path + [key])
            if isinstance(item, dict):
                collect(item, path + [key])

    collect(example, [])
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(count):
            lead = copy.deepcopy(example)
            for _ in range(rng.randint(1, 4)):
                *parents, last = rng.choice(paths)
                node = lead
                for key in parents:
                    if not isinstance(node.get(key), dict):
                        node[key] = {}
                    node = node[key]
                if rng.random() < 0.15:
                    node.pop(last, None)
                else:
                    node[last] = rng.choice(FUZZ_VALUES)
            files.append(Path(tmp) / f"fuzz-{seed}-{i:04}.json")
            files[-1].write_text(json.dumps(lead))
        expected = verdicts(IMPLEMENTATIONS[0][2], files)
        problems = []
        for name, _, command in IMPLEMENTATIONS[1:]:
            problems += differences(expected, verdicts(command, files), name)
        valid = sum(r["valid"] for r in expected.values())
        if problems:
            kept = ROOT / "target" / "bench" / "fuzz-failures"
            kept.mkdir(parents=True, exist_ok=True)
            for file in files:
                if any(f": {file.stem}:" in p for p in problems):
                    (kept / file.name).write_bytes(file.read_bytes())
            print("\n".join(problems))
            print(f"DISAGREEMENT on fuzzed leads (seed {seed}): {len(problems)} difference(s); "
                  f"the leads are in {kept}")
            return 1
    print(f"agreement on {count} fuzzed variants of the example (seed {seed}, {valid} valid)")
    return 0


def time_all(ms, rounds):
    files = fixtures()
    runs = {name: [] for name, _, _ in TIMED}
    for r in range(rounds):
        order = TIMED[r % len(TIMED):] + TIMED[: r % len(TIMED)]
        for name, _, command in order:
            env = {"HELOC_VALUE_PATH": "1"} if name == VALUE_PATH[0] else None
            runs[name].append(json.loads(run(command, ["--time", ms, VALID_EXAMPLE, *files], env)))
    results = []
    for name, label, _ in TIMED:
        valid = [x["valid_ns"] for x in runs[name]]
        mix = [x["mix_ns"] for x in runs[name]]
        results.append({
            "implementation": name, "label": label, "rounds": rounds, "ms_per_loop": ms,
            "valid_ns_median": statistics.median(valid), "mix_ns_median": statistics.median(mix),
            "valid_ns_runs": valid, "mix_ns_runs": mix, "mix_fixtures": len(files),
        })
    return results


def versions():
    def out(command):
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    def npm(package):
        try:
            return json.loads((NODE / "node_modules" / package / "package.json").read_text())["version"]
        except OSError:
            return "?"

    return {
        "rustc": out(["rustc", "--version"]).removeprefix("rustc "),
        "node": out(["node", "--version"]),
        "ajv": npm("ajv"),
        "zod": npm("zod"),
        "python": out([PYTHON, "-c", "import sys; print(sys.version.split()[0])"]),
        "pydantic": out([PYTHON, "-c", "import pydantic; print(pydantic.VERSION)"]),
    }


def targets(results):
    """Each target of the issue beside leadhub's ratio (peer time / leadhub time), on the valid example (the
    issue's figure) and on the fixture mix, with a met / missed verdict on the valid example."""
    by = {r["implementation"]: r for r in results}
    base = by["leadhub"]
    out = []
    for against, names, target in TARGETS:
        present = [by[n] for n in names if n in by]
        if not present:
            continue
        peer = min(present, key=lambda r: r["valid_ns_median"])
        ratio = peer["valid_ns_median"] / base["valid_ns_median"]
        ratio_mix = min(r["mix_ns_median"] for r in present) / base["mix_ns_median"]
        verdict = "met" if ratio >= target else f"missed by {100 * (target - ratio) / target:.0f}%"
        out.append({"against": against, "peer": peer["implementation"], "target": target,
                    "ratio_valid": ratio, "ratio_mix": ratio_mix, "verdict": verdict})
    return out


def table(results, versions=None, machine=None):
    """The Markdown table of timing results (a function of `time`'s JSON alone)."""
    base = next(r for r in results if r["implementation"] == "leadhub")
    rows = [
        "| implementation | µs/lead, valid example | µs/lead, fixture mix | leads/s per core, valid example "
        "| leads/s per core, fixture mix | time vs leadhub (example / mix) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ratio = ("1.0× / 1.0×" if r is base else
                 f"{r['valid_ns_median'] / base['valid_ns_median']:.1f}× / {r['mix_ns_median'] / base['mix_ns_median']:.1f}×")
        rows.append(
            f"| {r['label']} | {r['valid_ns_median'] / 1000:.1f} | {r['mix_ns_median'] / 1000:.1f} "
            f"| {1e9 / r['valid_ns_median']:,.0f} | {1e9 / r['mix_ns_median']:,.0f} | {ratio} |"
        )
    rows += ["", "| target (issue 12) | target | leadhub's figure, valid example | verdict | fixture mix |",
             "| --- | ---: | ---: | --- | ---: |"]
    for target in targets(results):
        rows.append(f"| leadhub ≥ {target['target']:.0f}× faster than {target['against']} ({target['peer']}) "
                    f"| ≥ {target['target']:.1f}× | {target['ratio_valid']:.2f}× | {target['verdict']} "
                    f"| {target['ratio_mix']:.2f}× |")
    note = (f"\nMedians of {base['rounds']} interleaved rounds of {base['ms_per_loop']} ms per loop, one core each; "
            f"the fixture mix is all {base['mix_fixtures']} HELOC fixtures of infra/bench/fixtures/heloc in turn. "
            "Each lead: JSON parse, seed 001's rules, the normalised lead serialised (or the field errors).")
    if machine and "load_average" in machine:
        before, after = machine["load_average"]
        note += f" Machine: {machine.get('cores')} cores, 1-minute load average {before} before and {after} after."
    if versions:
        note += " Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."
    return "\n".join(rows) + "\n" + note + "\n"


def section(saved):
    """target/bench/peers.md: the Markdown section of one timing run."""
    results = saved["results"]
    by = {r["implementation"]: r for r in results}
    lines = [
        "## HELOC beside Node.js and Python",
        "",
        "Rerun alone: `bash infra/bench/peers.sh` (installs the peers, checks that every peer gives leadhub's "
        "verdict, error set and normalised lead on every fixture of infra/bench/fixtures/heloc and on fuzzed "
        "variants, exit 1 on any difference, then times; `PEERS_MS`, `PEERS_ROUNDS` set the loop length and "
        "rounds). Every implementation does the same work per lead: the body (bytes) parsed as JSON, seed 001's "
        "rules, and the normalised lead serialised to JSON text, or every field error listed. leadhub's row is "
        "`Vertical::Heloc.parse` (the fast path for the leads it takes, the `serde_json::Value` parser for the "
        "rest), which also keeps the posted text as the lead's `original`; the value-path row is "
        "`Vertical::parse_via_value` alone, what leadhub did before the fast path.",
        "",
        table(results, saved.get("versions"), saved).rstrip(),
        "",
    ]
    missed = [t for t in saved.get("targets", []) if t["verdict"] != "met"]
    if missed and "leadhub-value-path" in by:
        lines += [
            PROFILE_NOTE,
            "",
        ]
    return "\n".join(lines) + "\n"


# Written from `perf record` of the heloc_verdicts example (infra/bench/peers-profile.md says how); kept
# beside the table when a target is missed.
PROFILE_FILE = ROOT / "infra" / "bench" / "peers-profile.md"
PROFILE_NOTE = os.environ.get("PEERS_PROFILE_NOTE") or (
    PROFILE_FILE.read_text().strip() if PROFILE_FILE.exists() else "not profiled yet.")


def self_test():
    """Wrong answers must be reported by the same comparison `check` uses; equal ones must not."""
    lead = {"a": 1800.0, "b": False, "c": {"d": "x", "e": [1, 2]}}
    expected = {
        "valid-x": {"fixture": "valid-x", "valid": True, "errors": [], "normalised": lead},
        "invalid-y": {"fixture": "invalid-y", "valid": False, "errors": ["a:required", "b:invalid_type"],
                      "normalised": None},
    }

    def variant(change):
        got = json.loads(json.dumps(expected))
        change(got)
        return got

    equal_variants = {
        "key order and 1800 for 1800.0": lambda g: g["valid-x"].update(
            normalised={"c": {"e": [1, 2], "d": "x"}, "b": False, "a": 1800}),
        "errors in another order, repeated": lambda g: g["invalid-y"].update(
            errors=["b:invalid_type", "a:required", "a:required"]),
    }
    wrong_variants = {
        "verdict flipped": lambda g: g["invalid-y"].update(valid=True),
        "error missing": lambda g: g["invalid-y"].update(errors=["a:required"]),
        "other code": lambda g: g["invalid-y"].update(errors=["a:invalid_value", "b:invalid_type"]),
        "error extra": lambda g: g["invalid-y"]["errors"].append("c:unknown_field"),
        "error on a valid lead": lambda g: g["valid-x"]["errors"].append("a:too_long"),
        "normalised value": lambda g: g["valid-x"]["normalised"]["c"].update(d="X"),
        "normalised number": lambda g: g["valid-x"]["normalised"].update(a=1800.5),
        "boolean for number": lambda g: g["valid-x"]["normalised"]["c"]["e"].__setitem__(0, True),
        "normalised field missing": lambda g: g["valid-x"]["normalised"].pop("b"),
        "normalised field extra": lambda g: g["valid-x"]["normalised"].update(z=None),
        "no normalised lead": lambda g: g["valid-x"].update(normalised=None),
        "fixture missing": lambda g: g.pop("invalid-y"),
        "verdict not a boolean": lambda g: g["valid-x"].update(valid=1),
    }
    failures = []
    for what, change in equal_variants.items():
        if differences(expected, variant(change), "peer"):
            failures.append(f"reported as different although equal: {what}")
    for what, change in wrong_variants.items():
        if not differences(expected, variant(change), "peer"):
            failures.append(f"not reported: {what}")
    if not fixture_names_hold({"valid-z": {"valid": False}, "invalid-z": {"valid": True}}) == [
        "leadhub: invalid-z: valid=True, but the fixture's name says otherwise",
        "leadhub: valid-z: valid=False, but the fixture's name says otherwise",
    ]:
        failures.append("fixture names not checked")
    # End to end: a peer whose every answer is wrong makes `check`'s comparison fail on the real fixtures.
    with tempfile.TemporaryDirectory() as tmp:
        liar = Path(tmp) / "liar.py"
        liar.write_text(
            "import json, sys, pathlib\n"
            "for f in sys.argv[1:]:\n"
            "    print(json.dumps({'fixture': pathlib.Path(f).stem, 'valid': True, 'errors': [], 'normalised': {}}))\n"
        )
        files = fixtures()
        expected_real = verdicts(IMPLEMENTATIONS[0][2], files)
        got = verdicts([sys.executable, str(liar)], files)
        found = differences(expected_real, got, "liar")
        if len(found) < len(files):
            failures.append(f"a peer answering 'valid' everywhere gave {len(found)} differences on {len(files)} fixtures")
    cases = len(equal_variants) + len(wrong_variants) + 2
    if failures:
        print("\n".join(failures))
        print(f"self-test: {cases - len(failures)} passed, {len(failures)} failed")
        return 1
    print(f"self-test: {cases} passed, 0 failed")
    return 0


def main(args):
    if args[:1] == ["--self-test"]:
        return self_test()
    if args[:1] == ["check"]:
        return check()
    if args[:1] == ["fuzz"]:
        opts = dict(zip(args[2::2], args[3::2]))
        return fuzz(int(args[1]) if len(args) > 1 else 300, int(opts.get("--seed", 1)))
    if args[:1] == ["table"] and len(args) == 2:
        saved = json.loads(Path(args[1]).read_text())
        print(table(saved["results"], saved.get("versions"), saved), end="")
        return 0
    if args[:1] == ["time"]:
        opts = dict(zip(args[1::2], args[2::2]))
        ms, rounds = int(opts.get("--ms", 1500)), int(opts.get("--rounds", 5))
        out = Path(opts.get("--out", ROOT / "target" / "bench" / "peers.json"))
        load_before = os.getloadavg()[0]
        results = time_all(ms, rounds)
        saved = {"results": results, "versions": versions(),
                 "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cores": os.cpu_count()}
        saved["targets"] = targets(results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(saved, indent=2) + "\n")
        markdown = out.with_suffix(".md")
        markdown.write_text(section(saved))
        for r in results:
            print(json.dumps(r))
        print(f"\n(saved to {out} and {markdown})\n")
        print(table(results, saved["versions"], saved), end="")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
