"""Cold-start harness: serves the Lambda Runtime API on 127.0.0.1, spawns a function binary N
times, and measures process start -> first `next` request (init), -> first response, and the
process's peak RSS (VmHWM). The receiver's invocation is a signed API Gateway v2 event stored in
a moto server this script starts; nothing leaves the machine.

  .venv/bin/python scripts/coldstart.py path/to/receiver/bootstrap [--runs 20]
  .venv/bin/python scripts/coldstart.py path/to/renewer/bootstrap --event events/scheduled.json
  .venv/bin/python scripts/coldstart.py path/to/receiver/bootstrap --env SSL_CERT_DIR=/etc/ssl/certs \
      --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt   # the TLS stack's default: file and dir
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
import local_aws  # noqa: E402

KEY = "coldstart-key"
TABLE = "coldstart"
KEYS_SECRET = "coldstart/signing-keys"


def api_gateway_event(body):
    signature = base64.b64encode(hmac.new(KEY.encode(), body.encode(), hashlib.sha256).digest()).decode()
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/{collection}",
        "rawPath": "/webhooks/clockings",
        "rawQueryString": "",
        "headers": {"authorization": "HMAC-SHA256 " + signature, "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "example.com", "domainPrefix": "example",
            "http": {"method": "POST", "path": "/webhooks/clockings", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "coldstart"},
            "requestId": "r", "routeKey": "POST /webhooks/{collection}", "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000", "timeEpoch": 1795000000000,
        },
        "pathParameters": {"collection": "clockings"},
        "body": body,
        "isBase64Encoded": False,
    }


class Run:
    def __init__(self, event):
        self.event = event
        self.pid = None
        self.started = None
        self.first_next = None
        self.responded = None
        self.status = None
        self.peak_rss_kib = None
        self.done = threading.Event()
        self.served = False


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            run = state["run"]
            if self.path.endswith("/invocation/next"):
                if run.first_next is None:
                    run.first_next = time.perf_counter()
                if run.served:
                    run.done.wait(30)  # hold the next poll until the run is over
                    self.send_response(500)
                    self.end_headers()
                    return
                run.served = True
                body = json.dumps(run.event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:f")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def do_POST(self):
            run = state["run"]
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length)
            if "/response" in self.path or "/error" in self.path:
                run.responded = time.perf_counter()
                run.peak_rss_kib = peak_rss_kib(run.pid)
                try:
                    run.status = json.loads(payload).get("statusCode", "error" if "/error" in self.path else "ok")
                except ValueError:
                    run.status = "unparsed"
                run.done.set()
            self.send_response(202)
            self.end_headers()

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--event", help="send this JSON file instead of a signed API Gateway event (e.g. events/scheduled.json)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="add a variable to the function's environment (e.g. SSL_CERT_DIR=/etc/ssl/certs)")
    args = parser.parse_args()

    moto, endpoint = start_moto()
    try:
        local_aws.bootstrap(endpoint, TABLE, "coldstart/credentials", "{}", "coldstart-quarantine", KEYS_SECRET)
        local_aws.client("secretsmanager", endpoint).put_secret_value(
            SecretId=KEYS_SECRET, SecretString=json.dumps({"clockings": {"key": KEY}}))

        state = {"run": None}
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = lambda_env("coldstart", server.server_port, endpoint, TABLE, KEYS_SECRET)
        env["LAMBDA_TASK_ROOT"] = os.path.dirname(os.path.abspath(args.binary))
        # The renewer's required settings; its run then fails fast on the empty credentials.
        env.update(PROTIME_CREDENTIALS_SECRET="coldstart/credentials", DESTINATION_BASE_URL="http://127.0.0.1:9")
        env.update(pair.split("=", 1) for pair in args.env)
        fixed_event = json.load(open(args.event)) if args.event else None
        runs = []
        for i in range(args.runs):
            body = json.dumps({"id": i, "changeVersion": "1", "person": {"id": 7}, "date": "2026-11-23"})
            run = Run(fixed_event or api_gateway_event(body))
            state["run"] = run
            run.started = time.perf_counter()
            process = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            run.pid = process.pid
            if not run.done.wait(30):
                print(f"run {i}: no response", file=sys.stderr)
            process.kill()
            process.wait()
            runs.append(run)
        server.shutdown()
    finally:
        moto.kill()
        moto.wait()

    ok = [r for r in runs if r.first_next and r.responded]
    init = statistics.median((r.first_next - r.started) * 1000 for r in ok)
    first = statistics.median((r.responded - r.started) * 1000 for r in ok)
    rss = max(r.peak_rss_kib for r in ok) / 1024
    statuses = sorted({str(r.status) for r in ok})
    size = os.path.getsize(args.binary) / (1024 * 1024)
    print(f"{os.path.basename(os.path.dirname(args.binary)) or args.binary}: {len(ok)}/{args.runs} runs, "
          f"init median {init:.1f} ms, first response median {first:.1f} ms (statuses {', '.join(statuses)}), "
          f"peak RSS {rss:.1f} MiB, binary {size:.1f} MiB")


def start_moto(python=sys.executable, keep_alive=False):
    """moto's server on a free port of 127.0.0.1, stopped by killing the returned process."""
    port = local_aws_free_port()
    command = [python, os.path.join(os.path.dirname(__file__), "moto_server.py"), str(port)]
    moto = subprocess.Popen(command + (["--keep-alive"] if keep_alive else []),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    moto.stdout.readline()
    return moto, f"http://127.0.0.1:{port}"


def lambda_env(name, runtime_api_port, endpoint, table, keys_secret):
    """A clean environment, as Lambda's: nothing inherited from this shell (no SSL_CERT_*, no
    HOME, no AWS profile), the Runtime API and the emulator's endpoint, the receiver's settings."""
    return dict(PATH=os.environ.get("PATH", "/usr/bin:/bin"), LANG="C.UTF-8", TZ=":UTC",
                AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{runtime_api_port}",
                AWS_LAMBDA_FUNCTION_NAME=name, AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="WARN",
                AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local",
                TABLE_NAME=table, SIGNING_KEYS_SECRET=keys_secret)


def local_aws_free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
