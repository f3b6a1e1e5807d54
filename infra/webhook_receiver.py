#!/usr/bin/env python3
"""A partner's webhook receiver for end-to-end tests: verifies every notification with the independent
Standard Webhooks implementation from PyPI (`standardwebhooks`), never with leadhub's own code.

    python infra/webhook_receiver.py --secret whsec_... [--secret whsec_...] --log FILE
                                     [--fail-first N] [--status 410]

Listens on 127.0.0.1 (a free port, printed as the first line of stdout: `PORT <n>`). Each POST is checked
with every `--secret` (during a rotation the hub signs with two, and each must verify); a tampered copy of
the body must fail verification too (so that a receiver that accepted anything would be caught). Then it
answers:

- 401 when any secret does not verify the message;
- `--status` for every verified message when given (e.g. 410 to have the endpoint disabled);
- 500 for the first `--fail-first` attempts of each `webhook-id`, then 204.

Each request is appended to `--log` as one JSON line: `id`, `timestamp`, `signatures` (how many `v1,`
entries), `verified` (every secret verified), `tamperRefused`, `status` (what was answered), `payload`
(the parsed body, when verified), `error` (why not).
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", action="append", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--status", type=int, default=None)
    args = parser.parse_args()

    hooks = [Webhook(secret) for secret in args.secret]
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for (k, v) in self.headers.items()}
            entry = {
                "id": headers.get("webhook-id"),
                "timestamp": headers.get("webhook-timestamp"),
                "signatures": len((headers.get("webhook-signature") or "").split()),
                "contentType": headers.get("content-type"),
            }
            try:
                payloads = [hook.verify(body, headers) for hook in hooks]
                entry["verified"] = True
                entry["payload"] = payloads[0]
            except (WebhookVerificationError, ValueError) as error:
                entry["verified"] = False
                entry["error"] = str(error)
            tampered = body + b" "
            refused = 0
            for hook in hooks:
                try:
                    hook.verify(tampered, headers)
                except (WebhookVerificationError, ValueError):
                    refused += 1
            entry["tamperRefused"] = refused == len(hooks)

            with lock:
                if not entry["verified"]:
                    status = 401
                elif args.status is not None:
                    status = args.status
                else:
                    seen = attempts.get(entry["id"], 0) + 1
                    attempts[entry["id"]] = seen
                    status = 500 if seen <= args.fail_first else 204
                entry["status"] = status
                with open(args.log, "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry) + "\n")
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
