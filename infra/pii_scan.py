"""After the whole test suite: scan every item of every DynamoDB table on moto, and every captured log, for
PII where it must not be.

- No plaintext SSN anywhere, in any spelling: 9 digits on their own, `123-45-6789`, `123 45 6789` (in items,
  lead items included: the hub never stores an SSN, only its keyed hash and a sealed copy).
- No sealed SSN (`SSN#<leadId>` items) left for a lead that screening has decided (one no longer `received`).
- No email address or phone number outside a lead item itself (`pk` `LEAD#...`): not in claims, counters,
  suppression records, idempotency records, dead-delivery markers, tallies, sealed items or configuration
  documents (the demo config has none), and never in a log line. An unparsed callback (`UNPARSED#...`) keeps
  the body a buyer sent, which may hold PII by design (kept 30 days for the operator, never logged): it is a
  binary attribute, which is not scanned; the item's other attributes are.

Run by infra/test.sh after the tests:
    python infra/pii_scan.py --endpoint http://127.0.0.1:PORT [--logs FILE ...]
Exits 1 listing each finding by table, key and attribute (never the value itself).
"""

import argparse
import json
import re
import sys

import boto3

SSN_PATTERNS = [
    re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"),
    re.compile(r"(?<![\w ])\d{3} \d{2} \d{4}(?![\w ])"),
    re.compile(r"(?<![\w.+-])\d{9}(?![\w.+-])"),
]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_PATTERNS = [
    re.compile(r"\+1\d{10}(?!\d)"),
    # A phone's 10 digits on their own (its normal form for matching). Only text is scanned for it: a number
    # attribute of 10 digits is an epoch-seconds `ttl`.
    re.compile(r"(?<![\w.+:-])\d{10}(?![\w.+-])"),
    re.compile(r"\(\d{3}\) ?\d{3}-\d{4}"),
    re.compile(r"(?<![\w.-])\d{3}[-.]\d{3}[-.]\d{4}(?![\w.-])"),
]
# Numbers the hub itself writes that are 9 digits long but are not SSNs: none in items today, but a
# millisecond or second timestamp is 10 or 13 digits, and never matches the 9-digit pattern.


def plain(value, numbers=True):
    """An item's attribute value as text (DynamoDB JSON flattened); `numbers=False` leaves out N values."""
    if isinstance(value, dict):
        if len(value) == 1:
            (kind, inner), = value.items()
            if kind == "S" or (kind == "N" and numbers):
                return str(inner)
            if kind == "N":
                return ""
            if kind == "B":
                return ""
            if kind == "SS" or (kind == "NS" and numbers):
                return " ".join(inner)
            if kind == "NS":
                return ""
            if kind == "L":
                return " ".join(plain(v, numbers) for v in inner)
            if kind == "M":
                return " ".join(plain(v, numbers) for v in inner.values())
            if kind in ("BOOL", "NULL"):
                return ""
        return " ".join(plain(v, numbers) for v in value.values())
    return str(value)


def has_ssn(text):
    return any(p.search(text) for p in SSN_PATTERNS)


def has_contact(text):
    return bool(EMAIL.search(text)) or any(p.search(text) for p in PHONE_PATTERNS)


