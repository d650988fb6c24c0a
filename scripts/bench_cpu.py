"""CPU per event, side by side: the release receiver and a plain Python + boto3 receiver doing
the same job (verify the HMAC, one conditional PutItem), each driven by the same Lambda Runtime
API emulator on 127.0.0.1 against the same moto server (HTTP/1.1 keep-alive, as AWS endpoints
are). Each function process gets `--events` signed API Gateway v2 events one after another.

Reported per function (median of `--rounds` fresh processes): init (process start -> first
`next`), first response, warm CPU per event (the process's user + system time from /proc over
events 2..N, divided by N - 1), latency per warm event (event served -> response, p50 and p99),
and peak RSS; then the Python / Rust ratios.

  make bench-cpu                     # builds the release receiver, installs the peer, runs this
  .venv-bench/bin/python scripts/bench_cpu.py --rust target/release/receiver --python \\
      [--rust /tmp/receiver-before --label before] [--events 300] [--rounds 3]
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
from coldstart import api_gateway_event, lambda_env, peak_rss_kib, start_moto  # noqa: E402

KEY = "coldstart-key"  # the key coldstart.api_gateway_event signs with
TABLE = "bench"
KEYS_SECRET = "bench/signing-keys"
TICKS = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_seconds(pid):
    """User + system time of the whole process (every thread, live or ended), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Round:
    """One function process fed `events` events in turn."""

    def __init__(self, events):
        self.events = events
        self.pid = None
        self.started = None
        self.first_next = None
        self.served_at = {}
        self.latencies = []
        self.first_response = None
        self.cpu_after_first = None
        self.cpu_after_last = None
        self.peak_rss_kib = None
        self.statuses = set()
        self.answered = 0
        self.next_index = 0
        self.done = threading.Event()


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the runtime client keeps its connection, as on Lambda
        disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stalls

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", headers=()):
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the process was stopped while its poll was held

        def do_GET(self):
            run = state["round"]
            if not self.path.endswith("/invocation/next"):
                return self.reply(404)
            if run.first_next is None:
                run.first_next = time.perf_counter()
            if run.next_index >= len(run.events):
                run.done.wait(60)  # hold the poll until the process is stopped
                return self.reply(500)
            event = run.events[run.next_index]
            run.next_index += 1
            request_id = str(uuid.uuid4())
            run.served_at[request_id] = time.perf_counter()
            body = json.dumps(event).encode()
            self.reply(200, body, [
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ("Content-Type", "application/json"),
            ])

        def do_POST(self):
            run = state["round"]
            payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.split("/")
            if "invocation" in parts and (parts[-1] in ("response", "error")):
                now = time.perf_counter()
                request_id = parts[parts.index("invocation") + 1]
                run.answered += 1
                count = run.answered
                if count == 1:  # the cold one: neither a warm latency nor warm CPU
                    run.first_response = now
                    run.cpu_after_first = cpu_seconds(run.pid)
                else:
                    run.latencies.append(now - run.served_at[request_id])
                try:
                    run.statuses.add(json.loads(payload).get("statusCode", parts[-1]))
                except ValueError:
                    run.statuses.add(parts[-1])
                if count == len(run.events):
                    run.cpu_after_last = cpu_seconds(run.pid)
                    run.peak_rss_kib = peak_rss_kib(run.pid)
                    run.done.set()
            self.reply(202)

    return Handler


def events(n, round_no):
    return [
        api_gateway_event(json.dumps({"id": round_no * 100000 + i, "changeVersion": "0000090200004BD0000A",
                                      "person": {"id": 7}, "date": "2026-11-23", "timeOfDayInMinutes": 480}))
        for i in range(n)
    ]


def run_round(command, cwd, env, state, n, round_no):
    run = Round(events(n, round_no))
    state["round"] = run
    run.started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run.pid = process.pid
    finished = run.done.wait(300)
    process.kill()
    process.wait()
    run.done.set()
    if not finished:
        raise SystemExit(f"{command[0]}: only {run.answered} of {n} events answered")
    return run


def summary(rounds, n):
    warm = sorted(lat for r in rounds for lat in r.latencies)
    return {
        "init_ms": statistics.median((r.first_next - r.started) * 1000 for r in rounds),
        "first_ms": statistics.median((r.first_response - r.started) * 1000 for r in rounds),
        "cpu_ms": statistics.median((r.cpu_after_last - r.cpu_after_first) * 1000 / (n - 1) for r in rounds),
        "p50_ms": warm[len(warm) // 2] * 1000,
        "p99_ms": warm[min(len(warm) - 1, int(len(warm) * 0.99))] * 1000,
        "rss_mib": max(r.peak_rss_kib for r in rounds) / 1024,
        "statuses": sorted({str(s) for r in rounds for s in r.statuses}),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rust", action="append", default=[], help="a release receiver binary (repeatable)")
    parser.add_argument("--label", action="append", default=[], help="a name for each --rust, in order")
    parser.add_argument("--python", action="store_true", help="also run the Python + boto3 peer")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    # moto runs from the dev venv (MOTO_PYTHON, set by the Makefile); this script and the Python
    # peer from .venv-bench.
    moto, endpoint = start_moto(os.environ.get("MOTO_PYTHON", sys.executable), keep_alive=True)
    results = []
    try:
        local_aws.bootstrap(endpoint, TABLE, "bench/credentials", "{}", "bench-quarantine", KEYS_SECRET)
        local_aws.client("secretsmanager", endpoint).put_secret_value(
            SecretId=KEYS_SECRET, SecretString=json.dumps({"clockings": {"key": KEY}}))
        state = {"round": None}
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = lambda_env("bench", server.server_port, endpoint, TABLE, KEYS_SECRET)
        targets = []
        for i, binary in enumerate(args.rust):
            label = args.label[i] if i < len(args.label) else os.path.basename(binary)
            targets.append((f"Rust receiver ({label})", [os.path.abspath(binary)], os.path.dirname(os.path.abspath(binary)), "rust"))
        if args.python:
            targets.append(("Python 3.11 + boto3 (awslambdaric)",
                            [sys.executable, "-m", "awslambdaric", "python_receiver.handler"],
                            os.path.join(HERE, "bench"), "python"))
        round_no = 0
        for name, command, cwd, kind in targets:
            rounds = []
            for _ in range(args.rounds):
                round_no += 1
                target_env = dict(env, LAMBDA_TASK_ROOT=cwd)
                rounds.append(run_round(command, cwd, target_env, state, args.events, round_no))
            results.append((name, kind, summary(rounds, args.events)))
        server.shutdown()
    finally:
        moto.kill()
        moto.wait()

    print(f"{args.events} signed events per process, {args.rounds} processes each, medians:\n")
    print("| function | init | first response | warm CPU per event | latency p50 / p99 | peak RSS | statuses |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, _, s in results:
        print(f"| {name} | {s['init_ms']:.1f} ms | {s['first_ms']:.1f} ms | {s['cpu_ms']:.2f} ms | "
              f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} ms | {s['rss_mib']:.1f} MiB | {', '.join(s['statuses'])} |")
    python = next((s for _, kind, s in results if kind == "python"), None)
    if python:
        print()
        for name, kind, s in results:
            if kind == "rust":
                print(f"Python / {name}: CPU per event {python['cpu_ms'] / s['cpu_ms']:.1f}x, "
                      f"init {python['init_ms'] / s['init_ms']:.0f}x, peak RSS {python['rss_mib'] / s['rss_mib']:.1f}x, "
                      f"latency p50 {python['p50_ms'] / s['p50_ms']:.1f}x")


if __name__ == "__main__":
    main()
