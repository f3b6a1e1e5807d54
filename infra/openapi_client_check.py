"""Generate a Python client from the partner API document a running hub serves, and use it.

A partner building on leadhub will generate a client from `GET /v1/openapi.json`; this checks that one of
the common generators, `openapi-python-client` (PyPI, pinned in infra/requirements-test.txt), takes the whole
document: it must generate without a single warning (a schema it cannot read is dropped with a warning,
and with it every endpoint that uses it), and the generated client must post one valid lead of each of the
four verticals (`infra/examples/<vertical>.json`, each given a fresh email so that no duplicate rule
applies) through its typed models, each answered 202 and readable back through the generated status call.
Each example also goes through the generated model and back (`from_dict(...).to_dict()`) unchanged, so no
field is lost on the way.

Run by infra/test.sh against leadhub-local:
    python infra/openapi_client_check.py --base-url http://127.0.0.1:PORT --key pk_... --secret ... --work DIR
"""

from __future__ import annotations

import argparse
import base64
import copy
import importlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The generated module for each vertical's endpoint (operationId) and its body's model.
VERTICALS = {
    "heloc": ("post_heloc_lead", "HelocLead"),
    "mortgage": ("post_mortgage_lead", "MortgageLead"),
    "solar": ("post_solar_lead", "SolarLead"),
    "real-estate": ("post_real_estate_lead", "RealEstateLead"),
}


def fresh_email(lead: dict, vertical: str, tag: str) -> None:
    """Give the example a unique email (seed 001's duplicate rule, and the others' duplicate checks)."""
    email = f"client.{vertical}.{tag}@example.com"
    if vertical == "heloc":
        lead["contactInfo"]["email"] = email
    elif vertical == "mortgage":
        lead["borrower"]["email"] = email
    elif vertical == "solar":
        lead["email"] = email
    elif vertical == "real-estate":
        lead["emails"] = [email]


def generate(spec: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The generator formats its output with ruff, which comes with it into the same venv.
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(out),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    print(output)
    if result.returncode != 0:
        sys.exit(f"openapi-python-client failed (exit {result.returncode})")
    lowered = output.lower()
    for word in ("warning", "skipping", "unable to", "will not be generated", "error"):
        if word in lowered:
            sys.exit(f"openapi-python-client reported a problem ({word!r}): the client is incomplete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--work", required=True, type=Path)
    args = parser.parse_args()

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "openapi.json"
    with urllib.request.urlopen(f"{args.base_url}/v1/openapi.json", timeout=10) as response:
        spec.write_bytes(response.read())
    package = "leadhub_client"
    generate(spec, work / "pyclient" / package)
    sys.path.insert(0, str(work / "pyclient"))
    client_module = importlib.import_module(f"{package}.client")
    get_lead = importlib.import_module(f"{package}.api.leads.get_lead")

    token = base64.b64encode(f"{args.key}:{args.secret}".encode()).decode()
    client = client_module.AuthenticatedClient(base_url=args.base_url, token=token, prefix="Basic")
    tag = uuid.uuid4().hex[:12]
    with client:
        for vertical, (operation, model_name) in VERTICALS.items():
            lead = json.loads((ROOT / "infra" / "examples" / f"{vertical}.json").read_text())
            fresh_email(lead, vertical, tag)
            endpoint = importlib.import_module(f"{package}.api.leads.{operation}")
            model = getattr(importlib.import_module(f"{package}.models"), model_name)
            body = model.from_dict(copy.deepcopy(lead))
            if body.to_dict() != lead:
                sys.exit(f"{vertical}: the generated {model_name} does not give the lead back as it was given")
            answer = endpoint.sync_detailed(client=client, body=body)
            if answer.status_code != 202:
                sys.exit(f"{vertical}: {answer.status_code} {answer.content[:500]!r}")
            lead_id = answer.parsed.lead_id
            view = get_lead.sync_detailed(client=client, lead_id=lead_id)
            if view.status_code != 200 or view.parsed.lead_id != lead_id:
                sys.exit(f"{vertical}: reading {lead_id} back gave {view.status_code}")
            print(f"{vertical}: 202 {lead_id} through the generated client ({model_name}), read back: {view.parsed.status}")
    print("openapi-python-client: the generated client posts all four verticals")


if __name__ == "__main__":
    main()