def scan_tables(endpoint):
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    findings = []
    items_seen = 0
    sealed_seen = 0
    # Sealed SSNs of leads that were never created (ingest's failure tests): they expire by TTL.
    orphans = 0
    for table in client.list_tables().get("TableNames", []):
        items = []
        for page in client.get_paginator("scan").paginate(TableName=table):
            items.extend(page.get("Items", []))
        items_seen += len(items)
        statuses = {}
        for item in items:
            pk = item.get("pk", {}).get("S", "")
            if pk.startswith("LEAD#") and "status" in item:
                statuses[pk[len("LEAD#"):]] = item["status"].get("S")
        for item in items:
            pk = item.get("pk", {}).get("S", "")
            sk = item.get("sk", {}).get("S", "")
            where = f"{table}: {pk[:40]} / {sk[:20]}"
            is_lead = pk.startswith("LEAD#")
            for name, value in item.items():
                text = plain(value)
                if has_ssn(text):
                    findings.append(f"{where}: attribute {name} holds something shaped like an SSN")
                if not is_lead and has_contact(plain(value, numbers=False)):
                    findings.append(f"{where}: attribute {name} holds an email or phone outside a lead item")
            if pk.startswith("SSN#"):
                sealed_seen += 1
                lead_id = pk[len("SSN#"):]
                status = statuses.get(lead_id)
                if status is None:
                    orphans += 1
                elif status != "received":
                    findings.append(f"{where}: a sealed SSN is left for a lead that is {status}")
    return findings, items_seen, sealed_seen, orphans


# Times the AWS SDK writes at debug level (`SystemTime { tv_sec: 1796222679, tv_nsec: 476984279 }`).
SDK_TIME = re.compile(r"tv_(n?sec): \d+")


def log_text(line):
    """What a log line says: a JSON line's string values (numbers are counters, ids and times, never PII,
    which is text), or a text line as it is; SDK timestamps blanked."""
    try:
        value = json.loads(line)
    except ValueError:
        return SDK_TIME.sub("", line)
    strings = []

    def walk(node):
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            for inner in node.values():
                walk(inner)
        elif isinstance(node, list):
            for inner in node:
                walk(inner)

    walk(value)
    return SDK_TIME.sub("", "\n".join(strings))


def scan_logs(paths):
    findings = []
    lines_seen = 0
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, raw in enumerate(handle, 1):
                    lines_seen += 1
                    line = log_text(raw)
                    if has_ssn(line):
                        findings.append(f"{path}:{number}: a log line holds something shaped like an SSN")
                    if has_contact(line):
                        findings.append(f"{path}:{number}: a log line holds an email or phone")
        except FileNotFoundError:
            findings.append(f"{path}: the log file is missing")
    return findings, lines_seen


def self_test():
    """The scan can fail: each kind of leak is caught, and what the hub writes legitimately is not."""
    caught = [
        '{"fields":{"message":"x","value":"123-45-6789"}}',
        '{"fields":{"message":"x","value":"123 45 6789"}}',
        '{"fields":{"message":"x","value":"123456789"}}',
        '{"fields":{"message":"x","value":"jane.doe@example.com"}}',
        '{"fields":{"message":"x","value":"+17275550134"}}',
        '{"fields":{"message":"x","value":"(727) 555-0134"}}',
        '{"fields":{"message":"x","value":"7275550134"}}',
    ]
    clean = [
        '{"fields":{"message":"lead screened","lead_id":"lead_01M8VJX3B2BBEAWQV3755VNGX5","deliveries":1}}',
        '{"fields":{"now":"SystemTime { tv_sec: 1796222679, tv_nsec: 476984279 }","n":123456789}}',
        '{"fields":{"key":"DEDUPE#heloc#email#9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}',
    ]
    for line in caught:
        text = log_text(line)
        assert has_ssn(text) or has_contact(text), f"not caught: {line}"
    for line in clean:
        text = log_text(line)
        assert not has_ssn(text) and not has_contact(text), f"caught by mistake: {line}"
    item_number = {"ttl": {"N": "1796222679"}, "expires_at": {"N": "1796222679123"}}
    assert not has_contact(plain(item_number, numbers=False))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--logs", nargs="*", default=[])
    args = parser.parse_args()
    self_test()
    table_findings, items, sealed, orphans = scan_tables(args.endpoint)
    log_findings, lines = scan_logs(args.logs)
    findings = table_findings + log_findings
    print(
        f"pii scan: {items} items ({sealed} sealed SSNs: {orphans} of leads never created, the others of leads "
        f"still being screened), "
        f"{lines} log lines in {len(args.logs)} files: {len(findings)} findings"
    )
    for finding in findings[:200]:
        print(f"  {finding}")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
