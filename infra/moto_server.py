"""moto's server, as `moto_server -H HOST -p PORT` runs it, with one difference: DynamoDB requests are served
one at a time.

Real DynamoDB applies the writes to an item one at a time, so of two conditional writes racing for the same
item exactly one sees its condition hold. moto's server answers on many threads and evaluates a condition and
applies its write without a lock, so under load two racing writers can both succeed. The store contract tests
race writers on purpose (claims, delivery preconditions) and would then fail now and then for moto's sake,
not leadhub's. Serialising DynamoDB calls restores the guarantee the tests rely on; SQS stays concurrent
(its long polls must not hold up the table).

Run by infra/test.sh from the test venv: python infra/moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerialDynamoDb:
    """WSGI middleware: one DynamoDB request at a time (the whole answer is built under the lock)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server does (some services build URLs from it)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server does
    run_simple(
        args.host,
        args.port,
        SerialDynamoDb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
