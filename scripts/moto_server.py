"""Runs moto's server on 127.0.0.1, one request at a time, so that it is linearizable.

Usage: python scripts/moto_server.py PORT [--keep-alive] [--serve-forever] [--concurrent]

moto's threaded server evaluates a DynamoDB condition and then writes without a lock: two
concurrent conditional writes on one key can both succeed, which DynamoDB never allows. Every
lease, every "only a newer changeVersion" write and every exact final state in the tests rests
on that atomicity, so this launcher runs each request (reading its body, moto's work, building
the answer) under one lock. moto holds Python's GIL for nearly all of a request anyway; what
the lock costs is measured in docs/decisions/0001-linearizable-emulator.md.

By default the server runs until its standard input closes: tests start it with a pipe on
stdin, so it dies with the process that started it even if that process is killed.
--serve-forever runs it until it is killed instead (the local stack, started in the background).
--keep-alive answers with HTTP/1.1 and keeps connections open, as AWS endpoints do (the
benchmarks use it, so that a client's connection reuse is measured, not a reconnect per call).
--concurrent leaves moto's requests unserialized (only to measure what the lock costs or to
show the race it removes).
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.test import Client

# One cheap request per service the project uses. moto imports a service's backend on its first
# request (seconds on a cold machine); done here, before the ready line, no client's first call
# (a fixture's CreateTable with a 3 s attempt timeout, say) ever waits on it.
WARM_UP = [
    ("dynamodb", {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"}, "{}"),
    ("secretsmanager", {"X-Amz-Target": "secretsmanager.ListSecrets", "Content-Type": "application/x-amz-json-1.1"}, "{}"),
    ("s3", {}, None),
]


class Serialized:
    """A WSGI application that lets one request at a time into the one it wraps."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            answer = self.app(environ, start_response)
            try:
                # The whole answer is built inside the lock: nothing of a request runs beside another.
                return [b"".join(answer)]
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()


def warm_up(app) -> None:
    """Answers one request of each service in-process, failing loudly if one is not answered."""
    client = Client(app)
    for service, headers, body in WARM_UP:
        authorization = f"AWS4-HMAC-SHA256 Credential=warmup/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        headers = {**headers, "Authorization": authorization, "Host": "127.0.0.1"}
        method = "POST" if body is not None else "GET"
        answer = client.open("/", method=method, headers=headers, data=body or "")
        if answer.status_code != 200:
            sys.exit(f"moto's {service} did not answer its warm-up request: {answer.status}")


def main() -> None:
    port = int(sys.argv[1])
    flags = set(sys.argv[2:])
    unknown = flags - {"--keep-alive", "--serve-forever", "--concurrent"}
    if unknown:
        sys.exit(f"unknown option(s): {' '.join(sorted(unknown))}")
    if "--keep-alive" in flags:
        MotoRequestHandler.protocol_version = "HTTP/1.1"
        MotoRequestHandler.disable_nagle_algorithm = True
    app = DomainDispatcherApplication(create_backend_app)
    if "--concurrent" not in flags:
        app = Serialized(app)
    warm_up(app)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"moto listening on 127.0.0.1:{port}", flush=True)
    if "--serve-forever" in flags:
        thread.join()
        return
    # Block until the parent closes our stdin (or exits), then stop.
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
