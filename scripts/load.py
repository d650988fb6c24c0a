"""End-to-end load against a running local stack (loopback only, bounded in count and time):
N signed events through `cargo lambda watch` into moto, then, in the same run, the same number
of plain PutItems from boto3 straight to moto, so the ratio shows how close the receiver gets
to the store's own limit.

  .venv/bin/python scripts/load.py [--events 2000] [--concurrency 8]
  (reads $STACK_DIR/stack.env; default .local/$WATCH_PORT, WATCH_PORT default 9000)
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
import local_aws  # noqa: E402

DEADLINE_SECONDS = 300


def stack_env():
    env = {}
    stack_dir = os.environ.get("STACK_DIR") or f".local/{os.environ.get('WATCH_PORT', '9000')}"
    with open(os.path.join(stack_dir, "stack.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                env[k] = v
    return env


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def run(label, count, concurrency, one):
    started = time.perf_counter()
    deadline = started + DEADLINE_SECONDS
    latencies = []

    def timed(i):
        if time.perf_counter() > deadline:
            return None
        t = time.perf_counter()
        one(i)
        return (time.perf_counter() - t) * 1000

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = [ms for ms in pool.map(timed, range(count)) if ms is not None]
    elapsed = time.perf_counter() - started
    rate = len(latencies) / elapsed
    print(f"{label}: {len(latencies)} in {elapsed:.1f} s = {rate:.0f}/s, "
          f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms")
    return rate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    env = stack_env()
    endpoint = env["AWS_ENDPOINT_URL"]
    secrets = local_aws.client("secretsmanager", endpoint)
    keys = secrets.get_secret_value(SecretId=env["SIGNING_KEYS_SECRET"], VersionStage="AWSCURRENT")["SecretString"]
    key = json.loads(keys)["clockings"]["key"]
    url = env["RECEIVER_URL"] + "/clockings"
    base = 10_000_000

    def send(i):
        body = json.dumps({"id": base + i, "changeVersion": "1", "person": {"id": 7}, "date": "2026-11-23",
                           "timeOfDayInMinutes": 480, "kind": "InOut"}).encode()
        signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Authorization": "HMAC-SHA256 " + signature})
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200 or b'"stored"' not in response.read():
                raise SystemExit(f"event {i} was not stored")

    dynamodb = local_aws.client("dynamodb", endpoint)

    def put(i):
        dynamodb.put_item(TableName=env["TABLE_NAME"], Item={
            "pk": {"S": f"raw#{i}"}, "collection": {"S": "clockings"}, "id": {"N": str(i)},
            "changeVersion": {"S": "1"}, "changeOrder": {"S": "1".zfill(40)},
        }, ConditionExpression="attribute_not_exists(pk) OR changeOrder < :o",
            ExpressionAttributeValues={":o": {"S": "1".zfill(40)}})

    receiver = run(f"receiver via cargo lambda watch (concurrency {args.concurrency})", args.events, args.concurrency, send)
    raw = run(f"moto PutItem from boto3 (concurrency {args.concurrency})", args.events, args.concurrency, put)
    print(f"receiver / raw store rate: {receiver / raw:.2f}")


if __name__ == "__main__":
    main()
