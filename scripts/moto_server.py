"""Runs moto's server on 127.0.0.1 until stopped or until standard input closes.

Tests start it with a pipe on stdin, so the emulator dies with the process that started it
even if that process is killed. Usage: python scripts/moto_server.py PORT [--keep-alive]

--keep-alive answers with HTTP/1.1 and keeps connections open, as AWS endpoints do (the
benchmarks use it, so that a client's connection reuse is measured, not a reconnect per call).
"""

import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1])
    if "--keep-alive" in sys.argv[2:]:
        from werkzeug.serving import WSGIRequestHandler

        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        WSGIRequestHandler.disable_nagle_algorithm = True
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"moto listening on 127.0.0.1:{port}", flush=True)
    # Block until the parent closes our stdin (or exits), then stop.
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
